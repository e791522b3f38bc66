"""Patroni custom bootstrap of the nova-postgres chart: restore a pgBackRest backup into the empty data directory.

Patroni runs this (bootstrap.method: pgbackrest, keep_existing_recovery_conf: true) instead of initdb when
restore.fromBackup is set and the cluster does not exist yet. pgBackRest writes the recovery settings
(restore_command, recovery target, target action promote); PostgreSQL replays the archived WAL and promotes,
then Patroni finishes the bootstrap. Before restoring it checks the request against the repository, so that a
target before the first backup, or an empty repository, stops here with a message naming the value to change
(pgBackRest alone would restore the latest backup and PostgreSQL would then fail to reach the target).

Usage: pgbackrest-restore.py --stanza S --data-dir D [--set LABEL] [--target-time T | --target-name N]
Exit 0 restored, 1 refused or failed (reason on stderr). Standard library only (runs with the image's python3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
from typing import Any


def say(msg: str) -> None:
    print(f"nova-restore: {msg}", file=sys.stderr, flush=True)


def parse_time(value: str) -> dt.datetime:
    """ISO 8601 with a zone ("2026-12-01 12:00:00+00", "...T12:00:00.5Z", "+05:30")."""
    text = value.strip().replace("T", " ")
    text = re.sub(r"Z$", "+00:00", text)
    text = re.sub(r"([+-]\d{2})$", r"\1:00", text)
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed


def backups(stanza: str) -> list[dict[str, Any]]:
    out = subprocess.run(["pgbackrest", f"--stanza={stanza}", "--output=json", "info"], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"pgbackrest info failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()}")
    info = json.loads(out.stdout or "[]")
    entry = next((s for s in info if s.get("name") == stanza), None)
    if entry is None or entry.get("status", {}).get("code") not in (0, None):
        status = (entry or {}).get("status", {}).get("message", "stanza not found")
        raise RuntimeError(f"stanza {stanza!r} is not usable in the repository: {status}")
    return sorted(entry.get("backup") or [], key=lambda b: b["timestamp"]["stop"])


def plan(args: argparse.Namespace, sets: list[dict[str, Any]]) -> list[str]:
    """The pgbackrest restore options for the request, or SystemExit(1) with the reason."""
    if not sets:
        say(f"refused: the repository holds no backup of stanza {args.stanza!r}; take one first "
            "(backup Job) or set restore.stanza to the stanza that has them")
        raise SystemExit(1)
    opts = ["--delta", "--target-timeline=latest"]
    targeted = ["--target-action=promote"]  # pgBackRest allows it with a target only
    if args.set:
        if args.set not in {b["label"] for b in sets}:
            say(f"refused: restore.set {args.set!r} is not in stanza {args.stanza!r}; backups: "
                + ", ".join(b["label"] for b in sets))
            raise SystemExit(1)
        opts.append(f"--set={args.set}")
    if args.target_time:
        target = parse_time(args.target_time)
        first = sets[0]
        first_stop = dt.datetime.fromtimestamp(first["timestamp"]["stop"], dt.timezone.utc)
        if target < first_stop:
            say(f"refused: restore.targetTime {args.target_time} is before the end of the first backup "
                f"{first['label']} ({first_stop.isoformat()}); the earliest time this repository can restore to is "
                f"{first_stop.isoformat()}")
            raise SystemExit(1)
        opts += ["--type=time", f"--target={target.isoformat(sep=' ')}", *targeted]
    elif args.target_name:
        opts += ["--type=name", f"--target={args.target_name}", *targeted]
    else:
        opts += ["--type=default"]  # replay every archived WAL segment, then promote
    return opts


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="pgbackrest-restore.py")
    ap.add_argument("--stanza", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--set", default="")
    ap.add_argument("--target-time", default="")
    ap.add_argument("--target-name", default="")
    args = ap.parse_args(argv)
    try:
        opts = plan(args, backups(args.stanza))
    except (RuntimeError, ValueError) as exc:
        say(f"refused: {exc}")
        return 1
    os.makedirs(args.data_dir, mode=0o700, exist_ok=True)
    os.chmod(args.data_dir, 0o700)
    cmd = ["pgbackrest", f"--stanza={args.stanza}", *opts, "restore"]
    say("running " + " ".join(cmd))
    rc = subprocess.run(cmd, check=False).returncode
    if rc != 0:
        say(f"pgbackrest restore failed (exit {rc})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
