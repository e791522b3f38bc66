#!/bin/sh
# helm test: the service answers TARGET_URL (its readiness path through its ClusterIP Service) with 2xx.
set -eu
curl --fail --silent --show-error --max-time 5 --retry "${CHECK_ATTEMPTS:-5}" --retry-delay 2 \
    --retry-connrefused --output /dev/null --write-out "%{http_code} from $TARGET_URL\n" "$TARGET_URL"
