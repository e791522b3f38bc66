#!/bin/sh
# helm test: this service's Redis credentials work.
#   - the write-safe endpoint REDIS_HOST:REDIS_PORT accepts AUTH with REDIS_PASSWORD (as REDIS_USERNAME when
#     the service has its own ACL user) and answers PING;
#   - every Sentinel in REDIS_SENTINEL_ADDRS accepts REDIS_SENTINEL_PASSWORD (else REDIS_PASSWORD of the
#     default user) and knows the master set REDIS_SENTINEL_MASTER.
# Speaks RESP through nc (netcat-openbsd, -N), so no redis-cli is needed. With REDIS_TLS=true (the Redis
# image runs this check then) it asks through `redis-cli --tls --cacert $REDIS_CA_FILE` instead, verifying the
# server against the CA the service gets. Retries CHECK_ATTEMPTS times.
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
    if [ "${REDIS_TLS:-false}" = "true" ]; then
        ask_tls "$user" "$password" "$host" "$port" "$@"
        return
    fi
    {
        if [ -n "$user" ]; then
            resp_command AUTH "$user" "$password"
        elif [ -n "$password" ]; then
            resp_command AUTH "$password"
        fi
        resp_command "$@"
    } | nc -N -w 5 "$host" "$port" | tr -d '\r'
}

# ask_tls USER PASSWORD HOST PORT COMMAND...: ask() over TLS with redis-cli (password through REDISCLI_AUTH,
# never argv); its plain replies are written back with RESP's type bytes (+PONG, -ERR ..., *2 and the lines
# of an array), so the callers read both paths alike. redis-cli's "AUTH failed: <error>" becomes -<error>.
ask_tls() (
    user="$1"
    password="$2"
    host="$3"
    port="$4"
    shift 4
    if [ -n "$password" ]; then
        REDISCLI_AUTH="$password"
        export REDISCLI_AUTH
    fi
    if [ -n "$user" ]; then
        set -- --user "$user" "$@"
    fi
    redis-cli --tls --cacert "${REDIS_CA_FILE:?REDIS_CA_FILE must name the CA with REDIS_TLS=true}" \
        --no-auth-warning -h "$host" -p "$port" "$@" 2>&1 | tr -d '\r' | awk '
        NF == 0 { next }
        /^AUTH failed: / { sub(/^AUTH failed: /, ""); print "-" $0; next }
        /^(NOAUTH|WRONGPASS|ERR|NOPERM|WRONGTYPE) / { print "-" $0; next }
        /^Could not |^Error: / { print "-ERR " $0; next }
        { line[++n] = $0 }
        END {
            if (n == 1) print "+" line[1]
            else if (n > 1) { print "*" n; for (i = 1; i <= n; i++) print line[i] }
        }'
)

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
