#!/bin/sh
# preStop of the sentinel container. The kubelet runs the preStop hooks of all containers of a pod at
# the same time and sends SIGTERM to each container as soon as its own hook returns. Without this hook
# the Sentinel of a master pod would stop at t=0 while prestop-redis.sh is still handing over: HAProxy
# (whose second check asks this pod's Sentinel) would drop the master at once, and the failover would
# need both other Sentinels. So on the master's pod this waits, bounded by PRESTOP_TIMEOUT (the same
# bound as the redis hook, under the grace period), until the local Redis is no longer the master and
# the Sentinels that answer agree on the new one; then Sentinel may stop. On a replica it returns at once.
set -eu
LOG_NAME=prestop-sentinel
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

PRESTOP_TIMEOUT=${PRESTOP_TIMEOUT:-25}
deadline=$(( $(date +%s) + PRESTOP_TIMEOUT ))

role=$(info_field role)
if [ "$role" != "master" ]; then
    log "local Redis role is '${role:-unknown}': nothing to wait for"
    exit 0
fi
if [ "$(info_field connected_slaves)" = "0" ]; then
    log "local Redis is a master without replicas: no hand-over to wait for"
    exit 0
fi
log "local Redis is the master: Sentinel stays up until the hand-over is done"

new=""
while :; do
    role=$(info_field role)
    new=$(ask_sentinels all)
    if [ "$role" != "master" ]; then
        log "local Redis is now '${role:-gone}'"
        break
    fi
    if [ -n "$new" ] && [ "$new" != "$MY_HOST" ]; then
        log "the Sentinels name $new as master"
        break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "no hand-over before the deadline; letting Sentinel stop"
        exit 0
    fi
    sleep 0.2
done
if [ -z "$new" ] || [ "$new" = "$MY_HOST" ]; then
    # The local Redis went away without a hand-over (prestop-redis.sh gave up): nothing left to wait for.
    exit 0
fi
until sentinels_agree "$new"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "the Sentinels did not agree on $new before the deadline; letting Sentinel stop"
        exit 0
    fi
    sleep 0.2
done
log "hand-over to $new done; letting Sentinel stop"
