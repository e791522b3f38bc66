#!/bin/sh
# Step 2 of the backup Job: store the verified snapshot from BACKUP_WORK_DIR in the repository
# (backup.repository.type: a mounted PersistentVolume, or S3 through rclone), check what was stored,
# write <prefix>.last-success, then apply retention: keep the BACKUP_KEEP newest snapshots of this
# release, delete older ones (only names this chart writes; never the one just stored). Any failure
# exits non-zero with the reason; success is printed only after the stored copy was checked.
set -eu
LOG_NAME=store
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${BACKUP_WORK_DIR:?BACKUP_WORK_DIR must be set}"
BACKUP_KEEP=${BACKUP_KEEP:-7}
case "$BACKUP_KEEP" in
    '' | *[!0-9]* | 0) die "BACKUP_KEEP must be a positive number (backup.retention.keep), got '$BACKUP_KEEP'" ;;
esac

[ -f "$BACKUP_WORK_DIR/current" ] || die "no snapshot in $BACKUP_WORK_DIR (the snapshot step did not finish)"
name=$(cat "$BACKUP_WORK_DIR/current")
snapshot_name_ok "$name" || die "unexpected snapshot name '$name'"
file="$BACKUP_WORK_DIR/$name"
sum=$(cat "$file.sha256")
[ "$(sha256_of "$file")" = "$sum" ] || die "$name changed since the snapshot step (sha256 mismatch)"
size=$(wc -c <"$file" | tr -d ' ')

where=$BACKUP_PV_DIR
[ "$BACKUP_REPOSITORY_TYPE" = s3 ] && where=$BACKUP_S3_TARGET
log "storing $name ($size bytes) in $BACKUP_REPOSITORY_TYPE repository $where"
# The checksum first, then the snapshot: a listed snapshot always has its checksum.
repo_put "$file.sha256" "$name.sha256"
repo_put "$file" "$name"
stored=$(repo_size "$name")
[ "$stored" = "$size" ] || die "stored $name has $stored bytes, expected $size"
if [ "$BACKUP_REPOSITORY_TYPE" = pv ]; then
    [ "$(sha256_of "$BACKUP_PV_DIR/$name")" = "$sum" ] || die "stored $name does not match its sha256"
fi

printf '%s %s\n' "$name" "$(date -u +%s)" >"$BACKUP_WORK_DIR/last-success"
repo_put "$BACKUP_WORK_DIR/last-success" "$BACKUP_PREFIX.last-success"

all=$(repo_list)
count=$(printf '%s\n' "$all" | grep -c . || true)
if [ "$count" -gt "$BACKUP_KEEP" ]; then
    printf '%s\n' "$all" | head -n "$((count - BACKUP_KEEP))" | while IFS= read -r old; do
        [ "$old" != "$name" ] || continue
        log "retention (keep $BACKUP_KEEP): deleting $old"
        repo_delete "$old"
        repo_delete "$old.sha256"
    done
fi
log "OK: snapshot $name stored in $where ($size bytes, sha256 $sum); $(repo_list | grep -c . || true) snapshots kept"
