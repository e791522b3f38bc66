#!/bin/sh
# preStop hook of the PostgreSQL container: when this pod is the Patroni leader, hand the leadership to a
# healthy replica before Kubernetes sends SIGTERM, so clients see a switchover instead of a crash failover.
# Environment: PATRONI_NAME, PATRONI_RESTAPI_USERNAME, PATRONI_RESTAPI_PASSWORD, NOVA_REST_URL (this pod's
# REST API), NOVA_SWITCHOVER_WAIT (seconds). Always exits 0: a failed switchover must not block the stop,
# Patroni still shuts PostgreSQL down cleanly and releases the leader key on SIGTERM.
set -u

rest="${NOVA_REST_URL:-http://127.0.0.1:8008}"
wait_s="${NOVA_SWITCHOVER_WAIT:-30}"

status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$rest/$1" 2>/dev/null || echo 000
}

if [ "$(status primary)" != "200" ]; then
  echo "pre-stop: ${PATRONI_NAME:-this pod} is not the leader, nothing to hand over"
  exit 0
fi

echo "pre-stop: ${PATRONI_NAME:-this pod} is the leader, asking Patroni for a switchover"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
  -u "${PATRONI_RESTAPI_USERNAME:-patroni}:${PATRONI_RESTAPI_PASSWORD:-}" \
  -H 'Content-Type: application/json' \
  -d "{\"leader\": \"${PATRONI_NAME:-}\"}" \
  "$rest/switchover" 2>/dev/null || echo 000)
if [ "$code" != "200" ] && [ "$code" != "202" ]; then
  echo "pre-stop: switchover refused (HTTP $code), stopping anyway"
  exit 0
fi

i=0
while [ "$i" -lt "$wait_s" ]; do
  if [ "$(status primary)" != "200" ]; then
    echo "pre-stop: leadership handed over after ${i}s"
    exit 0
  fi
  sleep 1
  i=$((i + 1))
done
echo "pre-stop: still the leader after ${wait_s}s, stopping anyway"
exit 0
