# shellcheck shell=sh
# Shared by snapshot.sh, store.sh and restore.sh (sourced, never run). POSIX sh: the scripts run in the
# Redis image (Debian, dash) and in the rclone image (Alpine, BusyBox sh).
# Every failure goes through die(): one line naming what failed and why, then exit 1, so the Job fails
# and its log says why. Passwords come only from the environment, never argv.
set -eu

: "${BACKUP_PREFIX:?BACKUP_PREFIX must be set (the snapshot name prefix, the release fullname)}"
BACKUP_REPOSITORY_TYPE=${BACKUP_REPOSITORY_TYPE:-pv}
BACKUP_PV_DIR=${BACKUP_PV_DIR:-/repository}
BACKUP_S3_TARGET=${BACKUP_S3_TARGET:-}
RCLONE=${RCLONE:-rclone}
# Bounded network behaviour for rclone: an unreachable endpoint fails within about a minute, not hours.
RCLONE_FLAGS=${RCLONE_FLAGS:---retries 2 --low-level-retries 2 --contimeout 10s --timeout 60s}

log() {
    printf '%s %s: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "${LOG_NAME:-nova-redis-backup}" "$*" >&2
}

die() {
    log "FAILED: $*"
    exit 1
}

# snapshot_name_ok NAME: NAME is one of this chart's snapshot file names (<prefix>-<UTC time>.rdb).
snapshot_name_ok() {
    case "$1" in
        */* | .*) return 1 ;;
        "$BACKUP_PREFIX"-[0-9]*T[0-9]*Z.rdb) return 0 ;;
        *) return 1 ;;
    esac
}

RCLONE_ERR="${TMPDIR:-/tmp}/nova-redis-rclone.err"

# rclone_run ARGS...: rclone with the bounded flags; stdout is the answer, stderr goes to RCLONE_ERR (the
# reason a failure is reported with, see rclone_why).
rclone_run() {
    # shellcheck disable=SC2086  # RCLONE_FLAGS is a list of flags
    "$RCLONE" $RCLONE_FLAGS "$@" 2>"$RCLONE_ERR"
}

# rclone_why: the last lines rclone printed on stderr, on one line.
rclone_why() {
    grep -v 'NOTICE: Config file' "$RCLONE_ERR" 2>/dev/null | tail -n 3 | tr '\n' ' '
}

# repo_list: this release's snapshot names in the repository, oldest first (the UTC time in the name sorts).
repo_list() {
    case "$BACKUP_REPOSITORY_TYPE" in
        pv)
            [ -d "$BACKUP_PV_DIR" ] || die "the PV repository $BACKUP_PV_DIR does not exist (is backup.repository.pv.existingClaim mounted?)"
            for _f in "$BACKUP_PV_DIR"/"$BACKUP_PREFIX"-*.rdb; do
                [ -f "$_f" ] || continue
                _n=${_f##*/}
                if snapshot_name_ok "$_n"; then printf '%s\n' "$_n"; fi
            done | LC_ALL=C sort
            ;;
        s3)
            _out=$(rclone_run lsf --files-only --include "$BACKUP_PREFIX-*.rdb" "$BACKUP_S3_TARGET/") ||
                die "cannot list $BACKUP_S3_TARGET: $(rclone_why)"
            printf '%s\n' "$_out" | while IFS= read -r _n; do
                if snapshot_name_ok "$_n"; then printf '%s\n' "$_n"; fi
            done | LC_ALL=C sort
            ;;
        *) die "unknown repository type '$BACKUP_REPOSITORY_TYPE' (backup.repository.type: pv or s3)" ;;
    esac
}

# repo_put LOCAL NAME: store LOCAL as NAME (atomically on a PV: copy to a temp name, then rename).
repo_put() {
    case "$BACKUP_REPOSITORY_TYPE" in
        pv)
            [ -d "$BACKUP_PV_DIR" ] || die "the PV repository $BACKUP_PV_DIR does not exist (is backup.repository.pv.existingClaim mounted?)"
            _tmp="$BACKUP_PV_DIR/.$2.partial"
            cp "$1" "$_tmp" 2>/dev/null || { rm -f "$_tmp"; die "cannot write $_tmp (repository not writable or full)"; }
            mv -f "$_tmp" "$BACKUP_PV_DIR/$2" || die "cannot rename $_tmp to $2"
            ;;
        s3)
            rclone_run copyto "$1" "$BACKUP_S3_TARGET/$2" || die "upload of $2 to $BACKUP_S3_TARGET failed: $(rclone_why)"
            ;;
    esac
}

# repo_get NAME LOCAL: fetch NAME into LOCAL.
repo_get() {
    case "$BACKUP_REPOSITORY_TYPE" in
        pv)
            [ -f "$BACKUP_PV_DIR/$1" ] || die "snapshot $1 is not in the PV repository $BACKUP_PV_DIR"
            cp "$BACKUP_PV_DIR/$1" "$2" || die "cannot copy $1 from $BACKUP_PV_DIR"
            ;;
        s3)
            rclone_run copyto "$BACKUP_S3_TARGET/$1" "$2" || die "download of $1 from $BACKUP_S3_TARGET failed: $(rclone_why)"
            [ -f "$2" ] || die "snapshot $1 is not in $BACKUP_S3_TARGET"
            ;;
    esac
}

# repo_size NAME: the stored object's size in bytes.
repo_size() {
    case "$BACKUP_REPOSITORY_TYPE" in
        pv) wc -c <"$BACKUP_PV_DIR/$1" | tr -d ' ' ;;
        s3)
            _out=$(rclone_run lsf --files-only --format s --include "$1" "$BACKUP_S3_TARGET/") ||
                die "cannot read the size of $1 in $BACKUP_S3_TARGET: $(rclone_why)"
            printf '%s\n' "$_out" | head -n 1
            ;;
    esac
}

# repo_delete NAME: remove NAME (a missing object is not an error).
repo_delete() {
    case "$BACKUP_REPOSITORY_TYPE" in
        pv) rm -f "$BACKUP_PV_DIR/$1" ;;
        s3)
            rclone_run deletefile "$BACKUP_S3_TARGET/$1" || case "$(rclone_why)" in
                *"doesn't exist"* | *"not found"* | *"NoSuchKey"*) ;;
                *) die "cannot delete $1 from $BACKUP_S3_TARGET: $(rclone_why)" ;;
            esac
            ;;
    esac
}

# sha256_of FILE: the hex SHA-256 of FILE.
sha256_of() {
    sha256sum "$1" | cut -d ' ' -f 1
}
