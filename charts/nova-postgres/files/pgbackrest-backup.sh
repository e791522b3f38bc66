#!/bin/sh
# Backup Job of the nova-postgres chart: one pgBackRest backup of type $1 (full, diff, incr) into repo1.
# Any failure (repository unreachable, wrong credentials, no primary, archiving broken) exits non-zero with
# pgBackRest's reason on stderr, so the Job fails and kube_job_status_failed / the CronJob's last successful
# time show it. Env: NOVA_STANZA, PGBACKREST_CONFIG_PATH (+ S3 keys), set by the CronJob.
set -eu
type=${1:?usage: pgbackrest-backup.sh full|diff|incr}
stanza=${NOVA_STANZA:?NOVA_STANZA is not set}
say() { printf 'nova-backup: %s\n' "$*" >&2; }

say "stanza ${stanza}: stanza-create (idempotent), check (WAL archiving works), backup --type=${type}"
# stanza-create is a no-op on an existing, matching stanza; it fails when the repository cannot be reached.
pgbackrest --stanza="$stanza" stanza-create
# check forces a WAL switch on the primary and waits until that segment is in the repository.
pgbackrest --stanza="$stanza" check
pgbackrest --stanza="$stanza" --type="$type" backup
# expire runs at the end of backup; info prints what the repository now holds (the Job log keeps it).
pgbackrest --stanza="$stanza" info
say "backup --type=${type} of stanza ${stanza} succeeded"
