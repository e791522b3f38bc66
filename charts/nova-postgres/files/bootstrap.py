"""Idempotent database isolation bootstrap for nova-postgres.

Run by the <fullname>-bootstrap-<hash> Job, which is created with the release (not a hook) and waits here for
the primary; a new Job whenever the plan, this script or the pod template changes. The runtime tests run the
same rendered command: `bootstrap.py /etc/nova-bootstrap/plan.json`. The plan (rendered from isolation.*
values) names databases, schemas and logins; the connection comes from libpq's environment (PGHOST, PGPORT,
PGUSER, PGPASSWORD) and each login's password from the environment variable the plan names.

Every step first reads the catalog and only acts when the state differs, so a second run changes nothing and
a run with one service added changes only what that service needs. The last line printed is a JSON object
{"changes": [...]} listing what was done (passwords never printed).
Nothing is ever dropped: a login or database removed from the values stays, see docs/postgres.md.
Exit codes: 0 done, 1 the primary was not reachable in time or a statement failed, 2 usage or bad plan.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import sys
import time

try:  # the Patroni images ship psycopg2; psycopg 3 works as well
    import psycopg2 as pg
    from psycopg2 import sql
except ImportError:  # pragma: no cover - depends on the image
    import psycopg as pg  # type: ignore[no-redef]
    from psycopg import sql  # type: ignore[no-redef]

SYSTEM_DATABASES = ("postgres", "template1")
LOGIN_ATTRIBUTES = {"rolcanlogin": True, "rolsuper": False, "rolcreatedb": False, "rolcreaterole": False,
                    "rolinherit": True, "rolreplication": False, "rolbypassrls": False}


class Bootstrap:
    def __init__(self, plan: dict) -> None:
        self.plan = plan
        self.changes: list[str] = []

    # -- connections -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, dbname: str):
        """An autocommit connection (CREATE DATABASE cannot run in a transaction; psycopg2's `with conn`
        would open one), closed on exit."""
        conn = pg.connect(dbname=dbname, connect_timeout=5, application_name="nova-bootstrap")
        try:
            conn.autocommit = True
            yield conn
        finally:
            conn.close()

    def wait_for_primary(self, seconds: float) -> None:
        """Retry until the server at PGHOST is a writable primary, at most ``seconds``. The Job runs with the
        release, not after it, so on a fresh install this is where it waits for etcd, Patroni and the -primary
        Service; progress is logged every 30 s."""
        started = time.monotonic()
        deadline = started + seconds
        next_log = started + 30
        last = ""
        delay = 1.0
        while True:
            try:
                with self.connect("postgres") as conn, conn.cursor() as cur:
                    cur.execute("SELECT pg_is_in_recovery()")
                    if not cur.fetchone()[0]:
                        return
                    last = "the server is a replica (in recovery)"
            except pg.Error as exc:
                last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"no writable primary at {os.environ.get('PGHOST', 'localhost')} after "
                                   f"{seconds:.0f} s: {last}")
            if now >= next_log:
                print(f"bootstrap: waiting for a writable primary ({now - started:.0f} s): {last}", file=sys.stderr,
                      flush=True)
                next_log = now + 30
            time.sleep(min(delay, max(deadline - now, 0.1)))
            delay = min(delay * 2, 5.0)

    # -- helpers -----------------------------------------------------------------------------------------
    def run(self, cur, statement, what: str) -> None:
        cur.execute(statement)
        self.changes.append(what)

    @staticmethod
    def one(cur, query: str, args: tuple = ()):
        cur.execute(query, args)
        row = cur.fetchone()
        return row[0] if row else None

    @staticmethod
    def has_acl(cur, kind: str, name: str, grantee: str | None, privilege: str, dbname: str | None = None) -> bool:
        """Whether grantee (None = PUBLIC) holds privilege on a database ('d') or schema ('n') by an explicit
        or default ACL entry (not through role membership)."""
        grantee_sql = "0" if grantee is None else "(SELECT oid FROM pg_roles WHERE rolname = %s)"
        args: tuple = (name,) if grantee is None else (name, grantee)
        if kind == "d":
            query = ("SELECT EXISTS (SELECT 1 FROM pg_database d, aclexplode(COALESCE(d.datacl, "
                     "acldefault('d', d.datdba))) a WHERE d.datname = %s AND a.grantee = " + grantee_sql +
                     " AND a.privilege_type = %s)")
        else:
            query = ("SELECT EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(COALESCE(n.nspacl, "
                     "acldefault('n', n.nspowner))) a WHERE n.nspname = %s AND a.grantee = " + grantee_sql +
                     " AND a.privilege_type = %s)")
        return bool(Bootstrap.one(cur, query, args + (privilege,)))

    @staticmethod
    def password_matches(stored: str | None, password: str) -> bool:
        """Whether a SCRAM-SHA-256 verifier from pg_authid was made from this password (salt and iterations
        are read from the verifier, so an unchanged password is not rewritten with a new salt)."""
        if not stored or not stored.startswith("SCRAM-SHA-256$"):
            return False
        try:
            iterations_salt, keys = stored[len("SCRAM-SHA-256$"):].split("$", 1)
            iterations, salt = iterations_salt.split(":", 1)
            stored_key, server_key = keys.split(":", 1)
            salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
        except ValueError:
            return False
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return (hmac.compare_digest(base64.b64encode(hashlib.sha256(client_key).digest()).decode(), stored_key)
                and hmac.compare_digest(base64.b64encode(server).decode(), server_key))

    # -- steps -------------------------------------------------------------------------------------------
    def ensure_login(self, cur, login: str, spec: dict) -> None:
        env = spec["passwordEnv"]
        password = os.environ.get(env, "")
        if not password:
            raise ValueError(f"login {login}: environment variable {env} (its password) is empty")
        limit = int(spec.get("connectionLimit", -1))
        cur.execute("SELECT a.rolcanlogin, a.rolsuper, a.rolcreatedb, a.rolcreaterole, a.rolinherit, "
                    "a.rolreplication, a.rolbypassrls, a.rolconnlimit, a.rolpassword, s.setconfig "
                    "FROM pg_authid a LEFT JOIN pg_db_role_setting s ON s.setrole = a.oid AND s.setdatabase = 0 "
                    "WHERE a.rolname = %s", (login,))
        row = cur.fetchone()
        ident = sql.Identifier(login)
        attrs = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS "
                        "CONNECTION LIMIT {}").format(sql.Literal(limit))
        if row is None:
            self.run(cur, sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(ident, attrs, sql.Literal(password)),
                     f"create login {login}")
            config: list[str] = []
        else:
            current = dict(zip(LOGIN_ATTRIBUTES, row[:7]))
            if current != LOGIN_ATTRIBUTES or row[7] != limit:
                self.run(cur, sql.SQL("ALTER ROLE {} {}").format(ident, attrs), f"set attributes of login {login}")
            if not self.password_matches(row[8], password):
                self.run(cur, sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)),
                         f"set password of login {login}")
            config = list(row[9] or [])
        schema = spec.get("schema")
        if schema and f"search_path={schema}" not in config:
            self.run(cur, sql.SQL("ALTER ROLE {} SET search_path TO {}").format(ident, sql.Identifier(schema)),
                     f"set search_path of login {login} to {schema}")
        for member_of in spec.get("memberOf", []):
            granted = self.one(cur, "SELECT pg_has_role(%s, %s, 'MEMBER')", (login, member_of))
            if not granted:
                self.run(cur, sql.SQL("GRANT {} TO {}").format(sql.Identifier(member_of), ident),
                         f"grant {member_of} to login {login}")

    def ensure_database(self, cur, db: str) -> None:
        if not self.one(cur, "SELECT 1 FROM pg_database WHERE datname = %s", (db,)):
            self.run(cur, sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(sql.Identifier(db)),
                     f"create database {db}")
        self.revoke_public_database(cur, db)

    def revoke_public_database(self, cur, db: str) -> None:
        for privilege in ("CONNECT", "TEMPORARY"):
            if self.has_acl(cur, "d", db, None, privilege):
                self.run(cur, sql.SQL("REVOKE {} ON DATABASE {} FROM PUBLIC").format(sql.SQL(privilege),
                                                                                     sql.Identifier(db)),
                         f"revoke {privilege} on database {db} from PUBLIC")

    def grant_connect(self, cur, db: str, login: str) -> None:
        if not self.has_acl(cur, "d", db, login, "CONNECT"):
            self.run(cur, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db),
                                                                              sql.Identifier(login)),
                     f"grant CONNECT on database {db} to {login}")

    def ensure_schemas(self, db: str, schemas: list[str], logins: dict) -> None:
        with self.connect(db) as conn, conn.cursor() as cur:
            for privilege in ("USAGE", "CREATE"):
                if self.has_acl(cur, "n", "public", None, privilege):
                    self.run(cur, sql.SQL("REVOKE {} ON SCHEMA public FROM PUBLIC").format(sql.SQL(privilege)),
                             f"revoke {privilege} on schema {db}.public from PUBLIC")
            for schema in schemas:
                if not self.one(cur, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)):
                    self.run(cur, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)),
                             f"create schema {db}.{schema}")
                for privilege in ("USAGE", "CREATE"):
                    if self.has_acl(cur, "n", schema, None, privilege):
                        self.run(cur, sql.SQL("REVOKE {} ON SCHEMA {} FROM PUBLIC").format(
                            sql.SQL(privilege), sql.Identifier(schema)),
                            f"revoke {privilege} on schema {db}.{schema} from PUBLIC")
            for login, spec in logins.items():
                schema = spec["schema"]
                for privilege in ("USAGE", "CREATE"):
                    if not self.has_acl(cur, "n", schema, login, privilege):
                        self.run(cur, sql.SQL("GRANT {} ON SCHEMA {} TO {}").format(
                            sql.SQL(privilege), sql.Identifier(schema), sql.Identifier(login)),
                            f"grant {privilege} on schema {db}.{schema} to {login}")

    def apply(self) -> list[str]:
        databases: dict = self.plan.get("databases") or {}
        logins: dict = self.plan.get("logins") or {}
        with self.connect("postgres") as conn, conn.cursor() as cur:
            for login, spec in logins.items():
                self.ensure_login(cur, login, spec)
            for db in SYSTEM_DATABASES:
                self.revoke_public_database(cur, db)
            for db in databases:
                self.ensure_database(cur, db)
            for login, spec in logins.items():
                if spec.get("database"):
                    self.grant_connect(cur, spec["database"], login)
        for db, spec in databases.items():
            members = {k: v for k, v in logins.items() if v.get("database") == db and v.get("schema")}
            self.ensure_schemas(db, list(spec.get("schemas") or []), members)
        return self.changes


def load_plan(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            plan = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the plan: {exc}") from exc
    if not isinstance(plan, dict) or not isinstance(plan.get("databases", {}), dict) \
            or not isinstance(plan.get("logins", {}), dict):
        raise ValueError(f"{path}: the plan must be an object with 'databases' and 'logins' maps")  # noqa: TRY004
    for login, spec in plan.get("logins", {}).items():
        if not isinstance(spec, dict) or "passwordEnv" not in spec:
            raise ValueError(f"{path}: logins.{login} needs passwordEnv")
    return plan


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: bootstrap.py PLAN.json", file=sys.stderr)
        return 2
    try:
        plan = load_plan(argv[0])
    except ValueError as exc:
        print(f"bootstrap: {exc}", file=sys.stderr)
        return 2
    boot = Bootstrap(plan)
    try:
        boot.wait_for_primary(float(os.environ.get("NOVA_BOOTSTRAP_WAIT", "600")))
        changes = boot.apply()
    except (TimeoutError, ValueError, pg.Error) as exc:
        print(f"bootstrap: {str(exc).strip()}", file=sys.stderr)
        print(json.dumps({"changes": boot.changes, "error": str(exc).strip().splitlines()[0]}))
        return 1
    for change in changes:
        print(f"bootstrap: {change}", file=sys.stderr)
    print(json.dumps({"changes": changes}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
