"""GitOps renders (docs/gitops.md): with global.gitops the chart renders no credential; the in-cluster secret
generator Job creates each one once and never changes it. Its rendered script runs here against a fake API server
(tests/fakekube.py) that enforces the rendered Roles; the examples under docs/examples/ render and validate."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CHARTS, ROOT, render
from tests.fakekube import FakeKubeAPI
from tests.unit import keypair
from tools import charts as chart_files
from tools import helm, kube_versions
from tools.lint.schema import schemas_for
from tools.manifest import KubeObject

CHART = CHARTS / "nova"
PRODUCTION = chart_files.profile_values("production")  # with its example site overlay
# Production backs up PostgreSQL: under GitOps the pgBackRest TLS Secret is one the user creates (no lookup).
GITOPS = ["global.gitops=true", "postgres.backup.server.tlsSecret=nova-pgbackrest-tls"]
SVC_NS, REDIS_NS, DB_NS = "nova-services", "nova-redis", "nova-database"
SA = (SVC_NS, "nova-secret-generator")
GENERATED = {(REDIS_NS, "nova-redis-credentials"), (SVC_NS, "nova-redis-credentials"),
             (DB_NS, "nova-postgres-credentials"), (SVC_NS, "nova-postgres-credentials"),
             (SVC_NS, "nova-jwt"), (SVC_NS, "nova-turn")}
MARKER = (SVC_NS, "nova-secrets-generated")
EXAMPLES = ROOT / "docs" / "examples"


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------
def plain(objs: list[KubeObject]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(o.obj)) for o in objs]


def one(objs: list[KubeObject], kind: str, name_re: str, namespace: str = SVC_NS) -> KubeObject:
    found = [o for o in objs if o.kind == kind and re.fullmatch(name_re, o.name) and o.namespace == namespace]
    assert len(found) == 1, f"{kind} {namespace}/{name_re}: {[o.name for o in found]}"
    return found[0]


def decoded(obj: dict[str, Any] | None) -> dict[str, str]:
    assert obj is not None
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


class Generator:
    """The rendered generator of one render: its ConfigMap files written out, run as the Job runs them."""

    def __init__(self, objs: list[KubeObject], workdir: Path) -> None:
        self.objs = objs
        config = one(objs, "ConfigMap", "nova-secret-generator")
        workdir.mkdir(parents=True, exist_ok=True)
        for name, text in config["data"].items():
            (workdir / name).write_text(text)
        self.workdir = workdir
        self.plan = json.loads(config["data"]["plan.json"])
        self.job = one(objs, "Job", r"nova-secret-generator-[0-9a-f]{10}")

    def rbac(self) -> list[dict[str, Any]]:
        return [o.obj for o in self.objs if o.kind in ("Role", "RoleBinding")]

    def run(self, api: FakeKubeAPI) -> tuple[int, dict[str, Any], str]:
        token = self.workdir / "token"
        token.write_text(api.sa_token(*SA))
        env = {**os.environ, "NOVA_K8S_API_URL": api.url, "NOVA_K8S_TOKEN_FILE": str(token), "NOVA_API_WAIT": "2"}
        proc = subprocess.run([sys.executable, str(self.workdir / "secret-generator.py"),
                               str(self.workdir / "plan.json")],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
        lines = proc.stdout.strip().splitlines()
        return proc.returncode, (json.loads(lines[-1]) if lines else {}), proc.stderr


def apply(api: FakeKubeAPI, objs: list[KubeObject]) -> None:
    """What Argo CD applies of a render (as admin): every Secret and ConfigMap (the rest is not read here)."""
    for o in objs:
        if o.kind in ("Secret", "ConfigMap"):
            api.put(json.loads(json.dumps(o.obj)))


def values_of(api: FakeKubeAPI) -> dict[tuple[str, str], dict[str, str]]:
    return {ref: decoded(api.get("secrets", *ref)) for ref in sorted(GENERATED)}


def sa_requests(api: FakeKubeAPI) -> list[Any]:
    return [r for r in api.requests if r.user.startswith("system:serviceaccount:")]


@pytest.fixture(scope="module")
def objs() -> list[KubeObject]:
    return render(CHART, PRODUCTION, GITOPS)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gitops")


@pytest.fixture
def api(objs: list[KubeObject]) -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI([o.obj for o in objs if o.kind in ("Role", "RoleBinding")]) as fake:
        yield fake


# ------------------------------------------------------------------------------------------------------------
# the render
# ------------------------------------------------------------------------------------------------------------
def test_lookup_renders_differ_in_every_random_value_gitops_renders_carry_none() -> None:
    """The control: two `helm template` renders without the generator differ in every generated value (what
    Argo CD would rotate); two GitOps renders are identical and no rendered Secret holds a credential."""
    first, second = (helm.render(CHART, PRODUCTION) for _ in range(2))
    for ns, name in sorted(GENERATED - {(SVC_NS, "nova-redis-credentials"), (SVC_NS, "nova-postgres-credentials")}):
        a, b = (decoded(one(r, "Secret", name, ns).obj) for r in (first, second))
        assert a.keys() == b.keys() and a
        assert all(a[k] != b[k] for k in a), f"{ns}/{name}: a value repeated across renders"
    g1, g2 = (helm.render(CHART, PRODUCTION, GITOPS) for _ in range(2))
    assert plain(g1) == plain(g2)
    rendered = {(o.namespace, o.name) for o in g1 if o.kind == "Secret"}
    assert not rendered & GENERATED
    for o in g1:
        if o.kind == "Secret":
            assert not [k for k in o.get("data", {}) if "PASSWORD" in k or k.endswith("_URL")], o.name


def test_generator_roles_may_only_get_named_secrets_and_create(objs: list[KubeObject]) -> None:
    plan = json.loads(one(objs, "ConfigMap", "nova-secret-generator")["data"]["plan.json"])
    names: dict[str, set[str]] = {}
    for cset in plan["sets"]:
        for t in cset["targets"]:
            names.setdefault(t["namespace"], set()).add(t["name"])
    roles = {o.namespace: o for o in objs if o.kind == "Role" and o.name == "nova-secret-generator"}
    assert set(roles) == {SVC_NS, REDIS_NS, DB_NS} == set(names)
    for ns, role in roles.items():
        verbs = {v for rule in role["rules"] for v in rule["verbs"]}
        assert verbs == {"get", "create"}, ns
        for rule in role["rules"]:
            if "get" in rule["verbs"]:
                expected = names[ns] if rule["resources"] == ["secrets"] else {MARKER[1]}
                assert set(rule["resourceNames"]) == expected, ns
            else:
                assert "resourceNames" not in rule  # RBAC cannot restrict create by name
    bindings = {o.namespace: o for o in objs if o.kind == "RoleBinding" and o.name == "nova-secret-generator"}
    assert set(bindings) == set(roles)
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": SA[1], "namespace": SA[0]}]
               for b in bindings.values())


def test_generator_job_is_hash_named_restricted_and_reaches_only_the_api_server(objs: list[KubeObject]) -> None:
    job = one(objs, "Job", r"nova-secret-generator-[0-9a-f]{10}")
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert not [k for k in job.get("metadata", {}).get("annotations", {}) if k.endswith("/hook")]
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "docker.io/library/python:3.13.14-slim-bookworm"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["resources"]["limits"].keys() == {"cpu", "memory"}
    # No automounted token: a projected, expiring one where the script reads it.
    assert pod["automountServiceAccountToken"] is False
    env = {e["name"]: e.get("value") for e in c["env"]}
    (api_volume,) = [v for v in pod["volumes"] if "projected" in v]
    mount = next(m for m in c["volumeMounts"] if m["name"] == api_volume["name"])
    assert env["NOVA_K8S_TOKEN_FILE"] == f"{mount['mountPath']}/token"
    assert env["NOVA_K8S_CA_FILE"] == f"{mount['mountPath']}/ca.crt"
    assert api_volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] <= 3600
    policy = one(objs, "NetworkPolicy", "nova-secret-generator")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy["spec"]
    assert policy["spec"]["egress"] == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}],
                                         "ports": [{"port": 6443, "protocol": "TCP"}]}]
    pinned = render(CHART, PRODUCTION, [*GITOPS, "secrets.generator.apiServer.cidrs={172.18.0.2/32}",
                                          "secrets.generator.apiServer.ports={443}"])
    assert one(pinned, "NetworkPolicy", "nova-secret-generator")["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}], "ports": [{"port": 443, "protocol": "TCP"}]}]
    # Same inputs, same name; a changed plan (the opt-in) is a new Job.
    opted = render(CHART, PRODUCTION, [*GITOPS, "secrets.generateMissingOnUpgrade=true"])
    assert one(opted, "Job", r"nova-secret-generator-[0-9a-f]{10}").name != job.name


def pod_specs(objs: list[KubeObject]) -> Iterator[tuple[KubeObject, dict[str, Any]]]:
    for o in objs:
        spec = o.get("spec") or {}
        if o.kind in ("Deployment", "StatefulSet", "Job"):
            yield o, spec["template"]["spec"]
        elif o.kind == "Pod":
            yield o, spec


def test_every_secret_a_pod_reads_is_rendered_or_generated_with_that_key(objs: list[KubeObject]) -> None:
    """Consumers wait for the generated Secrets (a missing non-optional secretKeyRef keeps the container from
    starting); every key they read is one the generator writes, in their namespace."""
    plan = json.loads(one(objs, "ConfigMap", "nova-secret-generator")["data"]["plan.json"])
    generated = {(t["namespace"], t["name"]): set(t["keys"]) for s in plan["sets"] for t in s["targets"]}
    assert set(generated) == GENERATED
    rendered = {(o.namespace, o.name): set(o.get("data") or {}) for o in objs if o.kind == "Secret"}
    read = 0
    for o, spec in pod_specs(objs):
        if (o.get("metadata", {}).get("annotations") or {}).get("helm.sh/hook"):
            continue  # helm test pods: Argo CD does not run them (docs/gitops.md)
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            required = {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", [])
                        if "secretKeyRef" in e.get("valueFrom", {}) and not e["valueFrom"]["secretKeyRef"].get("optional")}
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if not ref:
                    continue
                key = (o.namespace, ref["name"])
                keys = generated.get(key, rendered.get(key))
                if key in generated:
                    read += 1
                    assert keys is not None and ref["key"] in keys, f"{o.kind} {o.name}: {ref}"
                    # An optional ref alone would let the container start without the Secret.
                    assert not ref.get("optional") or ref["name"] in required, f"{o.kind} {o.name}: {ref}"
    assert read > 20


def test_sync_waves_order_namespaces_generator_databases_services(objs: list[KubeObject]) -> None:
    waves: dict[str, set[str]] = {}
    for o in objs:
        wave = (o.get("metadata", {}).get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0")
        waves.setdefault(wave, set()).add(o.kind if wave != "-2" else f"{o.kind}/{o.name}")
    assert waves["-3"] == {"Namespace"}
    assert {k.split("/")[1] for k in waves["-2"]} <= {"nova-secret-generator"} | {
        k.split("/")[1] for k in waves["-2"] if k.startswith("Job/nova-secret-generator-")}
    assert {k.split("/")[0] for k in waves["-2"]} == {"ServiceAccount", "Role", "RoleBinding", "ConfigMap",
                                                      "NetworkPolicy", "Job"}
    assert waves["1"] == {"Deployment"}
    assert {"StatefulSet", "Job"} <= waves["0"]  # Redis, PostgreSQL, etcd and the bootstrap Job
    deployments = {o.name: o for o in objs if o.kind == "Deployment"}
    assert {n for n, d in deployments.items() if (d["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave")
            == "1"} == {f"nova-{s}" for s in ("auth-service", "messaging-service", "search-service", "streaming-api",
                                     "user-service")}


def test_bootstrap_job_keeps_no_ttl_under_gitops(objs: list[KubeObject]) -> None:
    helm_job = one(render(CHART, PRODUCTION), "Job", r".*postgres-bootstrap-[0-9a-f]{10}", DB_NS)
    assert helm_job["spec"]["ttlSecondsAfterFinished"] == 86400
    assert "ttlSecondsAfterFinished" not in one(objs, "Job", r".*postgres-bootstrap-[0-9a-f]{10}", DB_NS)["spec"]


# ------------------------------------------------------------------------------------------------------------
# the generator against the fake API
# ------------------------------------------------------------------------------------------------------------
def test_two_syncs_leave_the_first_passwords_in_place(objs: list[KubeObject], workdir: Path,
                                                      api: FakeKubeAPI) -> None:
    first = Generator(objs, workdir / "first")
    apply(api, objs)
    rc, summary, err = first.run(api)
    assert rc == 0, err
    assert summary["firstRun"] and not summary["refused"]
    assert len(summary["created"]) == len(GENERATED) + 1  # and the marker
    kept = values_of(api)
    # One run hands the same value to the database side and to the services' copy.
    for name in ("nova-redis-credentials", "nova-postgres-credentials"):
        home = kept[(REDIS_NS if "redis" in name else DB_NS, name)]
        copy = kept[(SVC_NS, name)]
        assert copy and all(home[k] == v for k, v in copy.items())
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", v) for k, v in kept[(DB_NS, "nova-postgres-credentials")].items())
    assert re.fullmatch(r"[A-Za-z0-9]{64}", kept[(SVC_NS, "nova-turn")]["turn-secret"])
    jwt = kept[(SVC_NS, "nova-jwt")]
    assert jwt["private-key.pem"].startswith("-----BEGIN EC PRIVATE KEY-----")  # the form genPrivateKey "ecdsa" renders
    assert keypair.facts(jwt["private-key.pem"], jwt["certificate.pem"]) == ("ec", 256)
    # A second sync with a different render (another plan: a new Job name) runs the generator again.
    changed = helm.render(CHART, PRODUCTION, [*GITOPS, "secrets.passwordLength=40"])
    second = Generator(changed, workdir / "second")
    assert second.job.name != first.job.name
    apply(api, changed)
    rc, summary, err = second.run(api)
    assert rc == 0, err
    assert not summary["firstRun"] and not summary["created"] and len(summary["kept"]) == len(GENERATED)
    assert values_of(api) == kept
    # ... although that run makes new values of its own when there is nothing to keep (made in the Job).
    with FakeKubeAPI(second.rbac()) as fresh:
        rc, _, err = second.run(fresh)
        assert rc == 0, err
        other = values_of(fresh)
    for ref, values in kept.items():
        assert all(other[ref][k] != v for k, v in values.items()), ref
    assert all(len(v) == 40 for v in other[(DB_NS, "nova-postgres-credentials")].values())
    # The script only read and created, and only the names of its plan.
    requests = sa_requests(api)
    assert {r.verb for r in requests} == {"get", "create"}
    assert {(r.namespace, r.name) for r in requests if r.verb == "create"} == GENERATED | {MARKER}
    assert all(r.status in (200, 201, 404) for r in requests)


def test_the_generator_makes_the_key_type_the_values_name(workdir: Path) -> None:
    rsa = render(CHART, PRODUCTION, [*GITOPS, "secrets.jwt.keyType=rsa"])
    generator = Generator(rsa, workdir / "rsa")
    assert next(s for s in generator.plan["sets"] if s["id"] == "jwt")["keyType"] == "rsa"
    with FakeKubeAPI(generator.rbac()) as api:
        apply(api, rsa)
        rc, _, err = generator.run(api)
        assert rc == 0, err
        jwt = decoded(api.get("secrets", SVC_NS, "nova-jwt"))
    assert jwt["private-key.pem"].startswith("-----BEGIN RSA PRIVATE KEY-----")  # genSelfSignedCert's PKCS#1
    assert keypair.facts(jwt["private-key.pem"], jwt["certificate.pem"]) == ("rsa", 2048)


def test_a_secret_deleted_by_hand_comes_back_only_on_opt_in(objs: list[KubeObject], workdir: Path,
                                                          api: FakeKubeAPI) -> None:
    generator = Generator(objs, workdir / "deleted")
    apply(api, objs)
    assert generator.run(api)[0] == 0
    kept = values_of(api)
    # A copy in the services namespace is restored from the original: no new password, no opt-in needed.
    api.remove("secrets", SVC_NS, "nova-postgres-credentials")
    rc, summary, err = generator.run(api)
    assert rc == 0, err
    assert summary["created"] == [f"Secret {SVC_NS}/nova-postgres-credentials"]
    assert values_of(api) == kept
    # A credential whose every copy is gone would need a new password: refused, nothing created.
    api.remove("secrets", SVC_NS, "nova-turn")
    api.remove("secrets", DB_NS, "nova-postgres-credentials")
    api.remove("secrets", SVC_NS, "nova-postgres-credentials")
    rc, summary, err = generator.run(api)
    assert rc == 1 and not summary["created"]
    assert len(summary["refused"]) == 2 and "secrets.generateMissingOnUpgrade=true" in err
    assert f"Secret {SVC_NS}/nova-turn is missing" in err
    assert api.get("secrets", SVC_NS, "nova-turn") is None
    # The opt-in is a new plan, hence a new Job, which creates them with new values and leaves the rest alone.
    opted = Generator(render(CHART, PRODUCTION, [*GITOPS, "secrets.generateMissingOnUpgrade=true"]),
                      workdir / "opted")
    assert opted.job.name != generator.job.name
    rc, summary, err = opted.run(api)
    assert rc == 0, err
    assert sorted(summary["created"]) == sorted([f"Secret {DB_NS}/nova-postgres-credentials",
                                                 f"Secret {SVC_NS}/nova-postgres-credentials",
                                                 f"Secret {SVC_NS}/nova-turn"])
    now = values_of(api)
    assert now[(SVC_NS, "nova-turn")] != kept[(SVC_NS, "nova-turn")]
    for ref in GENERATED - {(SVC_NS, "nova-turn"), (DB_NS, "nova-postgres-credentials"),
                            (SVC_NS, "nova-postgres-credentials")}:
        assert now[ref] == kept[ref], ref


def test_switching_a_helm_release_to_gitops_keeps_its_passwords(objs: list[KubeObject], workdir: Path,
                                                               api: FakeKubeAPI) -> None:
    """The Secrets a lookup-mode install wrote (kept: helm.sh/resource-policy) are the ones the generator finds:
    it only adds the services' copies, from the stored values."""
    installed = render(CHART, PRODUCTION)
    apply(api, installed)
    before = {(o.namespace, o.name): decoded(o.obj) for o in installed if (o.namespace, o.name) in GENERATED}
    assert len(before) == 4
    rc, summary, err = Generator(objs, workdir / "switch").run(api)
    assert rc == 0, err
    assert sorted(summary["created"]) == sorted([f"Secret {SVC_NS}/nova-postgres-credentials",
                                                 f"Secret {SVC_NS}/nova-redis-credentials",
                                                 f"ConfigMap {MARKER[0]}/{MARKER[1]}"])
    now = values_of(api)
    for ref, values in before.items():
        assert now[ref] == values, ref
    for name, home in (("nova-redis-credentials", REDIS_NS), ("nova-postgres-credentials", DB_NS)):
        assert all(before[(home, name)][k] == v for k, v in now[(SVC_NS, name)].items())


