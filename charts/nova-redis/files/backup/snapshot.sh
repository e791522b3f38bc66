#!/bin/sh
# Step 1 of the backup Job (Redis image): take an RDB snapshot from a REPLICA, never the master.
# Asks the Sentinels (`SENTINEL replicas <set>`) for replicas whose link to the master is up, checks the
# replica itself (role slave, link up, no sync running), then `redis-cli --rdb` asks that replica for a
# fresh RDB (REPLCONF rdb-only + SYNC: the replica forks and streams its dataset; the master does
# nothing). The file is checked with redis-check-rdb, named <prefix>-<UTC time>.rdb and its SHA-256
# written next to it in BACKUP_WORK_DIR for store.sh.
set -eu
LOG_NAME=snapshot
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${NOVA_REDIS_NODES:?NOVA_REDIS_NODES must list every Redis pod address}"
: "${BACKUP_WORK_DIR:?BACKUP_WORK_DIR must be set}"
REDIS_PORT=${REDIS_PORT:-6379}
SENTINEL_PORT=${SENTINEL_PORT:-26379}
SENTINEL_MASTER_SET=${SENTINEL_MASTER_SET:-nova}
SENTINEL_PASSWORD=${SENTINEL_PASSWORD:-${REDIS_PASSWORD:-}}
CLI_TIMEOUT=${CLI_TIMEOUT:-5}
SNAPSHOT_TIMEOUT=${SNAPSHOT_TIMEOUT:-600}

# cli AUTH TIMEOUT HOST PORT ARGS...: redis-cli, password through REDISCLI_AUTH, stdout and stderr together
# (a wrong password is a message, not an exit code).
cli() (
    _auth=$1 _t=$2 _host=$3 _port=$4
    shift 4
    if [ -n "$_auth" ]; then REDISCLI_AUTH=$_auth; export REDISCLI_AUTH; else unset REDISCLI_AUTH; fi
    # TLS on (NOVA_REDIS_TLS_DIR, as in files/redis/common.sh): every port is TLS only, verified against the CA
    # (the nodes and Sentinel announce host names, which the certificate carries).
    if [ -n "${NOVA_REDIS_TLS_DIR:-}" ]; then set -- --tls --cacert "$NOVA_REDIS_TLS_DIR/ca.crt" "$@"; fi
    timeout "$_t" redis-cli --raw -h "$_host" -p "$_port" "$@" 2>&1 </dev/null
)

# replicas_of SENTINEL_HOST: one line per replica the Sentinel knows, "host port flags link-status"; an error
# answer (unreachable, NOAUTH/WRONGPASS) is printed as "error <message>".
replicas_of() {
    cli "$SENTINEL_PASSWORD" "$CLI_TIMEOUT" "$1" "$SENTINEL_PORT" SENTINEL replicas "$SENTINEL_MASTER_SET" | tr -d '\r' | awk '
        function emit() { if (ip != "") print ip, port, flags, link }
        NR == 1 && (/^(ERR|NOAUTH|WRONGPASS|NOPERM)/ || /^Could not connect/ || /^AUTH failed/) { print "error", $0; bad = 1; exit }
        NR % 2 == 1 { key = $0; next }
        key == "name" { emit(); ip = ""; port = ""; flags = ""; link = "" }
        key == "ip" { ip = $0 }
        key == "port" { port = $0 }
        key == "flags" { flags = $0 }
        key == "master-link-status" { link = $0 }
        END { if (!bad) emit() }'
}

mkdir -p "$BACKUP_WORK_DIR"
candidates=""
reasons=""
for s in $NOVA_REDIS_NODES; do
    known=$(replicas_of "$s" || true)
    answer=$(printf '%s\n' "$known" | awk '$3 == "slave" && $4 == "ok" { print $1, $2 }')
    if [ -n "$answer" ]; then
        candidates=$answer
        log "Sentinel $s:$SENTINEL_PORT names healthy replicas: $(printf '%s' "$answer" | tr '\n' ' ')"
        break
    fi
    # Keep why this Sentinel gave nothing: its error, or the replicas it knows and their state.
    case "$known" in
        error*) why=${known#error } ;;
        '') why="no answer, or no replica known" ;;
        *) why="no replica with flags slave and master-link-status ok: $(printf '%s\n' "$known" | awk '{ printf "%s:%s flags=%s link=%s; ", $1, $2, $3, $4 }')" ;;
    esac
    reasons="$reasons [$s: $why]"
done
[ -n "$candidates" ] || die "no Sentinel named a healthy replica of $SENTINEL_MASTER_SET (the snapshot is never taken from the master):$reasons"

name="$BACKUP_PREFIX-$(date -u '+%Y%m%dT%H%M%SZ').rdb"
file="$BACKUP_WORK_DIR/$name"
taken=""
failures=""
while read -r host port; do
    [ -n "$host" ] || continue
    info=$(cli "${REDIS_PASSWORD:-}" "$CLI_TIMEOUT" "$host" "$port" INFO replication | tr -d '\r' || true)
    case "$info" in
        *role:slave*) ;;
        *)
            failures="$failures [$host:$port: not a replica now: $(printf '%s' "$info" | head -n 2 | tr '\n' ' ')]"
            log "skipping $host:$port: not a replica now"
            continue
            ;;
    esac
    if ! printf '%s\n' "$info" | grep -qx 'master_link_status:up' || ! printf '%s\n' "$info" | grep -qx 'master_sync_in_progress:0'; then
        failures="$failures [$host:$port: its link to the master is not up or it is syncing]"
        log "skipping $host:$port: its link to the master is not up or it is syncing"
        continue
    fi
    log "taking the snapshot from replica $host:$port into $file"
    rm -f "$file"
    if out=$(cli "${REDIS_PASSWORD:-}" "$SNAPSHOT_TIMEOUT" "$host" "$port" --rdb "$file"); then
        log "redis-cli: $(printf '%s' "$out" | tail -n 1)"
        printf '%s %s\n' "$host" "$port" >"$BACKUP_WORK_DIR/source"
        taken=yes
        break
    fi
    failures="$failures [$host:$port: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')]"
    log "snapshot from $host:$port failed"
done <<EOF
$candidates
EOF
[ -n "$taken" ] || die "no replica gave a snapshot (never the master):$failures"

check=$(redis-check-rdb "$file" 2>&1) || die "redis-check-rdb rejects $name: $(printf '%s' "$check" | tail -n 3 | tr '\n' ' ')"
keys=$(printf '%s\n' "$check" | sed -n 's/^\[info\] \([0-9]*\) keys read$/\1/p')
sha256_of "$file" >"$file.sha256"
printf '%s\n' "$name" >"$BACKUP_WORK_DIR/current"
log "snapshot $name: $(wc -c <"$file" | tr -d ' ') bytes, ${keys:-?} keys, redis-check-rdb OK, sha256 $(cat "$file.sha256")"
