#!/bin/sh
# helm test: this service's PostgreSQL credentials work.
#   - DATABASE_USER/DATABASE_PASSWORD log in to DATABASE_NAME on the primary (DATABASE_HOST) and on the
#     replicas (DATABASE_READ_HOST), and the primary is writable (not in recovery);
#   - when DATABASE_SCHEMA is set, the login may use that schema.
# Needs psql. Retries CHECK_ATTEMPTS times (a failover may be in progress).
set -eu

attempts="${CHECK_ATTEMPTS:-5}"
export PGPASSWORD="$DATABASE_PASSWORD" PGCONNECT_TIMEOUT=5 PGPASSFILE=/dev/null
# TLS (DATABASE_SSLMODE / DATABASE_SSLROOTCERT, as the service gets them): the same verification as the service.
if [ -n "${DATABASE_SSLMODE:-}" ]; then
    export PGSSLMODE="$DATABASE_SSLMODE"
fi
if [ -n "${DATABASE_SSLROOTCERT:-}" ]; then
    export PGSSLROOTCERT="$DATABASE_SSLROOTCERT"
fi

query() {
    psql -X -v ON_ERROR_STOP=1 -tA \
        "host=$1 port=$DATABASE_PORT dbname=$DATABASE_NAME user=$DATABASE_USER" -c "$2"
}

check() {
    who=$(query "$DATABASE_HOST" "select current_user") || return 1
    if [ "$who" != "$DATABASE_USER" ]; then
        echo "primary: logged in as '$who', expected '$DATABASE_USER'" >&2
        return 1
    fi
    recovery=$(query "$DATABASE_HOST" "select pg_is_in_recovery()") || return 1
    if [ "$recovery" != "f" ]; then
        echo "primary endpoint $DATABASE_HOST reached a server in recovery (not the primary)" >&2
        return 1
    fi
    if [ -n "${DATABASE_SCHEMA:-}" ]; then
        usage=$(query "$DATABASE_HOST" "select has_schema_privilege(current_user, '$DATABASE_SCHEMA', 'USAGE')") || return 1
        if [ "$usage" != "t" ]; then
            echo "$DATABASE_USER may not use schema $DATABASE_SCHEMA" >&2
            return 1
        fi
    fi
    if [ -n "${DATABASE_READ_HOST:-}" ]; then
        query "$DATABASE_READ_HOST" "select 1" >/dev/null || return 1
    fi
    echo "postgres: $DATABASE_USER logs in to $DATABASE_NAME (primary and replicas)"
}

i=1
while :; do
    if check; then
        exit 0
    fi
    if [ "$i" -ge "$attempts" ]; then
        echo "postgres check failed after $attempts attempts" >&2
        exit 1
    fi
    i=$((i + 1))
    sleep 3
done
