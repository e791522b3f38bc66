#!/bin/sh
# Starts HAProxy in the foreground. The health checks authenticate with the RESP array form of AUTH,
# which needs the password's length in bytes: computed here and handed to haproxy.cfg through the
# environment (HAProxy expands "${VAR}" in quoted strings), so the password is never in a file or argv.
set -eu
: "${HAPROXY_CONFIG:?HAPROXY_CONFIG must name the rendered haproxy.cfg}"
if [ -n "${REDIS_PASSWORD:-}" ]; then
    REDIS_PASSWORD_LEN=$(printf '%s' "$REDIS_PASSWORD" | wc -c | tr -d ' ')
    export REDIS_PASSWORD_LEN
fi
exec haproxy -db -f "$HAPROXY_CONFIG"
