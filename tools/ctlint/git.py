"""The git questions ct asks: the merge base with the target branch, and which charts changed since."""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitError(Exception):
    """git is missing or the directory is not a repository."""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}: install git") from exc


def toplevel(root: Path) -> Path:
    proc = _git(root, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise GitError(f"{root} is not a git repository: ct compares charts against a git branch")
    return Path(proc.stdout.strip())


def merge_base(root: Path, remote: str, target_branch: str) -> str | None:
    """Merge base of HEAD with ``<remote>/<target>`` (as ct does), else with the local ``<target>``.

    None when there is nothing to compare with: no such branch, no common history, or HEAD is the
    merge base while checked out on the target branch itself (e.g. a single-branch clone of main).
    """
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head.returncode != 0:
        return None
    for ref in (f"refs/remotes/{remote}/{target_branch}", f"refs/heads/{target_branch}"):
        if _git(root, "rev-parse", "--verify", "--quiet", ref).returncode != 0:
            continue
        proc = _git(root, "merge-base", ref, "HEAD")
        if proc.returncode != 0:
            return None
        base = proc.stdout.strip()
        on_target = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD").stdout.strip() == target_branch
        return None if (on_target and base == head.stdout.strip()) else base
    return None


def changed_files(root: Path, base: str, paths: list[str]) -> list[str]:
    """Files changed between ``base`` and the working tree (committed or not, plus untracked) under paths."""
    diff = _git(root, "diff", "--find-renames", "--name-only", base, "--", *paths)
    if diff.returncode != 0:
        raise GitError(f"git diff against {base[:12]} failed: {diff.stderr.strip()}")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--", *paths)
    return sorted({*diff.stdout.split("\n"), *untracked.stdout.split("\n")} - {""})


def show(root: Path, rev: str, path: str) -> str | None:
    """Content of ``path`` at ``rev``, or None when it did not exist there."""
    proc = _git(root, "show", f"{rev}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def short(root: Path, rev: str) -> str:
    proc = _git(root, "rev-parse", "--short", rev)
    return proc.stdout.strip() if proc.returncode == 0 else rev[:12]
