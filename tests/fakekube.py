"""A test double of the Kubernetes API for core/v1 namespaced objects (Secrets, ConfigMaps, ...), enforcing the
RBAC of rendered Roles and RoleBindings.

It serves the paths a client of the core group uses (``/api/v1/namespaces/<ns>/<resource>[/<name>]``) with the
verbs get, list (GET on the collection), create (POST), update (PUT), patch (PATCH, JSON merge patch) and delete
(DELETE). Every request carries a bearer token: the ``admin`` token may do anything (it stands for whoever
applies the rendered manifests, or a person with kubectl); a ServiceAccount token is authorized like the API
server's RBAC authorizer does for Roles: a rule matches the API group, resource and verb, and a rule with
``resourceNames`` never authorizes create or list (the name is not known when they are authorized). Denied
requests answer 403 and, like every request, are recorded in ``requests`` (the 403s also in ``denied``).

Used by the GitOps tests (the secret generator's Secrets) and by the PostgreSQL runtime harness
(``tests/runtime/postgres_harness.py``: the Patroni role-label callback patches its pod's labels, which the harness
seeds with :meth:`FakeKubeAPI.put` and reads with :meth:`FakeKubeAPI.label_of`). Secret values live
base64-encoded in ``data`` as in the real API.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

PATH = re.compile(r"/api/v1/namespaces/(?P<ns>[^/]+)/(?P<resource>[a-z]+)(?:/(?P<name>[^/?]+))?/?(?:\?.*)?")


@dataclass(frozen=True)
class Request:
    """One request as the fake API saw it; ``status`` is the HTTP answer."""

    user: str
    verb: str
    resource: str
    namespace: str
    name: str
    status: int


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeKubeAPI:
    """``with FakeKubeAPI(rbac_objects) as api:`` serves on ``api.url`` until the block ends.

    The Roles and RoleBindings among ``rbac_objects`` (rendered objects, as dicts) are the RBAC policy;
    ``sa_token`` issues a ServiceAccount's token, ``ADMIN`` is allowed everything."""

    ADMIN = "admin-token"

    def __init__(self, rbac_objects: list[dict[str, Any]], address: str = "127.0.0.1") -> None:
        self.roles = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
                      for o in rbac_objects if o.get("kind") == "Role"}
        self.bindings = [o for o in rbac_objects if o.get("kind") == "RoleBinding"]
        self.tokens: dict[str, str] = {self.ADMIN: "admin"}
        self.store: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.denied: list[Request] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def _handle(self, method: str) -> None:
                auth = self.headers.get("Authorization", "")
                user = api.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
                m = PATH.fullmatch(self.path)
                body = self._body() if method in ("POST", "PUT", "PATCH") else None
                if m is None:
                    return self._reply(404, {"kind": "Status", "reason": "NotFound"})
                ns, resource, name = m.group("ns"), m.group("resource"), m.group("name") or ""
                verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update",
                        "PATCH": "patch", "DELETE": "delete"}[method]
                if verb == "create" and isinstance(body, dict):
                    name = str((body.get("metadata") or {}).get("name") or "")
                code, answer = api.serve(user, verb, resource, ns, name, body,
                                         self.headers.get("Content-Type", ""))
                seen = Request(user or "anonymous", verb, resource, ns, name, code)
                with api.lock:
                    api.requests.append(seen)
                    if code == 403:
                        api.denied.append(seen)
                return self._reply(code, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_address[1]}"
        # serve_forever checks for shutdown() every poll_interval: the default 0.5 s was half a second per exit.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    # -- identities and policy ------------------------------------------------------------------------------
    def sa_token(self, namespace: str, name: str, token: str = "") -> str:
        """Issue (and return) a token of ServiceAccount ``namespace/name``: ``token``, or a name-derived one."""
        token = token or f"sa-{namespace}-{name}"
        self.tokens[token] = f"system:serviceaccount:{namespace}:{name}"
        return token

    def allowed(self, user: str, verb: str, resource: str, namespace: str, name: str) -> bool:
        if user == "admin":
            return True
        for binding in self.bindings:
            if binding["metadata"]["namespace"] != namespace or binding["roleRef"]["kind"] != "Role":
                continue
            subjects = {f"system:serviceaccount:{s.get('namespace') or namespace}:{s['name']}"
                        for s in binding.get("subjects") or [] if s.get("kind") == "ServiceAccount"}
            role = self.roles.get((namespace, binding["roleRef"]["name"]))
            if user not in subjects or role is None:
                continue
            for rule in role.get("rules") or []:
                names = rule.get("resourceNames") or []
                if not ({"", "*"} & set(rule.get("apiGroups") or [])):
                    continue
                if not ({resource, "*"} & set(rule.get("resources") or [])):
                    continue
                if not ({verb, "*"} & set(rule.get("verbs") or [])):
                    continue
                if names and (verb in ("create", "list") or name not in names):
                    continue
                return True
        return False

    # -- serving --------------------------------------------------------------------------------------------
    def serve(self, user: str | None, verb: str, resource: str, namespace: str, name: str, body: Any,
              content_type: str) -> tuple[int, dict[str, Any]]:
        if user is None:
            return 401, {"kind": "Status", "reason": "Unauthorized"}
        if not self.allowed(user, verb, resource, namespace, name):
            return 403, {"kind": "Status", "reason": "Forbidden",
                         "message": f'{resource} "{name}" is forbidden: User "{user}" cannot {verb}'}
        key = (resource, namespace, name)
        with self.lock:
            current = self.store.get(key)
            if verb == "list":
                items = [o for (r, ns, _), o in self.store.items() if r == resource and ns == namespace]
                return 200, {"kind": "List", "items": items}
            if verb == "create":
                if not name:
                    return 422, {"kind": "Status", "reason": "Invalid"}
                if current is not None:
                    return 409, {"kind": "Status", "reason": "AlreadyExists"}
                obj = json.loads(json.dumps(body))
                obj.setdefault("metadata", {})["namespace"] = namespace
                self.store[key] = obj
                return 201, obj
            if current is None:
                return 404, {"kind": "Status", "reason": "NotFound"}
            if verb == "get":
                return 200, current
            if verb == "update":
                self.store[key] = body
                return 200, body
            if verb == "patch":
                if content_type != "application/merge-patch+json":
                    return 415, {"kind": "Status", "reason": "UnsupportedMediaType"}
                self.store[key] = merge_patch(current, body)
                return 200, self.store[key]
            del self.store[key]
            return 200, {"kind": "Status", "status": "Success"}

    # -- direct access for tests (what the admin token could do) ------------------------------------------
    def put(self, obj: dict[str, Any]) -> None:
        """Apply an object as its owner would (create or replace), outside RBAC."""
        resource = obj["kind"].lower() + "s"
        with self.lock:
            self.store[(resource, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.store.get((resource, namespace, name))

    def labels_of(self, namespace: str, name: str, resource: str = "pods") -> dict[str, str]:
        """The labels of an object ({} when it or its labels are missing)."""
        obj = self.get(resource, namespace, name) or {}
        return dict((obj.get("metadata") or {}).get("labels") or {})

    def label_of(self, namespace: str, pod: str, key: str) -> str | None:
        """One label of a pod, None when the pod or the label is missing."""
        return self.labels_of(namespace, pod).get(key)

    def remove(self, resource: str, namespace: str, name: str) -> None:
        with self.lock:
            del self.store[(resource, namespace, name)]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
