"""Kubernetes resource quantities (``500m``, ``1.5Gi``, ``1e3``), parsed the way the API server does.

The grammar of k8s.io/apimachinery's ``resource.Quantity``::

    quantity        ::= signedNumber suffix
    signedNumber    ::= [ "+" | "-" ] number
    number          ::= digits | digits "." [ digits ] | "." digits
    suffix          ::= binarySI | decimalSI | decimalExponent
    binarySI        ::= Ki | Mi | Gi | Ti | Pi | Ei                   (powers of 1024)
    decimalSI       ::= n | u | m | "" | k | M | G | T | P | E       (powers of 1000)
    decimalExponent ::= ( "e" | "E" ) [ "+" | "-" ] digits

Suffixes are case-sensitive (``1K``, ``1KI`` and ``512MB`` are refused); no spaces. The API server's
parser only accepts a whole-number exponent, so ``1e1.5`` is refused too. Negative quantities are
valid quantities; resource requests and limits refuse them separately (see :func:`parse_quantity`'s
callers). ``QUANTITY_PATTERN`` is the same grammar as a regular expression for a JSON schema
``pattern`` (applied to strings; YAML numbers such as ``cpu: 2`` are quantities too), and
``NON_NEGATIVE_QUANTITY_PATTERN`` the one for requests, limits, storage and sizeLimit.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, DecimalException

QUANTITY_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
# The same without a minus sign: what requests, limits, storage and sizeLimit accept ("-0" aside).
NON_NEGATIVE_QUANTITY_PATTERN = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"

_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)", re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SI = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
# Suffixes people write by habit, and what Kubernetes spells instead.
_HINTS = {"K": "k or Ki", "KB": "k or Ki", "kB": "k or Ki", "kb": "k or Ki", "MB": "M or Mi", "mb": "M or Mi",
          "GB": "G or Gi", "gb": "G or Gi", "TB": "T or Ti", "KI": "Ki", "ki": "Ki", "MI": "Mi", "mi": "Mi",
          "GI": "Gi", "gi": "Gi", "TI": "Ti", "ti": "Ti", "mm": "m", "Mm": "m", "g": "G or Gi"}
_CONTEXT = Context(prec=200, Emax=10**8, Emin=-(10**8))
SUFFIXES = "n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e3"


def parse_quantity(value: str | float) -> Decimal:
    """The exact value of a quantity (``"1.5Gi"`` -> 1610612736, ``"100m"`` -> 0.1).

    Raises ValueError with a one-line reason for anything the API server would refuse; YAML
    numbers (``cpu: 2``, ``cpu: 0.5``) are read like the strings they were written as.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        # One exception type for every bad input: callers report it as a finding or a schema error.
        raise ValueError(f"{value!r} is not a quantity (expected a string such as 500m or 1Gi, or a number)")  # noqa: TRY004
    text = value if isinstance(value, str) else repr(value)
    if text == "":
        raise ValueError("empty quantity (write a number such as 500m or 1Gi)")
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a quantity: it must start with a number (such as 500m or 1Gi)")
    number, suffix = match.groups()
    try:
        return _scale(Decimal(number), suffix, text)
    except DecimalException:
        raise ValueError(f"{text!r} is out of range") from None


def _scale(number: Decimal, suffix: str, text: str) -> Decimal:
    if suffix in _DECIMAL_SI:
        return _CONTEXT.multiply(number, _CONTEXT.power(10, _DECIMAL_SI[suffix]))
    if suffix in _BINARY_SI:
        return _CONTEXT.multiply(number, Decimal(2 ** _BINARY_SI[suffix]))
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent is not None:
        return _CONTEXT.multiply(number, _CONTEXT.power(10, int(exponent.group(1))))
    if suffix.startswith("."):
        return _refuse(f"{text!r} is not a quantity: more than one decimal point")
    hint = _HINTS.get(suffix)
    advice = f"did you mean {hint}?" if hint else f"use one of {SUFFIXES}"
    return _refuse(f"{text!r} is not a quantity: unknown suffix {suffix!r} ({advice})")


def _refuse(message: str) -> Decimal:
    raise ValueError(message)


def is_quantity(value: str | float) -> bool:
    """True when :func:`parse_quantity` accepts ``value``."""
    try:
        parse_quantity(value)
    except ValueError:
        return False
    return True
