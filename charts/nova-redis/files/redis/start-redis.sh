#!/bin/sh
# Starts redis-server. Before serving, it asks the Sentinels who the master is (the answer with the
# highest config epoch wins), so a restarted old master always comes back as a replica. With no
# Sentinel state anywhere (first start) pod 0 is the master and every other pod its replica.
set -eu
LOG_NAME=start-redis
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

mkdir -p "$NOVA_REDIS_RUN_DIR" "$NOVA_REDIS_DATA_DIR"
umask 077
check_password
wait_resolvable "$MY_HOST"

master=$(wait_for_sentinels all)
if [ -n "$master" ]; then
    log "Sentinels name $master as master"
    # This pod restarted while the Sentinels fail over away from it (they still name it, but see it down): as a
    # master it would take writes, even acknowledged by a replica that reconnects to it, which the failover then
    # discards. Serve only when they have named another master or given the failover up (bounded wait).
    if [ "$master" = "$MY_HOST" ] && failing_over; then
        log "the Sentinels are failing over from this node: waiting up to ${FAILOVER_WAIT_SECONDS}s before serving"
        _deadline=$(( $(date +%s) + FAILOVER_WAIT_SECONDS ))
        while failing_over && [ "$(date +%s)" -lt "$_deadline" ]; do
            sleep 1
        done
        master=$(wait_for_sentinels all)
        [ -n "$master" ] || master=$MY_HOST
        log "after the failover the Sentinels name $master as master"
    fi
else
    master=$(saved_master)
    if [ -n "$master" ]; then
        log "no Sentinel answered within ${DISCOVERY_TIMEOUT}s; using the master this pod's Sentinel saved: $master"
    else
        master=$FIRST_HOST
        log "no Sentinel state anywhere: first start, pod 0 ($master) is the master"
    fi
fi

# acl_users: one `user` line per ACL_USER_<i>_* variable set, with the SHA-256 of its password.
acl_users() {
    i=0
    name=""
    rules=""
    password=""
    while :; do
        eval "name=\${ACL_USER_${i}_NAME:-}"
        [ -n "$name" ] || return 0
        eval "rules=\${ACL_USER_${i}_RULES:-}"
        eval "password=\${ACL_USER_${i}_PASSWORD:-}"
        if [ -z "$password" ]; then
            log "ACL user $name has no password: add key acl-$name-password to the auth Secret"
            exit 1
        fi
        hash=$(printf '%s' "$password" | sha256sum | cut -d ' ' -f 1)
        printf 'user %s reset on #%s %s\n' "$name" "$hash" "$rules"
        i=$((i + 1))
    done
}

conf="$NOVA_REDIS_RUN_DIR/redis.conf"
cp "$NOVA_REDIS_CONFIG_DIR/redis.conf" "$conf"
{
    printf '\n# Added by start-redis.sh\n'
    printf 'bind %s\n' "$BIND_ADDRESSES"
    printf 'dir %s\n' "$NOVA_REDIS_DATA_DIR"
    printf 'replica-announce-ip %s\n' "$MY_HOST"
    printf 'replica-announce-port %s\n' "$REDIS_PORT"
    if [ -n "${REDIS_PASSWORD:-}" ]; then
        printf 'include %s\n' "$NOVA_REDIS_RUN_DIR/auth.conf"
    fi
    tls_files
    if [ "$master" != "$MY_HOST" ]; then
        printf 'replicaof %s %s\n' "$master" "$REDIS_PORT"
    fi
} >>"$conf"
if [ -n "${REDIS_PASSWORD:-}" ]; then
    q=$(conf_quote "$REDIS_PASSWORD")
    {
        printf 'requirepass %s\nmasterauth %s\n' "$q" "$q"
        acl_users
    } >"$NOVA_REDIS_RUN_DIR/auth.conf"
fi

if [ "$master" = "$MY_HOST" ]; then
    log "starting as master"
else
    log "starting as replica of $master"
fi
exec redis-server "$conf"
