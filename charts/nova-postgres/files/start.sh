#!/bin/sh
# Entry point of the PostgreSQL container. It runs on every start of the container: the first one and each
# restart after a crash (init containers do not run again then), and ends by becoming Patroni (exec).
#  1. Role label: a container that died uncleanly left its pod labelled with its last role (`primary` after the
#     leader's death). role_label.py sets it to `stopped` (and the readiness file to `stopped`) before PostgreSQL
#     can run, so no Service selects this pod until a Patroni callback labels it with the role it really has.
#  2. Data directory: PostgreSQL refuses to start unless PGDATA is owned by the user running it and has mode
#     0700 or 0750. A recursive fsGroup change (cloud volumes, fsGroupChangePolicy Always or a first mount)
#     leaves it 02770; Spilo's own launcher repairs that (zalando/spilo postgres-appliance/launch.sh:
#     `mkdir -p "$PGDATA"`, `chown -R postgres: "$PGROOT"`, `chmod 0700 "$PGDATA"`), and this chart does not
#     run that launcher, so the repair is here. The owner cannot be changed without root: a foreign owner fails
#     with a message instead. Only sh, find, ls, id, mkdir and chmod: the images differ (Spilo's Ubuntu, Percona's
#     ubi9-minimal), and awk is not among what both promise.
# Environment: NOVA_DATA_DIR (PGDATA, the data_dir of patroni.yml), and role_label.py's (POD_NAME,
# POD_NAMESPACE, NOVA_ROLE_LABEL, NOVA_ROLE_FILE).
set -eu

here=$(dirname -- "$0")
data="${NOVA_DATA_DIR:?NOVA_DATA_DIR is not set}"

if ! python3 "$here/role_label.py" on_boot -; then
  echo "start: could not reset the role label; readiness stays false until a Patroni callback labels this pod" >&2
fi

umask 077
mkdir -p -- "$data"
if [ -z "$(find "$data" -prune -user "$(id -u)")" ]; then
  # shellcheck disable=SC2012 # one known path; ls -n is the POSIX way to print its numeric owner
  owner=$(ls -nd -- "$data" | { read -r _ _ uid _; echo "$uid"; })
  echo "start: $data is owned by uid $owner, PostgreSQL runs as uid $(id -u): set securityContext.runAsUser" \
    "and podSecurityContext.runAsUser to $owner, or chown the volume to uid $(id -u)" >&2
  exit 1
fi
chmod 0700 "$data"
chmod g-s "$data"

exec patroni "$here/patroni.yml"
