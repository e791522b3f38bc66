#!/bin/sh
# helm test: this service's Redis credentials work.
#   - the write-safe endpoint REDIS_HOST:REDIS_PORT accepts AUTH with REDIS_PASSWORD (as REDIS_USERNAME when
#     the service has its own ACL user) and answers PING;
#   - every Sentinel in REDIS_SENTINEL_ADDRS accepts REDIS_SENTINEL_PASSWORD (else REDIS_PASSWORD of the
#     default user) and knows the master set REDIS_SENTINEL_MASTER.
# Speaks RESP through nc (netcat-openbsd, -N), so no redis-cli is needed. Retries CHECK_ATTEMPTS times.
set -eu

attempts="${CHECK_ATTEMPTS:-5}"

# resp_command ARG... : one command as a RESP array (binary-safe for any password).
resp_command() {
    printf '*%d\r\n' "$#"
    for arg in "$@"; do
        printf '$%d\r\n%s\r\n' "${#arg}" "$arg"
    done
}

# ask USER PASSWORD HOST PORT COMMAND...: AUTH (as USER when given, when a password is set) and COMMAND, then
# half-close (nc -N: Sentinel has no QUIT); prints the replies.
ask() {
    user="$1"
    password="$2"
    host="$3"
    port="$4"
    shift 4
    {
        if [ -n "$user" ]; then
            resp_command AUTH "$user" "$password"
        elif [ -n "$password" ]; then
            resp_command AUTH "$password"
        fi
        resp_command "$@"
    } | nc -N -w 5 "$host" "$port" | tr -d '\r'
}

check_master() {
    out=$(ask "${REDIS_USERNAME:-}" "${REDIS_PASSWORD:-}" "$REDIS_HOST" "$REDIS_PORT" PING) || return 1
    case "$out" in
        *-WRONGPASS*|*-NOAUTH*|*-ERR*) echo "redis $REDIS_HOST:$REDIS_PORT refused: $out" >&2; return 1 ;;
        *+PONG*) echo "redis $REDIS_HOST:$REDIS_PORT: AUTH and PING ok"; return 0 ;;
        *) echo "redis $REDIS_HOST:$REDIS_PORT: unexpected reply: $out" >&2; return 1 ;;
    esac
}

check_sentinels() {
    # Sentinel has its own password (REDIS_SENTINEL_PASSWORD, key sentinel-password); without it Sentinel
    # uses the default user's redis-password, which a service with its own ACL user does not receive.
    if [ -n "${REDIS_SENTINEL_PASSWORD:-}" ]; then
        sentinel_password="$REDIS_SENTINEL_PASSWORD"
    elif [ -z "${REDIS_USERNAME:-}" ]; then
        sentinel_password="${REDIS_PASSWORD:-}"
    else
        echo "sentinel: skipped for ACL user $REDIS_USERNAME (no REDIS_SENTINEL_PASSWORD)"
        return 0
    fi
    old_ifs="$IFS"
    IFS=','
    set -f
    # shellcheck disable=SC2086 # split the comma list on purpose (globbing is off)
    set -- ${REDIS_SENTINEL_ADDRS:-}
    set +f
    IFS="$old_ifs"
    for addr in "$@"; do
        out=$(ask "" "$sentinel_password" "${addr%:*}" "${addr##*:}" SENTINEL get-master-addr-by-name "$REDIS_SENTINEL_MASTER") || return 1
        case "$out" in
            *-WRONGPASS*|*-NOAUTH*) echo "sentinel $addr refused the password: $out" >&2; return 1 ;;
            *'*2'*) echo "sentinel $addr knows master set $REDIS_SENTINEL_MASTER" ;;
            *) echo "sentinel $addr: no master for $REDIS_SENTINEL_MASTER: $out" >&2; return 1 ;;
        esac
    done
}

i=1
while :; do
    if check_master && check_sentinels; then
        exit 0
    fi
    if [ "$i" -ge "$attempts" ]; then
        echo "redis check failed after $attempts attempts" >&2
        exit 1
    fi
    i=$((i + 1))
    sleep 3
done
