"""A fresh `git clone` of the working tree as it is now: what a new user gets, with nothing built.

The working tree (committed, staged, modified and untracked files, .gitignore respected) becomes a
temporary commit, pushed to a temporary bare repository and cloned from there, so the clone has no
ignored build output (charts/*/charts/*.tgz), no caches, only what `git clone` of this commit gives.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def snapshot_commit(root: Path, scratch: Path) -> str:
    """A commit of root's working tree (HEAD's index untouched: a private index file is used)."""
    env = {"GIT_INDEX_FILE": str(scratch / "index"), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    _git("read-tree", "HEAD", cwd=root, env=env)
    _git("add", "-A", ".", cwd=root, env=env)
    tree = _git("write-tree", cwd=root, env=env)
    return _git("commit-tree", tree, "-p", "HEAD", "-m", "working tree snapshot for a fresh-clone test",
                cwd=root, env=env)


def fresh_clone(dest: Path, root: Path = ROOT) -> Path:
    """Clone a snapshot of ``root``'s working tree into ``dest``/repo (on branch main) and link ``.venv`` to
    the project's venv, as `make setup` would have made it. Returns the clone's directory."""
    dest.mkdir(parents=True, exist_ok=True)
    sha = snapshot_commit(root, dest)
    bare = dest / "origin.git"
    _git("init", "-q", "--bare", str(bare), cwd=dest)
    # The bare repository borrows root's objects (git's alternates), so the push sends only the snapshot's own
    # new objects instead of packing the whole history each time; the clone below gets every object it needs.
    objects = Path(_git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=root)) / "objects"
    (bare / "objects" / "info" / "alternates").write_text(f"{objects}\n")
    _git("push", "-q", str(bare), f"{sha}:refs/heads/main", cwd=root)
    clone = dest / "repo"
    _git("clone", "-q", "--branch", "main", str(bare), str(clone), cwd=dest)
    venv = root / ".venv"
    if venv.exists() and not (clone / ".venv").is_symlink():  # a snapshot never carries .venv (.gitignore)
        (clone / ".venv").symlink_to(venv.resolve())
        with (clone / ".git" / "info" / "exclude").open("a") as fh:
            fh.write(".venv\n")
    return clone
