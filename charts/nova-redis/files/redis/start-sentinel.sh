#!/bin/sh
# Starts Sentinel with a fresh config in a writable directory on the data volume (Sentinel rewrites
# its file). The master it monitors: what the peer Sentinels say (highest config epoch); else what
# this pod's Sentinel saved last time (a whole-cluster restart); else, on a first start, pod 0.
set -eu
LOG_NAME=start-sentinel
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

: "${SENTINEL_QUORUM:?SENTINEL_QUORUM must be set}"
umask 077
check_password
mkdir -p "$(dirname "$SENTINEL_STATE")"
wait_resolvable "$MY_HOST"

saved=$(saved_master)
myid=""
if [ -f "$SENTINEL_STATE" ]; then
    myid=$(awk '$1 == "sentinel" && $2 == "myid" { print $3; exit }' "$SENTINEL_STATE")
fi
if [ -n "$saved" ]; then
    # This Sentinel ran before: one round of questions, then trust its own saved state.
    master=$(ask_sentinels peers)
    [ -n "$master" ] || master=$saved
else
    master=$(wait_for_sentinels peers)
    if [ -z "$master" ]; then
        master=$FIRST_HOST
        log "no peer Sentinel answered within ${DISCOVERY_TIMEOUT}s and no saved state: first start, monitoring pod 0"
    fi
fi
log "monitoring $SENTINEL_MASTER_SET at $master"
wait_resolvable "$master"

new="$SENTINEL_STATE.new"
{
    cat "$NOVA_REDIS_CONFIG_DIR/sentinel.conf"
    printf '\n# Added by start-sentinel.sh\n'
    printf 'bind %s\n' "$BIND_ADDRESSES"
    printf 'dir %s\n' "$(dirname "$SENTINEL_STATE")"
    printf 'sentinel announce-ip %s\n' "$MY_HOST"
    printf 'sentinel announce-port %s\n' "$SENTINEL_PORT"
    tls_files
    if [ -n "$myid" ]; then
        printf 'sentinel myid %s\n' "$myid"
    fi
    printf 'sentinel monitor %s %s %s %s\n' "$SENTINEL_MASTER_SET" "$master" "$REDIS_PORT" "$SENTINEL_QUORUM"
    cat "$NOVA_REDIS_CONFIG_DIR/sentinel-master.conf"
    # Sentinel's own password (clients, HAProxy and the other Sentinels use it) is sentinel-password;
    # Sentinel logs in to the Redis nodes with redis-password.
    if [ -n "$SENTINEL_PASSWORD" ]; then
        q=$(conf_quote "$SENTINEL_PASSWORD")
        printf 'requirepass %s\n' "$q"
        printf 'sentinel sentinel-pass %s\n' "$q"
    fi
    if [ -n "${REDIS_PASSWORD:-}" ]; then
        printf 'sentinel auth-pass %s %s\n' "$SENTINEL_MASTER_SET" "$(conf_quote "$REDIS_PASSWORD")"
    fi
} >"$new"
mv "$new" "$SENTINEL_STATE"
exec redis-server "$SENTINEL_STATE" --sentinel
