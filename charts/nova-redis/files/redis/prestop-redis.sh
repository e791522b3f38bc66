#!/bin/sh
# preStop of the redis container. A replica just stops. A master hands over first: it pauses writes
# (clients wait instead of writing to a node that is about to go), lets a replica catch up, asks a
# Sentinel for a failover, waits until the Sentinels name another master, and turns itself into a
# replica of it before unpausing (paused writes then fail with READONLY instead of being lost).
# Bounded by PRESTOP_TIMEOUT seconds (the pod's grace period minus a margin).
set -eu
LOG_NAME=prestop-redis
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

PRESTOP_TIMEOUT=${PRESTOP_TIMEOUT:-25}
deadline=$(( $(date +%s) + PRESTOP_TIMEOUT ))

role=$(info_field role)
if [ "$role" != "master" ]; then
    log "role is '${role:-unknown}': nothing to hand over"
    exit 0
fi
if [ "$(info_field connected_slaves)" = "0" ]; then
    log "master without replicas: nothing to hand over"
    exit 0
fi

unpause() {
    cli "$LOCAL_HOST" "$REDIS_PORT" CLIENT UNPAUSE >/dev/null || true
}
trap unpause EXIT

cli "$LOCAL_HOST" "$REDIS_PORT" CLIENT PAUSE "$((PRESTOP_TIMEOUT * 1000))" WRITE >/dev/null
log "writes paused; waiting for a replica to catch up"

# A replica has caught up when its acknowledged offset equals the master's offset.
caught_up() {
    cli "$LOCAL_HOST" "$REDIS_PORT" INFO replication | tr -d '\r' | awk -F'[:,=]' '
        /^master_repl_offset:/ { master = $2 }
        /^slave[0-9]+:/ { for (i = 2; i < NF; i += 2) if ($i == "offset") off[++n] = $(i + 1) }
        END { for (i = 1; i <= n; i++) if (off[i] == master) ok = 1; exit ok ? 0 : 1 }'
}
until caught_up; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "no replica caught up before the deadline; stopping without hand-over"
        exit 0
    fi
    sleep 0.1
done

asked=""
for s in "$LOCAL_HOST" $NOVA_REDIS_NODES; do
    [ "$s" = "$MY_HOST" ] && [ "$s" != "$LOCAL_HOST" ] && continue
    if [ "$(cli "$s" "$SENTINEL_PORT" SENTINEL failover "$SENTINEL_MASTER_SET" | tr -d '\r')" = "OK" ]; then
        asked=$s
        break
    fi
done
if [ -z "$asked" ]; then
    log "no Sentinel accepted SENTINEL FAILOVER; stopping without hand-over"
    exit 0
fi
log "Sentinel at $asked started a failover"

while :; do
    new=$(ask_sentinels all)
    if [ -n "$new" ] && [ "$new" != "$MY_HOST" ]; then
        break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "the Sentinels did not switch before the deadline; stopping anyway"
        exit 0
    fi
    sleep 0.2
done
cli "$LOCAL_HOST" "$REDIS_PORT" REPLICAOF "$new" "$REDIS_PORT" >/dev/null || true
log "handed over to $new; now a replica"
# Clients ask any Sentinel: stop only once all that answer name the new master (bounded).
until sentinels_agree "$new" || [ "$(date +%s)" -ge "$deadline" ]; do
    sleep 0.2
done
