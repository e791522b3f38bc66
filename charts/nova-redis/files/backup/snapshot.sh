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
    timeout "$_t" redis-cli --raw -h "$_host" -p "$_port" "$@" 2>&1
)

# healthy_replicas SENTINEL_HOST: "host port" of every replica that Sentinel sees with its link up.
healthy_replicas() {
    cli "$SENTINEL_PASSWORD" "$CLI_TIMEOUT" "$1" "$SENTINEL_PORT" SENTINEL replicas "$SENTINEL_MASTER_SET" | tr -d '\r' | awk '
        function emit() { if (ip != "" && flags == "slave" && link == "ok") print ip, port }
        NR % 2 == 1 { key = $0; next }
        key == "name" { emit(); ip = ""; port = ""; flags = ""; link = "" }
        key == "ip" { ip = $0 }
        key == "port" { port = $0 }
        key == "flags" { flags = $0 }
        key == "master-link-status" { link = $0 }
        END { emit() }'
}

mkdir -p "$BACKUP_WORK_DIR"
candidates=""
reasons=""
for s in $NOVA_REDIS_NODES; do
    answer=$(healthy_replicas "$s" || true)
    if [ -n "$answer" ]; then
        candidates=$answer
        log "Sentinel $s:$SENTINEL_PORT names healthy replicas: $(printf '%s' "$answer" | tr '\n' ' ')"
        break
    fi
    # Keep why this Sentinel gave nothing (unreachable, NOAUTH/WRONGPASS, no replica with its link up).
    why=$(cli "$SENTINEL_PASSWORD" "$CLI_TIMEOUT" "$s" "$SENTINEL_PORT" SENTINEL replicas "$SENTINEL_MASTER_SET" | tr -d '\r' | head -n 2 | tr '\n' ' ')
    reasons="$reasons [$s: ${why:-no replica with master-link-status ok}]"
done
[ -n "$candidates" ] || die "no Sentinel named a healthy replica of $SENTINEL_MASTER_SET (the snapshot is never taken from the master):$reasons"

name="$BACKUP_PREFIX-$(date -u '+%Y%m%dT%H%M%SZ').rdb"
file="$BACKUP_WORK_DIR/$name"
printf '%s\n' "$candidates" | {
    while read -r host port; do
        [ -n "$host" ] || continue
        info=$(cli "${REDIS_PASSWORD:-}" "$CLI_TIMEOUT" "$host" "$port" INFO replication | tr -d '\r' || true)
        case "$info" in
            *role:slave*) ;;
            *) log "skipping $host:$port: not a replica now ($(printf '%s' "$info" | head -n 2 | tr '\n' ' '))"; continue ;;
        esac
        if ! printf '%s\n' "$info" | grep -qx 'master_link_status:up' || ! printf '%s\n' "$info" | grep -qx 'master_sync_in_progress:0'; then
            log "skipping $host:$port: its link to the master is not up or it is syncing"
            continue
        fi
        log "taking the snapshot from replica $host:$port into $file"
        rm -f "$file"
        if out=$(cli "${REDIS_PASSWORD:-}" "$SNAPSHOT_TIMEOUT" "$host" "$port" --rdb "$file"); then
            log "redis-cli: $(printf '%s' "$out" | tail -n 1)"
            printf '%s %s\n' "$host" "$port" >"$BACKUP_WORK_DIR/source"
            exit 0
        fi
        log "snapshot from $host:$port failed: $(printf '%s' "$out" | tail -n 2 | tr '\n' ' ')"
    done
    exit 1
} || die "no replica gave a snapshot (see the lines above)"

check=$(redis-check-rdb "$file" 2>&1) || die "redis-check-rdb rejects $name: $(printf '%s' "$check" | tail -n 3 | tr '\n' ' ')"
keys=$(printf '%s\n' "$check" | sed -n 's/^\[info\] \([0-9]*\) keys read$/\1/p')
sha256_of "$file" >"$file.sha256"
printf '%s\n' "$name" >"$BACKUP_WORK_DIR/current"
log "snapshot $name: $(wc -c <"$file" | tr -d ' ') bytes, ${keys:-?} keys, redis-check-rdb OK, sha256 $(cat "$file.sha256")"
