"""tools/quantity.py: the Kubernetes resource.Quantity grammar, as a parser and as a JSON schema pattern."""

from __future__ import annotations

import re
from decimal import Decimal

import jsonschema
import pytest

from tools.quantity import NON_NEGATIVE_QUANTITY_PATTERN, QUANTITY_PATTERN, is_quantity, parse_quantity

VALID: list[tuple[str | int | float, Decimal]] = [
    ("0", Decimal(0)),
    ("0.5", Decimal("0.5")),
    (".5", Decimal("0.5")),
    ("1.", Decimal(1)),
    ("1e3", Decimal(1000)),
    ("1E-3", Decimal("0.001")),
    ("1e+3", Decimal(1000)),
    ("+1", Decimal(1)),
    ("-1", Decimal(-1)),
    ("100m", Decimal("0.1")),
    ("250n", Decimal("0.00000025")),
    ("3u", Decimal("0.000003")),
    ("2k", Decimal(2000)),
    ("5M", Decimal(5_000_000)),
    ("1G", Decimal(10**9)),
    ("1T", Decimal(10**12)),
    ("1P", Decimal(10**15)),
    ("1E", Decimal(10**18)),
    ("1Ki", Decimal(1024)),
    ("1.5Gi", Decimal(1610612736)),
    ("512Mi", Decimal(512 * 2**20)),
    ("1Ti", Decimal(2**40)),
    ("1Pi", Decimal(2**50)),
    ("2Ei", Decimal(2 * 2**60)),
    ("0.5Gi", Decimal(2**29)),
    (2, Decimal(2)),
    (0.25, Decimal("0.25")),
    (-3, Decimal(-3)),
]

INVALID: list[str | int | float | bool | None] = [
    "", "1.5.0", "500mm", "512MB", "1KI", "1K", "1ki", "1Mb", "1 Gi", " 1", "1Gi ", "Gi", ".", "+", "-",
    "e3", "1e", "1e1.5", "1Gie3", "0x10", "1,5", "one", "١", True, None, float("inf"),
]


@pytest.mark.parametrize(("text", "value"), VALID, ids=lambda v: repr(v))
def test_valid_quantity_parses_to_its_exact_value(text: str | float, value: Decimal) -> None:
    assert parse_quantity(text) == value
    if isinstance(text, str):
        assert re.fullmatch(QUANTITY_PATTERN, text)
        assert bool(re.fullmatch(NON_NEGATIVE_QUANTITY_PATTERN, text)) == (value >= 0)


@pytest.mark.parametrize("text", INVALID, ids=lambda v: repr(v))
def test_invalid_quantity_raises_value_error_and_fails_the_pattern(text: object) -> None:
    with pytest.raises(ValueError, match=r"quantity"):
        parse_quantity(text)  # type: ignore[arg-type]
    assert not is_quantity(text)  # type: ignore[arg-type]
    if isinstance(text, str):
        assert not re.fullmatch(QUANTITY_PATTERN, text)
        assert not re.fullmatch(NON_NEGATIVE_QUANTITY_PATTERN, text)


def test_error_messages_name_the_value_and_suggest_the_kubernetes_spelling() -> None:
    for text, advice in (("512MB", "did you mean M or Mi?"), ("500mm", "did you mean m?"), ("1KI", "did you mean Ki?"),
                         ("1.5.0", "more than one decimal point"), ("", "empty quantity")):
        with pytest.raises(ValueError) as info:
            parse_quantity(text)
        assert advice in str(info.value) and "\n" not in str(info.value)
        assert text == "" or repr(text) in str(info.value)


def test_pattern_works_as_a_json_schema_pattern() -> None:
    schema = {"type": "string", "pattern": QUANTITY_PATTERN}
    jsonschema.validate("1.5Gi", schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("512MB", schema)


def test_huge_exponent_is_refused_as_out_of_range_not_a_crash() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_quantity("1e999999999999")
