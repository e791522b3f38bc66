"""Apply the chart's Patroni dynamic configuration to a running nova-postgres cluster.

Run by the <fullname>-config-apply-<hash> Job (a new Job whenever desired.json, this script or the pod template
changes): `config_apply.py /etc/nova-config-apply/desired.json`. desired.json is what the chart also writes as
bootstrap.dcs (ttl, loop_wait, retry_timeout, maximum_lag_on_failover, synchronous_*, postgresql.parameters, ...).
Only Patroni's REST API is used (the Job's NetworkPolicy allows nothing else):

1. wait for a member that answers GET /cluster with a leader (NOVA_PATRONI_MEMBERS, NOVA_WAIT_SECONDS);
2. validate every parameter before anything changes: the name must be one Patroni accepts for this PostgreSQL
   version and the value must parse and lie in range (Patroni's own validator, which otherwise drops or clamps
   it with only a log line), and `postgres --describe-config` says which ones need a restart;
3. GET /config, compute the difference (printed as `key: old -> new`), PATCH /config with it (Patroni's REST
   authentication: PATRONI_RESTAPI_USERNAME / PATRONI_RESTAPI_PASSWORD). Keys the chart renders are set; a
   PostgreSQL parameter in the DCS that desired.json no longer has is removed (null in the PATCH, Patroni then
   uses the default) when NOVA_PRUNE_PARAMETERS=true, else kept and listed. Other top-level DCS keys that the
   chart never rendered (set with patronictl edit-config) are left alone;
4. wait until every member ran its HA loop with the new configuration, then restart the members that report
   pending_restart, one at a time, replicas first and the leader last, each waited until it is back (the leader
   as primary, a replica streaming) when NOVA_RESTART_PENDING=true; otherwise print the pending members and the
   exact command to restart them.

The last line printed is a JSON object {"changes": [...], "restarted": [...], "pending": [...]}.
Exit codes: 0 applied (or nothing to do), 1 Patroni unreachable, PATCH or a restart failed, 2 usage or a
parameter that Patroni or PostgreSQL would reject (named in the message).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PARAMETERS = ("postgresql", "parameters")
RESTART_CONTEXTS = {"postmaster"}


class ApplyError(Exception):
    """A failure to report and exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def log(message: str) -> None:
    print(f"config-apply: {message}", flush=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    return default if value == "" else value.strip().lower() in ("1", "true", "yes", "on")


# -- REST ----------------------------------------------------------------------------------------------------
class Rest:
    def __init__(self, username: str, password: str, timeout: float = 5.0) -> None:
        self.auth = ("Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()) if password else ""
        self.timeout = timeout

    def call(self, method: str, url: str, body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or text); a connection error raises OSError."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.auth and method != "GET":
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text.strip()

    def get(self, url: str) -> Any:
        """The JSON body of a 200 answer, else None (including connection errors)."""
        try:
            status, body = self.call("GET", url)
        except OSError:
            return None
        return body if status == 200 else None


def base_url(api_url: str) -> str:
    """Patroni's member api_url (http://host:port/patroni) -> http://host:port."""
    parts = urllib.parse.urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}"


# -- validation --------------------------------------------------------------------------------------------
def describe_config(bin_dir: str) -> dict[str, tuple[str, str]]:
    """name -> (context, vartype) from `postgres --describe-config` (the server binary of the image); {} when the
    binary is not there."""
    binary = os.path.join(bin_dir, "postgres")
    try:
        out = subprocess.run([binary, "--describe-config"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    result = {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) >= 4:
            result[fields[0].lower()] = (fields[1], fields[3])
    return result


def patroni_validator() -> Any:
    try:
        from patroni.postgresql import validator
    except ImportError:
        return None
    return validator


def check_value(validator: Any, version: int, name: str, value: str) -> str | None:
    """Why Patroni would reject, drop or clamp ``value`` of parameter ``name`` (None: accepted)."""
    if "." in name:  # extension / custom parameters are passed through by Patroni and PostgreSQL
        return None
    if name in validator.recovery_parameters:
        return "is a recovery parameter, not a postgresql.parameters entry"
    known = validator.parameters.get(name)
    if not known:
        return f"is not a PostgreSQL {version // 10000} parameter Patroni knows (misspelt, or removed)"
    candidates = known if isinstance(known[0], tuple) else [known]
    for v in candidates:
        if version >= v.version_from and (v.version_till is None or version < v.version_till):
            break
    else:
        return f"does not exist in PostgreSQL {version // 10000}"
    kind = type(v).__name__
    if kind == "Bool" and validator.parse_bool(value) is None:
        return f"{value!r} is not a boolean (on/off, true/false)"
    if kind in ("Integer", "Real"):
        number = v.parse(value, v.unit)
        unit = f" (unit {v.unit})" if v.unit else ""
        if number is None:
            return f"{value!r} is not a valid {kind.lower()}{unit}"
        if number < v.min_val or number > v.max_val:
            return f"{value!r} is outside {v.min_val}..{v.max_val}{unit}"
    if kind in ("Enum", "EnumBool") and str(value).lower() not in v.possible_values \
            and not (kind == "EnumBool" and validator.parse_bool(value) is not None):
        return f"{value!r} is not one of {', '.join(sorted(v.possible_values))}"
    return None


def validate(parameters: dict[str, Any], version: int, contexts: dict[str, tuple[str, str]]) -> None:
    """Refuse (exit 2) any parameter Patroni would drop or clamp, or PostgreSQL cannot set in a config file."""
    validator = patroni_validator()
    if validator is None:
        print("config-apply: Patroni's validator is not importable; parameter values are not checked before the "
              "PATCH", file=sys.stderr, flush=True)
    errors = []
    for name, value in sorted(parameters.items()):
        reason = check_value(validator, version, name.lower(), str(value)) if validator is not None else None
        if reason is None and contexts and "." not in name and name.lower() not in contexts and validator is None:
            reason = "is not a PostgreSQL parameter (postgres --describe-config does not list it)"
        if reason is None and contexts.get(name.lower(), ("",))[0] == "internal":
            reason = "is read-only (internal) and cannot be set"
        if reason:
            errors.append(f"postgresql.parameters.{name} {reason}")
    if errors:
        raise ApplyError("rejected, nothing applied: " + "; ".join(errors) + " (fix postgresql.parameters in the "
                         "values and upgrade again)", 2)


# -- the difference ------------------------------------------------------------------------------------------
def same(old: Any, new: Any) -> bool:
    """Patroni's own comparison (patch_config): by string, so "200" equals 200; booleans by value."""
    if isinstance(old, bool) or isinstance(new, bool):
        return str(old).lower() == str(new).lower()
    return str(old) == str(new)


def diff(current: Any, desired: dict[str, Any], path: tuple[str, ...], prune: bool,
         changes: list[dict[str, Any]], kept: list[str]) -> dict[str, Any]:
    """The PATCH body turning ``current`` into ``desired`` at ``path``; every change is appended to ``changes``."""
    current = current if isinstance(current, dict) else {}
    patch: dict[str, Any] = {}
    for key, new in desired.items():
        here = (*path, key)
        old = current.get(key)
        if isinstance(new, dict) and isinstance(old, dict):
            sub = diff(old, new, here, prune, changes, kept)
            if sub:
                patch[key] = sub
        elif key not in current or not same(old, new):
            patch[key] = new
            changes.append({"key": ".".join(here), "old": old, "new": new})
    if path == PARAMETERS:
        for key in sorted(set(current) - set(desired)):
            here = ".".join((*path, key))
            if prune:
                patch[key] = None
                changes.append({"key": here, "old": current[key], "new": None})
            else:
                kept.append(here)
    return patch


def show(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value) if not isinstance(value, str) else value


# -- the cluster -------------------------------------------------------------------------------------------
class Applier:
    def __init__(self, desired: dict[str, Any]) -> None:
        self.desired = desired
        self.members = [u.strip().rstrip("/") for u in os.environ.get("NOVA_PATRONI_MEMBERS", "").split(",")
                        if u.strip()]
        if not self.members:
            raise ApplyError("NOVA_PATRONI_MEMBERS is empty (comma-separated Patroni REST URLs)", 2)
        self.rest = Rest(os.environ.get("PATRONI_RESTAPI_USERNAME", ""), os.environ.get("PATRONI_RESTAPI_PASSWORD", ""))
        self.restart_pending = env_bool("NOVA_RESTART_PENDING", True)
        self.prune = env_bool("NOVA_PRUNE_PARAMETERS", True)
        self.wait_seconds = float(os.environ.get("NOVA_WAIT_SECONDS", "600"))
        self.restart_timeout = float(os.environ.get("NOVA_RESTART_TIMEOUT", "300"))
        self.namespace = os.environ.get("NOVA_NAMESPACE", "default")
        self.scope = os.environ.get("NOVA_SCOPE", "")
        self.bin_dir = os.environ.get("NOVA_PG_BIN_DIR", "/usr/lib/postgresql/15/bin")
        self.changes: list[dict[str, Any]] = []
        self.restarted: list[str] = []
        self.pending: list[str] = []
        self.kept: list[str] = []

    # -- cluster view ----------------------------------------------------------------------------------------
    def cluster(self) -> dict[str, Any] | None:
        """GET /cluster from the first member that answers."""
        for url in self.members:
            body = self.rest.get(f"{url}/cluster")
            if isinstance(body, dict) and body.get("members"):
                return body
        return None

    @staticmethod
    def leader_of(cluster: dict[str, Any]) -> dict[str, Any] | None:
        return next((m for m in cluster["members"] if m.get("role") in ("leader", "master", "standby_leader")), None)

    def wait_for_leader(self) -> dict[str, Any]:
        started = time.monotonic()
        next_log = started + 30
        while True:
            cluster = self.cluster()
            leader = self.leader_of(cluster) if cluster else None
            if leader and leader.get("state") == "running":
                return cluster
            now = time.monotonic()
            if now - started > self.wait_seconds:
                raise ApplyError(f"no Patroni member with a running leader answered at {', '.join(self.members)} "
                                 f"after {self.wait_seconds:.0f} s")
            if now >= next_log:
                print(f"config-apply: waiting for a Patroni leader ({now - started:.0f} s)", file=sys.stderr,
                      flush=True)
                next_log = now + 30
            time.sleep(2)

    def state(self, member: dict[str, Any]) -> dict[str, Any] | None:
        return self.rest.get(base_url(member["api_url"]) + "/patroni")

    # -- steps -------------------------------------------------------------------------------------------
    def run(self) -> None:
        cluster = self.wait_for_leader()
        leader = self.leader_of(cluster)
        leader_state = self.state(leader) or {}
        version = int(leader_state.get("server_version") or 150000)
        contexts = describe_config(self.bin_dir)
        parameters = self.desired.get("postgresql", {}).get("parameters", {})
        validate(parameters, version, contexts)

        current = self.current_config(leader)
        old_loop = int(current.get("loop_wait") or 10)
        patch = self.compute(current)
        for change in self.changes:
            log(f"{change['key']}: {show(change['old'])} -> {show(change['new'])}")
        for key in self.kept:
            log(f"{key}: kept in the DCS though the values no longer set it (patroni.configApply.pruneParameters "
                "is false)")
        if patch:
            self.patch(leader, patch)
        else:
            log("the running configuration already matches the values; nothing to change")
        names = {c["key"].split(".")[-1] for c in self.changes if c["key"].startswith("postgresql.parameters.")}
        needs_restart = sorted(n for n in names if contexts.get(n.lower(), ("postmaster",))[0] in RESTART_CONTEXTS)
        if patch:
            self.settle(max(old_loop, int(self.desired.get("loop_wait") or old_loop)), bool(needs_restart))
        self.restart_or_report(needs_restart)

    def current_config(self, leader: dict[str, Any]) -> dict[str, Any]:
        status, body = self.rest.call("GET", base_url(leader["api_url"]) + "/config")
        if status != 200 or not isinstance(body, dict):
            raise ApplyError(f"GET /config on {leader['name']} answered {status}: {body}")
        return body

    def compute(self, current: dict[str, Any]) -> dict[str, Any]:
        self.changes, self.kept = [], []
        return diff(current, self.desired, (), self.prune, self.changes, self.kept)

    def patch(self, leader: dict[str, Any], patch: dict[str, Any]) -> None:
        """PATCH /config; on a conflict (409: the DCS changed between read and write) read again and retry."""
        for _attempt in range(5):
            url = base_url(leader["api_url"]) + "/config"
            try:
                status, body = self.rest.call("PATCH", url, patch, timeout=30)
            except OSError as exc:
                raise ApplyError(f"PATCH {url}: {exc}") from exc
            if status == 200 and isinstance(body, dict):
                missing = diff(body, self.desired, (), self.prune, [], [])
                if missing:
                    raise ApplyError(f"PATCH /config answered 200 but the DCS still differs: {json.dumps(missing)}")
                log(f"PATCH /config on {leader['name']}: {len(self.changes)} change(s) written to the DCS")
                return
            if status == 401:
                raise ApplyError(f"PATCH /config on {leader['name']}: 401, the REST password (Secret key "
                                 "rest-password) does not match Patroni's restapi.authentication")
            if status != 409:
                raise ApplyError(f"PATCH /config on {leader['name']} answered {status}: {body}")
            time.sleep(1)
            patch = self.compute(self.current_config(leader))
            if not patch:
                return
        raise ApplyError("PATCH /config kept conflicting with other writers (409) after 5 attempts")

    def settle(self, loop_wait: int, expect_pending: bool) -> None:
        """Wait until every running member has run an HA loop after the PATCH (Patroni re-reads the DCS and
        reloads PostgreSQL in it; dcs_last_seen, whole seconds, moves on each loop): its last contact must be at
        least one second after the PATCH, and one more loop must follow. With a restart-only parameter changed,
        also wait (bounded) for the pending_restart flags."""
        patched = int(time.time()) + 1
        deadline = time.monotonic() + 3 * loop_wait + 15
        seen: dict[str, int] = {}
        while time.monotonic() < deadline:
            cluster = self.cluster() or {"members": []}
            running = [m for m in cluster["members"] if m.get("state") in ("running", "streaming")]
            done = True
            for m in running:
                st = self.state(m) or {}
                last = int(st.get("dcs_last_seen") or 0)
                first = seen.get(m["name"])
                if first is None and last >= patched:
                    seen[m["name"]] = last
                if first is None or last <= first:
                    done = False
                if expect_pending and not st.get("pending_restart"):
                    done = False
            if running and done:
                return
            time.sleep(0.5)
        if expect_pending:
            log("note: not every member reports pending_restart (a value equal to the running one in other "
                "units needs none)")

    # -- restarts ----------------------------------------------------------------------------------------
    def pending_members(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        cluster = self.cluster() or {"members": []}
        leader = self.leader_of(cluster)
        pending = []
        for m in cluster["members"]:
            st = self.state(m)  # live; the member key in /cluster lags up to one HA loop behind a restart
            if st is None or st.get("state") != "running":
                # A stopped or starting member starts PostgreSQL with the DCS configuration: nothing to restart.
                if m.get("pending_restart"):
                    log(f"{m['name']} is not running ({(st or {}).get('state', 'unreachable')}); it starts with "
                        "the new configuration")
                continue
            if st.get("pending_restart"):
                pending.append(m)
        replicas = sorted((m for m in pending if m is not leader), key=lambda m: m["name"])
        return replicas + [m for m in pending if m is leader], leader

    def restart_or_report(self, needs_restart: list[str]) -> None:
        if needs_restart:
            log(f"parameters that take effect after a restart: {', '.join(needs_restart)}")
        for _pass in range(2):  # a second pass: a replica can stay pending until the primary restarted
            pending, leader = self.pending_members()
            if not pending:
                break
            if not self.restart_pending:
                self.report(pending)
                return
            for m in pending:
                self.restart(m, is_leader=leader is not None and m["name"] == leader["name"])
        else:
            pending, _ = self.pending_members()
            if pending:
                self.pending = [m["name"] for m in pending]
                raise ApplyError(f"still pending a restart after two rounds: {', '.join(self.pending)}")

    def report(self, pending: list[dict[str, Any]]) -> None:
        self.pending = [m["name"] for m in pending]
        log(f"pending restart (patroni.configApply.restartPending is false): {', '.join(self.pending)}; restart them "
            "one at a time, the primary last:")
        for m in pending:
            log(f"  kubectl -n {self.namespace} exec {m['name']} -c postgres -- patronictl -c /etc/patroni/patroni.yml "
                f"restart {self.scope} {m['name']} --pending --force")

    def restart(self, member: dict[str, Any], is_leader: bool) -> None:
        name = member["name"]
        url = base_url(member["api_url"])
        log(f"restarting {name} ({'primary' if is_leader else 'replica'})")
        started = time.monotonic()
        try:
            status, body = self.rest.call("POST", f"{url}/restart",
                                          {"restart_pending": True, "timeout": int(self.restart_timeout)},
                                          timeout=self.restart_timeout + 30)
        except OSError as exc:
            raise ApplyError(f"POST /restart on {name}: {exc}") from exc
        if status == 503 and "conditions are not satisfied" in str(body):
            log(f"{name} no longer needs a restart")
            return
        if status != 200:
            raise ApplyError(f"POST /restart on {name} answered {status}: {body}")
        self.wait_back(member, is_leader, started)
        self.restarted.append(name)
        log(f"{name} is back after {time.monotonic() - started:.1f} s")

    def wait_back(self, member: dict[str, Any], is_leader: bool, started: float) -> None:
        """The restarted member runs without pending_restart: a leader as a writable primary, a replica streaming
        from the leader."""
        name = member["name"]
        deadline = started + self.restart_timeout
        last: Any = None
        while time.monotonic() < deadline:
            st = self.state(member)
            last = st
            if st and st.get("state") == "running" and not st.get("pending_restart"):
                if is_leader and st.get("role") in ("master", "primary"):
                    return
                if not is_leader and st.get("role") == "replica":
                    cluster = self.cluster()
                    lead = self.leader_of(cluster) if cluster else None
                    lead_state = self.state(lead) if lead else None
                    streams = (lead_state or {}).get("replication") or []
                    if any(r.get("application_name") == name and r.get("state") == "streaming" for r in streams):
                        return
            time.sleep(0.5)
        raise ApplyError(f"{name} did not come back within {self.restart_timeout:.0f} s after its restart (last "
                         f"state {json.dumps(last)}); a parameter value the server cannot start with? See its log")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: config_apply.py DESIRED_JSON", file=sys.stderr)
        return 2
    try:
        with open(argv[1]) as fh:
            desired = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"config-apply: {argv[1]}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(desired, dict):
        print(f"config-apply: {argv[1]}: not a JSON object", file=sys.stderr)
        return 2
    applier: Applier | None = None
    code = 0
    try:
        applier = Applier(desired)
        applier.run()
    except ApplyError as exc:
        print(f"config-apply: FAILED: {exc}", file=sys.stderr, flush=True)
        code = exc.code
    result = {"changes": applier.changes if applier else [], "restarted": applier.restarted if applier else [],
              "pending": applier.pending if applier else [], "ok": code == 0}
    print(json.dumps(result, sort_keys=True), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
