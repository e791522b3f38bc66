"""Patroni callback: label this pod with its PostgreSQL role so the -primary/-replicas Services follow the leader.

Patroni runs it as `role_label.py <action> <role> <scope>` on on_start, on_stop and on_role_change; the
container's start script (start.sh) runs it as `role_label.py on_boot -` before Patroni starts, so a label left
by the previous run of the container (`primary` after an unclean death) is `stopped` before PostgreSQL runs;
and as Patroni's pre_promote hook, `role_label.py pre_promote promoting`, which labels the pod `promoting` (in
neither Service) before PostgreSQL is promoted, so -replicas never holds a pod that accepts writes.
It sends one JSON merge patch of metadata.labels[<ROLE_LABEL>] on its own pod (POD_NAMESPACE/POD_NAME)
through the Kubernetes API with the pod's ServiceAccount token; the chart's Role allows get/patch on the
StatefulSet's own pods only.

NOVA_ROLE_FILE (optional): a file in a pod-lifetime emptyDir holding the role the label claims, read by the
readiness probe (readiness.sh). It is set to `unknown` before the patch and to the new value only after the API
accepted it, so whenever the label may differ from the file (a patch in flight, a failed patch, this callback
killed by Patroni for the next one) the file says `unknown` and the pod is not ready for either Service.

Environment: POD_NAME, POD_NAMESPACE, NOVA_ROLE_LABEL (label key). Optional, for tests and unusual clusters:
NOVA_K8S_API_URL (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT), NOVA_K8S_TOKEN_FILE,
NOVA_K8S_CA_FILE (defaults: the mounted ServiceAccount files).
Exit codes: 0 labelled (or nothing to do; always for pre_promote, which must never block a failover), 1 the API
refused or could not be reached after retries, 2 usage.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
PRIMARY_ROLES = {"master", "primary", "promoted"}
REPLICA_ROLES = {"replica", "standby_leader", "demoted"}


def label_value(action: str, role: str) -> str | None:
    """The label value for a Patroni callback, or None when the callback says nothing about the role."""
    if action in ("on_stop", "on_boot"):
        return "stopped"
    if action == "pre_promote":  # Patroni's pre_promote hook: out of -replicas before PostgreSQL is promoted
        return "promoting"
    if action not in ("on_start", "on_role_change", "on_restart"):
        return None
    if role in PRIMARY_ROLES:
        return "primary"
    if role in REPLICA_ROLES:
        return "replica"
    return "stopped"


def api_url() -> str:
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


def patch_label(value: str) -> None:
    name, namespace = os.environ["POD_NAME"], os.environ["POD_NAMESPACE"]
    key = os.environ.get("NOVA_ROLE_LABEL", "nova-postgres/role")
    with open(os.environ.get("NOVA_K8S_TOKEN_FILE", f"{SA_DIR}/token"), encoding="utf-8") as fh:
        token = fh.read().strip()
    url = f"{api_url()}/api/v1/namespaces/{namespace}/pods/{name}"
    body = json.dumps({"metadata": {"labels": {key: value}}}).encode()
    request = urllib.request.Request(url, data=body, method="PATCH", headers={
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/merge-patch+json",
        "Accept": "application/json",
    })
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context(cafile=os.environ.get("NOVA_K8S_CA_FILE", f"{SA_DIR}/ca.crt"))
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        response.read()


def write_role_file(value: str) -> None:
    """Record the role the label claims for the readiness probe (atomically: write, then rename)."""
    path = os.environ.get("NOVA_ROLE_FILE", "")
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: role_label.py <action> <role> [scope]", file=sys.stderr)
        return 2
    value = label_value(argv[0], argv[1])
    if value is None:
        return 0
    try:
        write_role_file("unknown")
    except OSError as exc:
        print(f"role_label: cannot write NOVA_ROLE_FILE, readiness stays false: {exc}", file=sys.stderr)
        return 1
    last_error = ""
    for attempt in range(2 if argv[0] == "pre_promote" else 5):  # pre_promote delays the promotion: be brief
        try:
            patch_label(value)
            write_role_file(value)
            print(f"role_label: {os.environ.get('POD_NAME')} -> {value} ({argv[0]} {argv[1]})", file=sys.stderr)
            return 0
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code} {exc.reason}"
            if exc.code in (401, 403, 404):
                break
        except (OSError, RuntimeError, KeyError) as exc:
            last_error = str(exc)
        time.sleep(min(0.5 * 2 ** attempt, 4))
    print(f"role_label: could not label pod {os.environ.get('POD_NAME')} {value}: {last_error}", file=sys.stderr)
    # pre_promote must never block a failover (a non-zero exit makes Patroni give the leader key up): the role
    # file already says `unknown`, so readiness keeps the pod out of both Services until on_role_change.
    return 0 if argv[0] == "pre_promote" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
