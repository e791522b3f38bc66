"""What looks like a secret: key names, well-known token shapes, credentials in URLs and config lines."""

from __future__ import annotations

import re

SECRET_NAME = re.compile(r"(?i)(pass(word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|credential|"
                         r"auth[-_]?key|access[-_]?key|requirepass|masterauth)")
# Names that talk about a secret without holding one.
NOT_SECRET_NAME = re.compile(r"(?i)(_file|_path|_dir|_name|_ref|_key_id|_user(name)?|_len(gth)?|_ttl|_expir\w*|"
                             r"_enabled|_header|_secret_name|_max_age|_encryption|_policy|_method|_type|_min|_max)$")
# (what, pattern, substrings of which a match holds at least one). The substrings are checked first: a plain
# `in` costs little, while each pattern search walks the whole value, and a rendered ConfigMap can hold large
# config files and dashboards.
VALUE_PATTERNS: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"), ("PRIVATE KEY-----",)),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), ("AKIA", "ASIA")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), ("eyJ",)),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"), ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), ("xox",)),
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@$]+:(?![$%{<*])[^/\s@$]+@"), ("://",)),
]
# Every CONFIG_LINE key holds one of these, in any case (a cheap test before the multi-line search).
CONFIG_LINE_WORDS = ("pass", "secret", "token", "masterauth")
CONFIG_LINE = re.compile(
    r"(?im)^[ \t]*(?:export[ \t]+|sentinel[ \t]+)?([\w.-]*(?:pass(?:word|wd)?|secret|token|requirepass|masterauth|auth-pass)[\w.-]*)"
    r"(?:[ \t]+[\w.-]+)?[ \t]*(?:[:=]|[ \t])[ \t]*(\S.*?)[ \t]*$"
)
_PLACEHOLDER = re.compile(r"^(|null|none|nil|true|false|~|-+|\*+|x+|<.*>|\$.*|%.*|\{\{.*|/.*|\(.*|env:.*|file:.*)$",
                          re.IGNORECASE)


# A literal in a config file: a quoted string, or one bare word (not code such as os.environ.get(...)).
_LITERAL = re.compile(r"""^(?:"[^"$]*"|'[^'$]*'|[^\s()\[\]{}$`"',;]+)$""")


def is_placeholder(value: str) -> bool:
    """Empty values, booleans, paths, and variable references (``$VAR``, ``${VAR}``, ``%s``, ``{{ }}``)."""
    return bool(_PLACEHOLDER.match(value.strip().strip("'\"").strip()))


def secret_in_value(value: str, *, prefilter: bool = True) -> str | None:
    """Why ``value`` looks like it holds a secret, or None. ``prefilter=False`` runs every pattern without its
    substring test first (the same answer, slower: tests/lint/test_secret_patterns.py compares the two)."""
    for what, pattern, needs in VALUE_PATTERNS:
        if (not prefilter or any(n in value for n in needs)) and pattern.search(value):
            return f"contains {what}"
    return None


def secret_for_name(name: str, value: str) -> str | None:
    """Why a ``name: value`` pair (env var, ConfigMap key) looks like a literal secret, or None."""
    found = secret_in_value(value)
    if found:
        return found
    if "\n" not in value and SECRET_NAME.search(name) and not NOT_SECRET_NAME.search(name) \
            and not is_placeholder(value):
        return f"{name!r} is named like a secret and holds a literal value"
    return None


def secret_in_file(text: str, *, prefilter: bool = True) -> str | None:
    """Why the content of a config file looks like it holds a literal secret, or None (``prefilter`` as for
    :func:`secret_in_value`)."""
    found = secret_in_value(text, prefilter=prefilter)
    if found:
        return found
    # casefold, as the pattern's IGNORECASE folds ("ſ" is an "s" to it)
    if prefilter and not any(word in text.casefold() for word in CONFIG_LINE_WORDS):
        return None
    for match in CONFIG_LINE.finditer(text):
        key, value = match.group(1), match.group(2)
        if value.startswith("#") or NOT_SECRET_NAME.search(key) or is_placeholder(value) \
                or not _LITERAL.match(value):
            continue
        return f"sets {key!r} to a literal value"
    return None
