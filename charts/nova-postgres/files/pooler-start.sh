#!/bin/sh
# Start PgBouncer: write its auth_file from the mounted Secret, then exec pgbouncer with the rendered ini.
# Environment: NOVA_POOLER_LOGINS (space-separated logins), NOVA_POOLER_SECRETS (directory with one
# <login>-password file per login), NOVA_POOLER_RUN (writable directory for userlist.txt),
# NOVA_POOLER_INI (the rendered pgbouncer.ini), NOVA_PGBOUNCER (binary; default pgbouncer on PATH).
# A missing password file stops the start with the key to add (never a pooler that lets nobody in).
set -eu
run=${NOVA_POOLER_RUN:-/run/pgbouncer}
secrets=${NOVA_POOLER_SECRETS:-/etc/nova-pooler/secrets}
list="$run/userlist.txt"
umask 077
: > "$list.tmp"
for login in ${NOVA_POOLER_LOGINS:-}; do
  file="$secrets/$login-password"
  if [ ! -r "$file" ]; then
    echo "pooler-start: no password for login $login: the Secret needs the key $login-password" >&2
    exit 1
  fi
  # auth_file lines are "name" "password"; a double quote inside is written twice.
  password=$(sed 's/"/""/g' "$file")
  printf '"%s" "%s"\n' "$login" "$password" >> "$list.tmp"
done
mv "$list.tmp" "$list"
exec "${NOVA_PGBOUNCER:-pgbouncer}" "${NOVA_POOLER_INI:-/etc/pgbouncer/pgbouncer.ini}"
