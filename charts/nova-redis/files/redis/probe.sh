#!/bin/sh
# Probes, one script: probe.sh redis-startup|redis-readiness|redis-liveness|sentinel-readiness|sentinel-liveness
#   redis-startup      PING answers PONG (the dataset is loaded)
#   redis-readiness    master: role master; replica: link up and no sync in progress
#   redis-liveness     PING answers PONG, or LOADING while a large dataset loads
#   sentinel-readiness Sentinel answers and knows the master's address
#   sentinel-liveness  Sentinel answers PING
set -eu
LOG_NAME=probe
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

fail() {
    echo "$*"
    exit 1
}

case "${1:-}" in
    redis-startup)
        reply=$(cli "$LOCAL_HOST" "$REDIS_PORT" PING | tr -d '\r')
        [ "$reply" = "PONG" ] || fail "PING: ${reply:-no answer}"
        ;;
    redis-liveness)
        reply=$(cli "$LOCAL_HOST" "$REDIS_PORT" PING | tr -d '\r')
        case "$reply" in
            PONG | LOADING*) ;;
            *) fail "PING: ${reply:-no answer}" ;;
        esac
        ;;
    redis-readiness)
        info=$(cli "$LOCAL_HOST" "$REDIS_PORT" INFO replication | tr -d '\r')
        role=$(printf '%s\n' "$info" | sed -n 's/^role://p')
        case "$role" in
            master) ;;
            slave)
                printf '%s\n' "$info" | grep -q '^master_link_status:up$' || fail "replica: link to master down"
                printf '%s\n' "$info" | grep -q '^master_sync_in_progress:0$' || fail "replica: sync in progress"
                ;;
            *) fail "no INFO replication answer" ;;
        esac
        ;;
    sentinel-liveness)
        reply=$(cli "$LOCAL_HOST" "$SENTINEL_PORT" PING | tr -d '\r')
        [ "$reply" = "PONG" ] || fail "Sentinel PING: ${reply:-no answer}"
        ;;
    sentinel-readiness)
        addr=$(cli "$LOCAL_HOST" "$SENTINEL_PORT" SENTINEL get-master-addr-by-name "$SENTINEL_MASTER_SET" | head -n 1 | tr -d '\r')
        [ -n "$addr" ] || fail "Sentinel does not know the master of $SENTINEL_MASTER_SET"
        ;;
    *)
        fail "usage: probe.sh redis-startup|redis-readiness|redis-liveness|sentinel-readiness|sentinel-liveness"
        ;;
esac
