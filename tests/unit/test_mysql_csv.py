"""The NULL-marking pass that lets LOAD DATA read headrace CSV (no server needed)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import CSV, TSV, Column, RowBatch, Schema
from connectors.errors import BadDataError
from connectors.formats import encoder_for
from connectors.mysql import NullMarker, convertible, marked_format


def load_data_reading(data: bytes, sep: str = ",") -> list[tuple[str | None, ...]]:
    """How ``LOAD DATA ... OPTIONALLY ENCLOSED BY '"' ESCAPED BY ''`` reads ``data``: an
    unquoted NULL is NULL, anything else (quoted or not, empty included) is text."""
    rows: list[tuple[str | None, ...]] = []
    fields: list[str | None] = []
    text, i = data.decode(), 0
    while i < len(text):
        if text[i] == '"':
            j, value = i + 1, []
            while True:
                if text[j] == '"' and text[j + 1:j + 2] == '"':
                    value.append('"')
                    j += 2
                elif text[j] == '"':
                    break
                else:
                    value.append(text[j])
                    j += 1
            fields.append("".join(value))
            i = j + 1
        else:
            j = i
            while j < len(text) and text[j] not in (sep, "\n"):
                j += 1
            raw = text[i:j]
            fields.append(None if raw == "NULL" else raw)
            i = j
        if i < len(text) and text[i] == sep:
            i += 1
            if i == len(text) or text[i] == "\n":
                fields.append("")  # a trailing separator: an empty last field
        if i < len(text) and text[i] == "\n":
            rows.append(tuple(fields))
            fields = []
            i += 1
    if fields:
        rows.append(tuple(fields))
    return rows


def mark(data: bytes, cuts: list[int], fmt=CSV) -> bytes:
    marker = NullMarker(fmt, location="data.csv")
    bounds = sorted({0, len(data), *(c for c in cuts if 0 < c < len(data))})
    out = b"".join(marker.feed(data[a:b]) for a, b in itertools.pairwise(bounds))
    return out + marker.finish()


TEXT = st.one_of(st.none(), st.sampled_from(["", "NULL", "null", '"', '""', ",", ",,", "\n",
                                             ",\n", "a,NULL", "x"]),
                 st.text(alphabet=st.sampled_from('ab,"\nN UL'), max_size=8))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=12),
       cuts=st.lists(st.integers(0, 300), max_size=6))
def test_load_data_reads_back_every_null_and_string(rows, cuts) -> None:
    schema = Schema(tuple(Column(f"c{i}") for i in range(3)))
    data = encoder_for(CSV).encode(RowBatch(schema, rows))
    assert load_data_reading(mark(data, cuts)) == [tuple(r) for r in rows]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(TEXT, min_size=1, max_size=12),
       cuts=st.lists(st.integers(0, 100), max_size=6))
def test_one_column_nulls_survive_any_cut(values, cuts) -> None:
    """A NULL in a one-column CSV is an empty record, which may open a run."""
    schema = Schema((Column("c0"),))
    data = encoder_for(CSV).encode(RowBatch(schema, [(v,) for v in values]))
    assert load_data_reading(mark(data, cuts)) == [(v,) for v in values]


def test_a_run_that_opens_with_an_empty_record_is_marked() -> None:
    assert mark(b"a\n\nb\n", [2]) == b"a\nNULL\nb\n"


def test_examples_and_untouched_bytes() -> None:
    data = b'1,,"",NULL,"NULL"\n,"a,,b",\n'
    assert mark(data, [3, 9]) == b'1,NULL,"",\"NULL\","NULL"\nNULL,"a,,b",NULL\n'
    plain = b'1,"x, y",2.50\n2,"q""uote",3\n'
    assert mark(plain, [5]) == plain  # nothing empty, no NULL word: bytes pass as they are
    assert mark(b"7,", []) == b"7,NULL\n"  # a last record without its newline


def test_only_headrace_csv_is_marked() -> None:
    assert convertible(CSV) and not convertible(TSV)
    assert not convertible(CSV.replace(null="NULL")) and not convertible(CSV.replace(quote="'"))
    assert marked_format(CSV).null == "NULL"
    with pytest.raises(ValueError):
        NullMarker(TSV, location="x")


def test_an_unclosed_quote_is_named() -> None:
    marker = NullMarker(CSV, location="in.csv")
    marker.feed(b'1,"open\n2,x\n')
    with pytest.raises(BadDataError) as err:
        marker.finish()
    assert (err.value.location, err.value.line) == ("in.csv", 1)
