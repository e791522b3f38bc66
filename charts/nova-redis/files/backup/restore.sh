#!/bin/sh
# Init step of the Redis pods when restore.fromSnapshot is set: start this pod from a named snapshot.
#   restore.sh fetch    (rclone image, S3 repository only) download the snapshot and its checksum
#   restore.sh install  (Redis image) check it (sha256, redis-check-rdb) and lay it out as the data:
#                       dump.rdb plus an AOF whose base is the snapshot (appendonly is always on, and
#                       Redis with appendonly yes loads only the AOF, never a lone dump.rdb)
# Only into an EMPTY data directory: a pod that has data (an AOF, Sentinel state, or an earlier restore)
# is never overwritten; the step logs that and does nothing. "latest" picks the newest snapshot.
set -eu
LOG_NAME="restore-${1:-}"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${RESTORE_SNAPSHOT:?RESTORE_SNAPSHOT must name a snapshot (restore.fromSnapshot)}"
: "${NOVA_REDIS_DATA_DIR:?NOVA_REDIS_DATA_DIR must be set}"
data=$NOVA_REDIS_DATA_DIR
incoming="$data/.restore-incoming"
marker="$data/.nova-redis-restored"
aofdir=appendonlydir
aofname=appendonly.aof

if [ -e "$marker" ] || [ -e "$data/$aofdir" ] || [ -e "$data/sentinel" ]; then
    log "the data directory $data already has data$( [ -f "$marker" ] && printf ' (restored from %s)' "$(cut -d ' ' -f 1 "$marker")"); not restoring: existing data is never overwritten"
    exit 0
fi

resolve() {
    if [ "$RESTORE_SNAPSHOT" = latest ]; then
        _n=$(repo_list | tail -n 1)
        [ -n "$_n" ] || die "restore.fromSnapshot is 'latest' but the repository holds no snapshot of $BACKUP_PREFIX"
        printf '%s\n' "$_n"
    else
        printf '%s\n' "$RESTORE_SNAPSHOT"
    fi
}

# fetch_into DIR: the snapshot and its checksum from the repository into DIR; prints the name.
fetch_into() {
    _name=$(resolve)
    case "$_name" in
        */* | .* | *[!A-Za-z0-9._-]*) die "restore.fromSnapshot '$_name' is not a snapshot file name" ;;
    esac
    mkdir -p "$1"
    repo_get "$_name" "$1/$_name"
    repo_get "$_name.sha256" "$1/$_name.sha256"
    printf '%s\n' "$_name" >"$1/name"
    log "fetched $_name ($(wc -c <"$1/$_name" | tr -d ' ') bytes) from the $BACKUP_REPOSITORY_TYPE repository"
}

case "${1:-}" in
    fetch)
        rm -rf "$incoming"
        fetch_into "$incoming"
        ;;
    install)
        if [ "$BACKUP_REPOSITORY_TYPE" = pv ]; then
            rm -rf "$incoming"
            fetch_into "$incoming"
        fi
        [ -f "$incoming/name" ] || die "no fetched snapshot in $incoming (the restore-fetch step did not run)"
        name=$(cat "$incoming/name")
        file="$incoming/$name"
        [ "$(sha256_of "$file")" = "$(cut -d ' ' -f 1 "$file.sha256")" ] || die "$name does not match its stored sha256: not restoring a damaged snapshot"
        check=$(redis-check-rdb "$file" 2>&1) || die "redis-check-rdb rejects $name: $(printf '%s' "$check" | tail -n 3 | tr '\n' ' ')"
        keys=$(printf '%s\n' "$check" | sed -n 's/^\[info\] \([0-9]*\) keys read$/\1/p')
        # Stage the AOF directory, then rename it into place last: that rename is the commit point (a
        # step that dies before it leaves no appendonlydir, so the next attempt restores again).
        stage="$incoming/$aofdir"
        mkdir -p "$stage"
        # A hard link, not a copy (same volume): Redis never changes either file in place (BGSAVE and AOF
        # rewrites write new files and rename them), so sharing the blocks is safe and halves the space.
        ln "$file" "$stage/$aofname.1.base.rdb" 2>/dev/null || cp "$file" "$stage/$aofname.1.base.rdb"
        printf 'file %s.1.base.rdb seq 1 type b\n' "$aofname" >"$stage/$aofname.manifest"
        mv -f "$file" "$data/dump.rdb"
        mv "$stage" "$data/$aofdir"
        printf '%s %s\n' "$name" "$(date -u +%s)" >"$marker"
        rm -rf "$incoming"
        log "restored $name into $data (${keys:-?} keys, sha256 and redis-check-rdb OK)"
        ;;
    *) die "usage: restore.sh fetch|install" ;;
esac
