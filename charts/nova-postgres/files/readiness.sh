#!/bin/sh
# Readiness probe of the PostgreSQL container: ready only when Patroni confirms the role that this pod's role
# label claims. The -primary Service selects label `primary` + ready, -replicas label `replica` + ready, so a pod
# whose label is stale (a restarted old leader still labelled `primary`, a promoted replica not yet relabelled)
# is in neither Service until the label is right.
# The claimed role is NOVA_ROLE_FILE, which role_label.py (the Patroni callback) writes after the Kubernetes API
# accepted the label, and sets to `unknown` before each patch. Kubelet runs this with the container's env.
# Environment: NOVA_ROLE_FILE, NOVA_REST_URL (this pod's Patroni REST API), NOVA_REPLICA_LAG (bytes or units).
set -u

role=$(cat "${NOVA_ROLE_FILE:?NOVA_ROLE_FILE is not set}" 2>/dev/null) || role=none
case "$role" in
  primary) path=primary ;;
  replica) path="replica?lag=${NOVA_REPLICA_LAG:-16MB}" ;;
  *)
    echo "not ready: the role label says ${role}"
    exit 1
    ;;
esac
if ! curl -fs -o /dev/null --max-time 2 "${NOVA_REST_URL:-http://127.0.0.1:8008}/$path"; then
  echo "not ready: labelled ${role}, Patroni does not confirm /${path}"
  exit 1
fi
