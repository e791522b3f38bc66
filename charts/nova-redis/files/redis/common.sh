# shellcheck shell=sh disable=SC2034  # the variables below are read by the scripts that source this file
# Shared by start-redis.sh, start-sentinel.sh, prestop-redis.sh and probe.sh (sourced, never run).
# Everything comes from the environment the StatefulSet sets; nothing here is a password on argv:
# redis-cli reads the password from REDISCLI_AUTH, which cli() sets per call: the Sentinel password
# for the Sentinel port, the Redis password for any other.
set -eu

: "${POD_NAME:?POD_NAME must be set (the pod name, ending in -<ordinal>)}"
: "${NOVA_REDIS_NODES:?NOVA_REDIS_NODES must list every node address, pod 0 first}"
: "${NOVA_REDIS_CONFIG_DIR:?}" "${NOVA_REDIS_DATA_DIR:?}" "${NOVA_REDIS_RUN_DIR:?}"
REDIS_PORT=${REDIS_PORT:-6379}
SENTINEL_PORT=${SENTINEL_PORT:-26379}
SENTINEL_MASTER_SET=${SENTINEL_MASTER_SET:-nova}
DISCOVERY_TIMEOUT=${DISCOVERY_TIMEOUT:-10}
FAILOVER_WAIT_SECONDS=${FAILOVER_WAIT_SECONDS:-20}
CLI_TIMEOUT=${CLI_TIMEOUT:-2}
SENTINEL_STATE="$NOVA_REDIS_DATA_DIR/sentinel/sentinel.conf"
# Sentinel's own password (key sentinel-password of the auth Secret). An existingSecret made for an
# older chart may lack that key (the env ref is optional): Sentinel then keeps using redis-password.
SENTINEL_PASSWORD=${SENTINEL_PASSWORD:-${REDIS_PASSWORD:-}}

