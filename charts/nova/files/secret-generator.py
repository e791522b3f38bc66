"""In-cluster generator of the nova credential Secrets, for renders without `lookup` (Argo CD, `helm template`).

Run by the chart's secret-generator Job as `secret-generator.py <plan.json>`. The plan (rendered by the chart,
templates/secret-generator/) lists credential sets; each set has its keys (how each value is made) and its
targets (the Secret that holds every key, then copies with a subset of keys in other namespaces). For each set:

- every target exists            -> nothing is written (values are never compared against new ones);
- some targets exist             -> the missing ones are created with the values already stored (a copy
                                    never gets a password of its own);
- no target exists, first run    -> new random values, made here (never in the render), then created;
- no target exists, marker found -> refused: the Secret was deleted after the first run and a new password
                                    would not match the data written with the old one; the plan's
                                    generateMissing (secrets.generateMissingOnUpgrade) allows it.

The ServiceAccount may only `get` the named Secrets and `create` Secrets: it can never update, patch or delete
one, so this script never tries (an existing Secret that lacks a key is reported, not changed). Kubernetes RBAC
cannot limit `create` to names, so the script creates only the names in its plan. The marker (a ConfigMap) is
created last, after every Secret, so a retried run after a crash still counts as the first one.

Environment (defaults: the pod's ServiceAccount): NOVA_K8S_API_URL (else
https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT), NOVA_K8S_TOKEN_FILE, NOVA_K8S_CA_FILE,
NOVA_OPENSSL (openssl binary), NOVA_API_WAIT (seconds to wait for an unreachable API server, default 60).
Secret values are never printed. The last stdout line is a JSON summary.
Exit codes: 0 done (or nothing to do), 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
ALPHABET = string.ascii_letters + string.digits


class Refused(Exception):
    """A condition the script must not resolve by itself (it would rotate or overwrite a credential)."""


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------------------
# Kubernetes API (get and create only)
# ------------------------------------------------------------------------------------------------------------
class Api:
    def __init__(self) -> None:
        self.url = self._base_url()
        token_file = os.environ.get("NOVA_K8S_TOKEN_FILE", f"{SA_DIR}/token")
        with open(token_file, encoding="utf-8") as fh:
            self.token = fh.read().strip()
        self.context: ssl.SSLContext | None = None
        if self.url.startswith("https://"):
            self.context = ssl.create_default_context(cafile=os.environ.get("NOVA_K8S_CA_FILE", f"{SA_DIR}/ca.crt"))
        self.wait = float(os.environ.get("NOVA_API_WAIT", "60"))

    @staticmethod
    def _base_url() -> str:
        url = os.environ.get("NOVA_K8S_API_URL", "")
        if url:
            return url.rstrip("/")
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise RuntimeError("KUBERNETES_SERVICE_HOST is not set and NOVA_K8S_API_URL is empty")
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{port}"

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        deadline = time.monotonic() + self.wait
        delay = 1.0
        while True:
            request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:300]
                if exc.code >= 500 and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 10)
                    continue
                raise ApiError(exc.code, f"{method} {path}: HTTP {exc.code} {detail}") from None
            except (OSError, urllib.error.URLError) as exc:
                # The pod's NetworkPolicy may need a moment after the pod starts; an unreachable API server
                # is retried until NOVA_API_WAIT is over.
                if time.monotonic() >= deadline:
                    raise ApiError(0, f"{method} {path}: API server unreachable: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 10)

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._request("GET", f"/api/v1/namespaces/{namespace}/{resource}/{name}")
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def create(self, resource: str, namespace: str, obj: dict[str, Any]) -> bool:
        """Create; False when it already exists (someone else created it meanwhile)."""
        try:
            self._request("POST", f"/api/v1/namespaces/{namespace}/{resource}", obj)
            return True
        except ApiError as exc:
            if exc.code == 409:
                return False
            raise


# ------------------------------------------------------------------------------------------------------------
# Values (made here, at run time)
# ------------------------------------------------------------------------------------------------------------
def password(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def key_pair(common_name: str, days: int, key_type: str) -> dict[str, str]:
    """A private key and a self-signed certificate for it, in the PEM forms Helm's lookup mode renders: ecdsa is
    P-256 in SEC1 (`EC PRIVATE KEY`, like genPrivateKey "ecdsa"), rsa is 2048 bits in PKCS#1 (`RSA PRIVATE KEY`,
    like genSelfSignedCert)."""
    openssl = os.environ.get("NOVA_OPENSSL", "openssl")
    if key_type == "ecdsa":
        newkey, convert = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], ["ec"]
    elif key_type == "rsa":
        newkey, convert = ["-newkey", "rsa:2048"], ["rsa", "-traditional"]
    else:
        raise ValueError(f"keyType {key_type!r}: expected ecdsa or rsa (secrets.jwt.keyType)")
    with tempfile.TemporaryDirectory(prefix="nova-jwt-") as tmp:
        key, cert, traditional = f"{tmp}/key.pem", f"{tmp}/cert.pem", f"{tmp}/traditional.pem"
        subprocess.run([openssl, "req", "-x509", *newkey, "-nodes", "-sha256", "-days", str(days),
                        "-subj", f"/CN={common_name}", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        subprocess.run([openssl, *convert, "-in", key, "-out", traditional], check=True, capture_output=True)
        with open(traditional, encoding="ascii") as fk, open(cert, encoding="ascii") as fc:
            return {"key": fk.read(), "cert": fc.read()}


def new_values(cset: dict[str, Any], length: int) -> dict[str, str]:
    values: dict[str, str] = {}
    pair: dict[str, str] | None = None
    for key, how in cset["keys"].items():
        if how == "password":
            values[key] = password(length)
        elif how == "long":
            values[key] = password(64)
        elif how in ("jwt-private-key", "jwt-certificate"):
            if pair is None:
                pair = key_pair(cset["commonName"], int(cset["validityDays"]), cset["keyType"])
            values[key] = pair["key"] if how == "jwt-private-key" else pair["cert"]
        else:
            raise ValueError(f"set {cset['id']}: key {key}: unknown kind {how!r}")
    return values


# ------------------------------------------------------------------------------------------------------------
# Plan
# ------------------------------------------------------------------------------------------------------------
def decoded(obj: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


def secret_object(plan: dict[str, Any], cset: dict[str, Any], target: dict[str, Any],
                  values: dict[str, str]) -> dict[str, Any]:
    labels = dict(plan.get("labels") or {})
    labels["app.kubernetes.io/component"] = cset["component"]
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": target["name"], "namespace": target["namespace"], "labels": labels,
                     "annotations": dict(plan.get("annotations") or {})},
        "data": {k: base64.b64encode(values[k].encode()).decode() for k in target["keys"]},
    }


def ref(target: dict[str, Any]) -> str:
    return f"Secret {target['namespace']}/{target['name']}"


def run_set(api: Api, plan: dict[str, Any], cset: dict[str, Any], first_run: bool,
            summary: dict[str, list[str]]) -> None:
    targets = cset["targets"]
    found = {i: api.get("secrets", t["namespace"], t["name"]) for i, t in enumerate(targets)}
    stored: dict[str, str] = {}
    for i, target in enumerate(targets):
        obj = found[i]
        if obj is None:
            continue
        data = decoded(obj)
        missing = [k for k in target["keys"] if k not in data]
        if missing:
            raise Refused(f"{ref(target)} exists but has no {', '.join(missing)} (added to the release after its "
                          "first run?). The generator never changes an existing Secret: add the key(s) yourself "
                          "(kubectl patch, the same value in every copy of this Secret), or use existingSecret.")
        for key in target["keys"]:
            if key in stored and stored[key] != data[key]:
                raise Refused(f"{ref(target)} key {key} differs from another copy of set {cset['id']}: "
                              "make the copies equal by hand; the generator does not choose between them.")
            stored.setdefault(key, data[key])
    if all(found[i] is not None for i in range(len(targets))):
        summary["kept"] += [ref(t) for t in targets]
        return
    if not stored:
        if not first_run and not plan.get("generateMissing"):
            raise Refused(f"{ref(targets[0])} is missing, and this release's Secrets were generated before "
                          f"(marker ConfigMap {plan['marker']['namespace']}/{plan['marker']['name']}): a new "
                          "password would not match the data already written with the old one. Restore the "
                          "Secret, or set secrets.generateMissingOnUpgrade=true if this credential is new.")
        values = new_values(cset, int(plan["passwordLength"]))
    else:
        values = stored
        lacking = [k for k in cset["keys"] if k not in values]
        if lacking:
            raise Refused(f"set {cset['id']}: the existing copies lack {', '.join(lacking)} and the Secret "
                          f"that holds every key ({ref(targets[0])}) is missing: restore it.")
    for i, target in enumerate(targets):
        if found[i] is not None:
            summary["kept"].append(ref(target))
            continue
        if api.create("secrets", target["namespace"], secret_object(plan, cset, target, values)):
            summary["created"].append(ref(target))
            continue
        # Created by someone else since the get: its values win for the copies still to create.
        stored_now = decoded(api.get("secrets", target["namespace"], target["name"]) or {})
        values = {**values, **{k: stored_now[k] for k in target["keys"] if k in stored_now}}
        summary["kept"].append(ref(target))


def run(plan: dict[str, Any], api: Api) -> dict[str, Any]:
    marker = plan["marker"]
    first_run = api.get("configmaps", marker["namespace"], marker["name"]) is None
    summary: dict[str, Any] = {"created": [], "kept": [], "refused": [], "firstRun": first_run}
    for cset in plan["sets"]:
        try:
            run_set(api, plan, cset, first_run, summary)
        except Refused as exc:
            summary["refused"].append(str(exc))
    if not summary["refused"] and first_run:
        api.create("configmaps", marker["namespace"], {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": marker["name"], "namespace": marker["namespace"],
                         "labels": dict(plan.get("labels") or {}),
                         "annotations": dict(plan.get("annotations") or {})},
            "data": {"note": "The nova secret generator created this release's credential Secrets; while this "
                             "ConfigMap exists a missing credential Secret is refused, not re-generated."},
        })
        summary["created"].append(f"ConfigMap {marker['namespace']}/{marker['name']}")
    return summary


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: secret-generator.py <plan.json>", file=sys.stderr)
        return 2
    try:
        with open(argv[0], encoding="utf-8") as fh:
            plan = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"secret-generator: cannot read plan {argv[0]}: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run(plan, Api())
    except (ApiError, RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"secret-generator: {exc}", file=sys.stderr)
        print(json.dumps({"error": str(exc)}))
        return 1
    for line in summary["refused"]:
        print(f"secret-generator: refused: {line}", file=sys.stderr)
    for line in summary["created"]:
        print(f"secret-generator: created {line}", file=sys.stderr)
    print(json.dumps(summary, sort_keys=True))
    return 1 if summary["refused"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
