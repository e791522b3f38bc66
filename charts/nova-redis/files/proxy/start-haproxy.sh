#!/bin/sh
# Starts HAProxy in the foreground. The health checks authenticate with the RESP array form of AUTH,
# which needs the password's length in bytes: computed here and handed to haproxy.cfg through the
# environment (HAProxy expands "${VAR}" in quoted strings), so the password is never in a file or argv.
# The Redis check uses REDIS_PASSWORD, the Sentinel check SENTINEL_PASSWORD.
set -eu
: "${HAPROXY_CONFIG:?HAPROXY_CONFIG must name the rendered haproxy.cfg}"
if [ -n "${REDIS_PASSWORD:-}" ]; then
    REDIS_PASSWORD_LEN=$(printf '%s' "$REDIS_PASSWORD" | wc -c | tr -d ' ')
    export REDIS_PASSWORD_LEN
    # The Sentinel check logs in with sentinel-password; an existingSecret without that key means
    # Sentinel uses redis-password (as start-sentinel.sh does).
    SENTINEL_PASSWORD=${SENTINEL_PASSWORD:-$REDIS_PASSWORD}
    SENTINEL_PASSWORD_LEN=$(printf '%s' "$SENTINEL_PASSWORD" | wc -c | tr -d ' ')
    export SENTINEL_PASSWORD_LEN
    export SENTINEL_PASSWORD
fi
exec haproxy -db -f "$HAPROXY_CONFIG"