def test_an_existing_secret_without_a_new_key_is_reported_not_changed(objs: list[KubeObject], workdir: Path,
                                                                     api: FakeKubeAPI) -> None:
    generator = Generator(objs, workdir / "newkey")
    apply(api, objs)
    assert generator.run(api)[0] == 0
    secret = api.get("secrets", REDIS_NS, "nova-redis-credentials")
    assert secret is not None
    del secret["data"]["acl-user_service-password"]
    before = json.dumps(sorted(api.store.items()))
    rc, summary, err = generator.run(api)
    assert rc == 1 and "has no acl-user_service-password" in err and "never changes an existing Secret" in err
    assert len(summary["refused"]) == 1 and not summary["created"]
    assert json.dumps(sorted(api.store.items())) == before


def test_the_role_forbids_update_patch_delete_and_the_script_never_tries(objs: list[KubeObject], workdir: Path,
                                                                       api: FakeKubeAPI) -> None:
    generator = Generator(objs, workdir / "forbidden")
    apply(api, objs)
    assert generator.run(api)[0] == 0
    assert generator.run(api)[0] == 0
    script = list(sa_requests(api))
    assert {r.verb for r in script} == {"get", "create"}  # two runs: it never tried anything else
    token = api.sa_token(*SA)

    def call(method: str, path: str, body: dict[str, Any] | None = None,
             content_type: str = "application/json") -> int:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(api.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return e.code

    for ns, name in sorted(GENERATED):
        path = f"/api/v1/namespaces/{ns}/secrets/{name}"
        assert call("GET", path) == 200
        assert call("PUT", path, {"metadata": {"name": name}, "data": {}}) == 403
        assert call("PATCH", path, {"data": {"x": "eA=="}}, "application/merge-patch+json") == 403
        assert call("DELETE", path) == 403
    assert call("GET", f"/api/v1/namespaces/{SVC_NS}/secrets") == 403  # no list
    assert call("GET", f"/api/v1/namespaces/{SVC_NS}/secrets/some-other-secret") == 403
    assert call("DELETE", f"/api/v1/namespaces/{SVC_NS}/configmaps/{MARKER[1]}") == 403
    assert call("PUT", f"/api/v1/namespaces/{SVC_NS}/configmaps/{MARKER[1]}", {"metadata": {}}) == 403
    assert values_of(api) == {ref: decoded(api.get("secrets", *ref)) for ref in sorted(GENERATED)}


# ------------------------------------------------------------------------------------------------------------
# docs/examples
# ------------------------------------------------------------------------------------------------------------
def example(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    assert len(docs) >= 1
    return docs[-1] if name.startswith("flux") else docs[0]


def check_shape(obj: Any, shape: dict[str, Any], where: str) -> None:
    """The keys this test relies on are there with these types (the vendored CRD schema, checked by
    :func:`strictly_valid`, says what else may be there)."""
    assert isinstance(obj, dict), where
    for key, want in shape.items():
        assert key in obj, f"{where}.{key} missing"
        if isinstance(want, dict):
            check_shape(obj[key], want, f"{where}.{key}")
        else:
            assert isinstance(obj[key], want), f"{where}.{key}: {type(obj[key]).__name__}"


def strictly_valid(obj: dict[str, Any]) -> None:
    """Valid against the official CRD schema vendored in tools/crds (unknown fields are errors), on the oldest
    and the newest Kubernetes version the project checks."""
    for version in kube_versions.supported():
        validate = schemas_for(version).validator(obj["apiVersion"], obj["kind"])
        assert validate is not None, f"no vendored schema for {obj['apiVersion']} {obj['kind']}"
        assert validate(obj) == [], f"{obj['kind']} {obj['metadata']['name']} (Kubernetes {version})"


def render_with(files: list[Path], values: dict[str, Any], tmp_path: Path, release: str,
                namespace: str) -> list[KubeObject]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    for f in files:
        assert f.resolve().is_file() and ROOT in f.resolve().parents, f"{f}: not a file of this repository"
    return helm.render(CHART, [*files, path], release=release, namespace=namespace)


def test_argocd_application_example_renders_without_credentials(tmp_path: Path) -> None:
    app = example("argocd-application.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    check_shape(app, {"metadata": {"name": str, "namespace": str},
                      "spec": {"project": str, "source": {"repoURL": str, "targetRevision": str, "path": str,
                                                          "helm": {"releaseName": str, "valueFiles": list,
                                                                   "valuesObject": dict, "skipTests": bool}},
                               "destination": {"server": str, "namespace": str},
                               "syncPolicy": {"syncOptions": list}}}, "Application")
    strictly_valid(app)
    assert app["spec"]["source"]["path"] == "charts/nova"
    source = app["spec"]["source"]["helm"]
    assert source["valuesObject"]["global"]["gitops"] is True
    assert source["releaseName"] == app["metadata"]["name"]  # label tracking writes the Application name
    files = [ROOT / app["spec"]["source"]["path"] / f for f in source["valueFiles"]]  # relative to the chart
    objs = render_with(files, source["valuesObject"], tmp_path, source["releaseName"],
                       app["spec"]["destination"]["namespace"])
    assert any(o.kind == "Job" and o.name.startswith("nova-secret-generator-") for o in objs)
    assert not {(o.namespace, o.name) for o in objs if o.kind == "Secret"} & GENERATED
    assert all("argocd.argoproj.io/hook" not in (o.get("metadata", {}).get("annotations") or {})
               for o in objs if o.kind == "Secret")


def test_flux_helmrelease_example_renders(tmp_path: Path) -> None:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "flux-helmrelease.yaml").read_text()) if d]
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert kinds == {("source.toolkit.fluxcd.io/v1", "GitRepository"), ("helm.toolkit.fluxcd.io/v2", "HelmRelease")}
    repo = next(d for d in docs if d["kind"] == "GitRepository")
    release = next(d for d in docs if d["kind"] == "HelmRelease")
    check_shape(repo, {"metadata": {"name": str, "namespace": str}, "spec": {"interval": str, "url": str,
                                                                             "ref": dict}}, "GitRepository")
    check_shape(release, {"metadata": {"name": str, "namespace": str},
                          "spec": {"interval": str, "releaseName": str, "targetNamespace": str,
                                   "chart": {"spec": {"chart": str, "sourceRef": {"kind": str, "name": str}}},
                                   "values": dict}}, "HelmRelease")
    strictly_valid(repo)
    strictly_valid(release)
    ref = release["spec"]["chart"]["spec"]["sourceRef"]
    assert (ref["kind"], ref["name"]) == ("GitRepository", repo["metadata"]["name"])
    assert release["spec"]["chart"]["spec"]["chart"] == "./charts/nova"
    files = [ROOT / f for f in release["spec"]["chart"]["spec"]["valuesFiles"]]  # relative to the source root
    objs = render_with(files, release["spec"]["values"], tmp_path, release["spec"]["releaseName"],
                       release["spec"]["targetNamespace"])
    # Flux runs Helm against the cluster: `lookup` works, the chart renders (and keeps) the credentials.
    assert GENERATED - {(SVC_NS, "nova-redis-credentials"), (SVC_NS, "nova-postgres-credentials")} <= {
        (o.namespace, o.name) for o in objs if o.kind == "Secret"}
    assert not any(o.kind == "Job" and o.name.startswith("nova-secret-generator-") for o in objs)
    job = next(o for o in objs if o.kind == "Job" and re.fullmatch(r".*postgres-bootstrap-[0-9a-f]{10}", o.name))
    assert "ttlSecondsAfterFinished" not in job["spec"]  # Flux drift detection would re-create a TTL'd Job


