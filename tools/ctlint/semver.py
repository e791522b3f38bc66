"""Semantic Versioning 2.0.0 parsing and precedence (what ct's version increment check compares)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


class SemverError(ValueError):
    """Not a semantic version."""


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    def _key(self) -> tuple:
        # A version without pre-release ranks above any pre-release of the same core (semver 11.3);
        # numeric identifiers rank below alphanumeric ones and compare as numbers (11.4).
        pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, not self.pre and 1 or 0, pre_key)

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        return self._key() >= other._key()


def parse(text: object) -> Version:
    """Parse ``1.2.3``, ``1.2.3-rc.1``, ``1.2.3+build`` (build metadata does not count for precedence)."""
    m = _SEMVER.match(str(text).strip())
    if not m:
        raise SemverError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])")
    pre = tuple(m.group("pre").split(".")) if m.group("pre") else ()
    return Version(int(m.group("major")), int(m.group("minor")), int(m.group("patch")), pre)
