#!/bin/sh
# Wait until every host:port in WAIT_FOR (space separated) accepts TCP connections.
# The whole wait is bounded by WAIT_TIMEOUT_SECONDS. On timeout, WAIT_ON_TIMEOUT decides:
#   fail     - exit 1 (the kubelet restarts this init container with back-off)
#   continue - exit 0 and let the service start degraded (it must cope with the late dependency)
# Needs: nc with -z (netcat-openbsd), date, sleep.
set -eu

timeout="${WAIT_TIMEOUT_SECONDS:-120}"
on_timeout="${WAIT_ON_TIMEOUT:-fail}"
interval="${WAIT_INTERVAL_SECONDS:-2}"
start=$(date +%s)

for target in ${WAIT_FOR:-}; do
    host="${target%:*}"
    port="${target##*:}"
    until nc -z -w 2 "$host" "$port" >/dev/null 2>&1; do
        elapsed=$(( $(date +%s) - start ))
        if [ "$elapsed" -ge "$timeout" ]; then
            if [ "$on_timeout" = "continue" ]; then
                echo "wait-for: $host:$port not reachable after ${elapsed}s; starting degraded"
                exit 0
            fi
            echo "wait-for: $host:$port not reachable after ${elapsed}s; giving up" >&2
            exit 1
        fi
        echo "wait-for: waiting for $host:$port (${elapsed}s of ${timeout}s)"
        sleep "$interval"
    done
    echo "wait-for: $host:$port is up"
done