ORDINAL=${POD_NAME##*-}

log() {
    printf '%s %s[%s]: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "${LOG_NAME:-nova-redis}" "$POD_NAME" "$*" >&2
}

# node_host N: address of pod N.
node_host() {
    _i=0
    for _h in $NOVA_REDIS_NODES; do
        if [ "$_i" -eq "$1" ]; then
            printf '%s\n' "$_h"
            return 0
        fi
        _i=$((_i + 1))
    done
    log "no address for pod $1 in NOVA_REDIS_NODES"
    return 1
}

MY_HOST=$(node_host "$ORDINAL")
FIRST_HOST=$(node_host 0)
if [ "${NOVA_REDIS_BIND_OWN:-false}" = "true" ]; then
    LOCAL_HOST=$MY_HOST
    BIND_ADDRESSES=$MY_HOST
else
    LOCAL_HOST=127.0.0.1
    BIND_ADDRESSES="* -::*"
fi

# cli HOST PORT ARGS...: redis-cli with a time limit and raw output; the Sentinel port gets the
# Sentinel password, any other port the Redis password (both through the environment, never argv).
# Set here for every call, whatever REDISCLI_AUTH the container has (the sentinel container's is
# Sentinel's, the redis container's Redis's). A wrong password is not an exit code: redis-cli prints
# NOAUTH/WRONGPASS and exits 0, so every caller checks the answer itself.
cli() (
    _host=$1
    _port=$2
    shift 2
    if [ "$_port" = "$SENTINEL_PORT" ]; then
        _auth=$SENTINEL_PASSWORD
    else
        _auth=${REDIS_PASSWORD:-}
    fi
    if [ -n "$_auth" ]; then
        REDISCLI_AUTH=$_auth
        export REDISCLI_AUTH
    else
        unset REDISCLI_AUTH
    fi
    # TLS on (NOVA_REDIS_TLS_DIR set): every port is TLS only; the server is verified against the CA.
    if [ -n "${NOVA_REDIS_TLS_DIR:-}" ]; then
        set -- --tls --cacert "$NOVA_REDIS_TLS_DIR/ca.crt" "$@"
    fi
    if command -v timeout >/dev/null 2>&1; then
        timeout "$CLI_TIMEOUT" redis-cli --raw -h "$_host" -p "$_port" "$@" 2>/dev/null
    else
        redis-cli --raw -h "$_host" -p "$_port" "$@" 2>/dev/null
    fi
)

# tls_files: the certificate lines of a redis.conf / sentinel.conf when TLS is on (the rendered file has
# tls-port and port 0; the files are the mounted Secret, NOVA_REDIS_TLS_DIR).
tls_files() {
    if [ -n "${NOVA_REDIS_TLS_DIR:-}" ]; then
        printf 'tls-cert-file %s\n' "$(conf_quote "$NOVA_REDIS_TLS_DIR/tls.crt")"
        printf 'tls-key-file %s\n' "$(conf_quote "$NOVA_REDIS_TLS_DIR/tls.key")"
        printf 'tls-ca-cert-file %s\n' "$(conf_quote "$NOVA_REDIS_TLS_DIR/ca.crt")"
    fi
}

# info_field FIELD: a field of the local Redis's INFO replication ("" when unreachable).
info_field() {
    cli "$LOCAL_HOST" "$REDIS_PORT" INFO replication | tr -d '\r' | sed -n "s/^$1://p"
}

# sentinel_view HOST: "<config-epoch> <master host>" as the Sentinel on HOST sees it, nothing if it does not know.
sentinel_view() {
    cli "$1" "$SENTINEL_PORT" SENTINEL master "$SENTINEL_MASTER_SET" | tr -d '\r' | awk '
        NR % 2 == 1 { key = $0; next }
        key == "ip" { ip = $0 }
        key == "config-epoch" { epoch = $0 }
        END { if (ip != "" && epoch != "") print epoch, ip }'
}

# ask_sentinels [peers|all]: the master named by the reachable Sentinel with the highest config epoch.
ask_sentinels() {
    _views=""
    for _h in $NOVA_REDIS_NODES; do
        if [ "${1:-all}" = "peers" ] && [ "$_h" = "$MY_HOST" ]; then
            continue
        fi
        _v=$(sentinel_view "$_h" || true)
        if [ -n "$_v" ]; then
            _views="$_views$_v
"
        fi
    done
    printf '%s' "$_views" | sort -n -r -k1,1 | awk 'NF == 2 { print $2; exit }'
}

# failing_over: true while a reachable Sentinel reports the master of the set objectively down or a failover in
# progress (its flags): the Sentinels are replacing the master they name.
failing_over() {
    for _h in $NOVA_REDIS_NODES; do
        _f=$(cli "$_h" "$SENTINEL_PORT" SENTINEL master "$SENTINEL_MASTER_SET" | tr -d '\r' | awk '
            NR % 2 == 1 { key = $0; next }
            key == "flags" { print; exit }' || true)
        case ",$_f," in
            *,o_down,* | *,failover_in_progress,*) return 0 ;;
        esac
    done
    return 1
}

# sentinels_agree HOST: every Sentinel that answers names HOST as the master.
sentinels_agree() {
    for _h in $NOVA_REDIS_NODES; do
        _v=$(sentinel_view "$_h" || true)
        if [ -n "$_v" ] && [ "${_v#* }" != "$1" ]; then
            return 1
        fi
    done
    return 0
}

# wait_for_sentinels [peers|all]: ask_sentinels, retried for DISCOVERY_TIMEOUT seconds.
wait_for_sentinels() {
    _deadline=$(( $(date +%s) + DISCOVERY_TIMEOUT ))
    while :; do
        _m=$(ask_sentinels "${1:-all}")
        if [ -n "$_m" ]; then
            printf '%s\n' "$_m"
            return 0
        fi
        if [ "$(date +%s)" -ge "$_deadline" ]; then
            return 0
        fi
        sleep 1
    done
}

# saved_master: the master this pod's Sentinel knew when it last ran (kept on the data volume).
saved_master() {
    if [ -f "$SENTINEL_STATE" ]; then
        awk -v set="$SENTINEL_MASTER_SET" '$1 == "sentinel" && $2 == "monitor" && $3 == set { print $4; exit }' "$SENTINEL_STATE"
    fi
}

# wait_resolvable HOST: wait (bounded) until HOST resolves; the headless Service publishes
# not-ready addresses, so this only waits for the pod's own DNS record to appear.
wait_resolvable() {
    case "$1" in
        *[!0-9.]*) ;;
        *) return 0 ;; # an IPv4 address
    esac
    case "$1" in
        *:*) return 0 ;; # an IPv6 address
    esac
    if ! command -v getent >/dev/null 2>&1; then
        return 0
    fi
    _deadline=$(( $(date +%s) + 60 ))
    until getent hosts "$1" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$_deadline" ]; then
            log "$1 does not resolve after 60s; continuing"
            return 0
        fi
        sleep 1
    done
}

# conf_quote VALUE: VALUE as a double-quoted Redis config string.
conf_quote() {
    printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# check_password: refuse a password Redis config files cannot hold.
check_password() {
    case "${REDIS_PASSWORD:-}" in
        *'
'*) log "the redis-password in the Secret contains a newline; Redis cannot use it"; exit 1 ;;
    esac
    case "$SENTINEL_PASSWORD" in
        *'
'*) log "the sentinel-password in the Secret contains a newline; Sentinel cannot use it"; exit 1 ;;
    esac
}