def test_the_admission_policy_allows_exactly_the_plans_creates() -> None:
    """Where RBAC cannot name what may be created, the optional ValidatingAdmissionPolicy does."""
    api_version = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
    off = render(CHART, PRODUCTION, GITOPS, api_versions=[api_version])
    assert not any(o.kind.startswith("ValidatingAdmissionPolicy") for o in off)  # off by default
    with_policy = render(CHART, PRODUCTION, [*GITOPS, "secrets.generator.admissionPolicy.enabled=true"],
                         api_versions=[api_version])
    policy = next(o for o in with_policy if o.kind == "ValidatingAdmissionPolicy")
    binding = next(o for o in with_policy if o.kind == "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": policy.name, "validationActions": ["Deny"]}
    assert policy["spec"]["matchConditions"][0]["expression"] == (
        f"request.userInfo.username == 'system:serviceaccount:{SA[0]}:{SA[1]}'")
    m = re.fullmatch(r"\(request\.resource\.resource \+ '/' \+ request\.namespace \+ '/' \+ object\.metadata\.name\) "
                     r"in (\[.*\])", policy["spec"]["validations"][0]["expression"])
    assert m is not None
    assert set(json.loads(m.group(1))) == {f"secrets/{ns}/{name}" for ns, name in GENERATED} | {
        f"configmaps/{MARKER[0]}/{MARKER[1]}"}
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE"]
