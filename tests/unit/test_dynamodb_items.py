"""DynamoDB item <-> row conversion (connectors.formats.dynamodb_items)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import Column
from connectors.formats import (
    ITEM_SCHEMA,
    ConversionError,
    coerce_key,
    dict_to_item,
    from_attribute,
    item_json,
    item_key,
    item_plain_json,
    item_to_dict,
    item_to_row,
    parse_number,
    row_to_item,
    to_attribute,
)

# -- strategies -------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=8)
#: Finite decimals within DynamoDB's 38 digits, built cheaply from a coefficient and an exponent.
decimals = st.builds(lambda digits, exponent: Decimal(digits).scaleb(exponent),
                     st.integers(-(10**37), 10**37), st.integers(-60, 60))
scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=20), st.integers(-(10**37), 10**37), decimals,
    st.binary(max_size=20),
)
sets = st.one_of(
    st.sets(st.text(max_size=6), min_size=1, max_size=4),
    st.sets(st.integers(-1000, 1000), min_size=1, max_size=4),
    st.sets(st.binary(max_size=6), min_size=1, max_size=4),
)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(names, inner, max_size=4)),
    max_leaves=12,
)
python_items = st.dictionaries(names, values, min_size=1, max_size=6)


def _number_texts() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(-(10**30), 10**30).map(str), decimals.map(str))


wire_values = st.recursive(
    st.one_of(
        st.text(max_size=10).map(lambda s: {"S": s}),
        _number_texts().map(lambda s: {"N": s}),
        st.binary(max_size=10).map(lambda b: {"B": base64.b64encode(b).decode()}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.sets(st.text(max_size=5), min_size=1, max_size=4).map(lambda s: {"SS": sorted(s)}),
        st.sets(st.integers(-99, 99), min_size=1, max_size=4).map(
            lambda s: {"NS": sorted(str(n) for n in s)}),
        st.sets(st.binary(min_size=1, max_size=5), min_size=1, max_size=3).map(
            lambda s: {"BS": sorted(base64.b64encode(b).decode() for b in s)}),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(lambda v: {"L": v}),
                            st.dictionaries(names, inner, max_size=3).map(lambda v: {"M": v})),
    max_leaves=10,
)
wire_items = st.dictionaries(names, wire_values, min_size=1, max_size=6)


def _canonical(av: Any) -> Any:
    """A wire value with set members in a fixed order (sets have no order)."""
    if isinstance(av, dict) and len(av) == 1:
        ((kind, payload),) = av.items()
        if kind in ("SS", "NS", "BS"):
            return {kind: sorted(payload)}
        if kind == "L":
            return {"L": [_canonical(v) for v in payload]}
        if kind == "M":
            return {"M": {k: _canonical(v) for k, v in payload.items()}}
    return av


# -- round trips ------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(python_items)
def test_python_item_round_trips_through_wire_json(item: dict[str, Any]) -> None:
    wire = dict_to_item(item)
    over_the_wire = json.loads(json.dumps(wire))  # the wire form is plain JSON
    assert item_to_dict(over_the_wire) == item


@settings(max_examples=100, deadline=None)
@given(wire_items)
def test_wire_item_round_trips_through_python(item: dict[str, Any]) -> None:
    assert _canonical(dict_to_item(item_to_dict(item))) == _canonical(item)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_keep_their_value(value: float) -> None:
    back = from_attribute(to_attribute(value))
    assert float(back) == value


def test_numbers_keep_full_precision() -> None:
    text = "12345678901234567890.123456789012345678"
    assert parse_number(text) == Decimal(text)
    assert to_attribute(parse_number(text)) == {"N": text}
    assert parse_number("-000123") == -123 and isinstance(parse_number("7"), int)
    assert isinstance(parse_number("7.5"), Decimal)


def test_row_columns_map_to_attributes_and_none_is_left_out() -> None:
    row = ("a", 3, None, True, b"\x00\xff", datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
           {"k": [1, "x"]})
    names_ = ("s", "n", "missing", "flag", "bin", "ts", "doc")
    assert row_to_item(names_, row) == {
        "s": {"S": "a"}, "n": {"N": "3"}, "flag": {"BOOL": True}, "bin": {"B": "AP8="},
        "ts": {"S": "2024-05-01T12:00:00+00:00"},
        "doc": {"M": {"k": {"L": [{"N": "1"}, {"S": "x"}]}}},
    }


def test_item_column_rows_carry_whole_items_with_nulls() -> None:
    item = {"id": 1, "gone": None, "tags": {"a", "b"}}
    wire = row_to_item(ITEM_SCHEMA.names, (item,))
    assert wire == {"id": {"N": "1"}, "gone": {"NULL": True}, "tags": {"SS": ["a", "b"]}}
    assert item_to_dict(wire) == item


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


@settings(max_examples=100, deadline=None)
@given(python_items)
def test_plain_json_lines_keep_values_exact(item: dict[str, Any]) -> None:
    text = item_plain_json(dict_to_item(item))
    assert json.loads(text, parse_float=Decimal) == _plain(item)


def test_plain_json_lines_project_declared_names() -> None:
    wire = {"id": {"N": "1"}, "big": {"N": "0.1000000000000000000001"}, "extra": {"S": "x"}}
    assert item_plain_json(wire, ("big", "id", "absent")) == \
        '{"big":0.1000000000000000000001,"id":1,"absent":null}'


def test_item_json_is_a_compact_export_line() -> None:
    line = item_json({"id": {"N": "1"}, "é": {"S": "ü"}})
    assert line == '{"Item":{"id":{"N":"1"},"é":{"S":"ü"}}}'


# -- typed columns ----------------------------------------------------------------------------

ITEM = {
    "id": {"N": "42"}, "price": {"N": "19.990"}, "ratio": {"N": "0.25"},
    "ok": {"BOOL": False}, "flag_text": {"S": "TRUE"}, "when": {"S": "2024-01-02T03:04:05Z"},
    "epoch": {"N": "86400"}, "day": {"S": "2024-03-04"}, "naive": {"S": "2024-03-04T05:06:07"},
    "raw": {"B": "AAEC"}, "doc": {"M": {"a": {"SS": ["x"]}}}, "nothing": {"NULL": True},
}


def test_item_to_row_converts_by_column_type() -> None:
    columns = (
        Column("id", "bigint"), Column("price", "numeric"), Column("ratio", "double"),
        Column("ok", "boolean"), Column("flag_text", "boolean"), Column("when", "timestamptz"),
        Column("epoch", "timestamptz"), Column("day", "date"), Column("naive", "timestamp"),
        Column("raw", "binary"), Column("doc", "json"), Column("nothing", "text"),
        Column("absent", "integer"), Column("id", "text"), Column("doc", "text"),
    )
    assert item_to_row(ITEM, columns) == (
        42, Decimal("19.990"), 0.25, False, True, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(1970, 1, 2, tzinfo=UTC), date(2024, 3, 4), datetime(2024, 3, 4, 5, 6, 7),
        b"\x00\x01\x02", {"a": {"x"}}, None, None, "42", '{"a": ["x"]}',
    )


@pytest.mark.parametrize(("column", "attribute"), [
    (Column("price", "integer"), "price"),
    (Column("ok", "bigint"), "ok"),
    (Column("raw", "boolean"), "raw"),
    (Column("day", "binary"), "day"),
    (Column("flag_text", "timestamptz"), "flag_text"),
])
def test_item_to_row_names_the_column_on_a_mismatch(column: Column, attribute: str) -> None:
    with pytest.raises(ConversionError) as info:
        item_to_row(ITEM, (column,))
    assert info.value.path == attribute


# -- bad values -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "reason"), [
    (float("nan"), "finite"),
    (Decimal("Infinity"), "finite"),
    (set(), "empty sets"),
    ({1, "a"}, "only strings"),
    (object(), "cannot store"),
])
def test_unstorable_values_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(ConversionError, match=reason):
        to_attribute(value)


def test_conversion_errors_name_the_nested_attribute() -> None:
    with pytest.raises(ConversionError) as info:
        dict_to_item({"outer": {"inner": [1, float("inf")]}})
    assert info.value.path == "outer.inner[1]"


@pytest.mark.parametrize("bad", [
    {"S": "a", "N": "1"}, {"X": "1"}, {"N": "abc"}, {"N": 5}, {"B": "***"}, {"BOOL": "yes"},
    {"L": "notalist"}, "plain",
])
def test_malformed_wire_values_are_refused(bad: Any) -> None:
    with pytest.raises(ConversionError):
        item_to_dict({"a": bad})


def test_item_key_treats_equal_numbers_as_one_key() -> None:
    keys = {item_key({"id": {"N": text}, "sk": {"S": "x"}}, ("id", "sk"))
            for text in ("10", "10.0", "1E1", "10.00")}
    assert keys == {(("N", "10"), ("S", "x"))}
    assert item_key({"id": {"N": "1.50"}}, ("id",)) == item_key({"id": {"N": "1.5"}}, ("id",))


def test_item_key_requires_every_key_attribute() -> None:
    with pytest.raises(ConversionError) as info:
        item_key({"id": {"N": "1"}}, ("id", "sk"))
    assert info.value.path == "sk"
    with pytest.raises(ConversionError, match="S, N or B"):
        item_key({"id": {"BOOL": True}}, ("id",))


def test_coerce_key_converts_only_key_text_that_fits() -> None:
    types = {"id": "N", "sk": "S"}
    item = {"id": {"S": " 42 "}, "sk": {"N": "7"}, "other": {"S": "9"}}
    assert coerce_key(item, types) == {"id": {"N": "42"}, "sk": {"S": "7"}, "other": {"S": "9"}}
    assert item["id"] == {"S": " 42 "}  # the input is not changed
    unchanged = {"id": {"S": "forty-two"}, "sk": {"S": "a"}}
    assert coerce_key(unchanged, types) is unchanged
    assert coerce_key({"id": {"BOOL": True}}, types) == {"id": {"BOOL": True}}
