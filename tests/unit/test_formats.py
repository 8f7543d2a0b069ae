"""Codecs: round trips, chunk-boundary independence, NULL vs '', malformed input locations."""

from __future__ import annotations

import gzip
import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import CSV, DYNAMODB_JSONL, JSONL, TSV, Column, RowBatch, Schema, TextFormat
from connectors.errors import BadDataError, ConfigError
from connectors.formats import (
    Gunzip,
    Gzip,
    RecordCounter,
    count_records,
    decoder_for,
    encoder_for,
    format_for_path,
    format_from_definition,
    parse_columns,
)

SCHEMA3 = Schema((Column("a"), Column("b"), Column("c")))
CUSTOM_ESCAPED = TextFormat(kind="custom", column_separator="|", record_separator="\n",
                            quote=None, escape_char="\\", null="\\N")

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
special = st.sampled_from(["", ",", '"', "\n", "\r\n", "\t", "\\", "\\N", "|", "é", "😀", " "])
value = st.one_of(st.none(), text, special, st.lists(special, max_size=4).map("".join))


def rows_strategy(width: int):
    return st.lists(st.tuples(*([value] * width)), max_size=25)


def decode_all(fmt: TextFormat, data: bytes, cuts: list[int] | None = None,
               schema: Schema | None = None, **kw):
    decoder = decoder_for(fmt, location="data.txt", schema=schema, **kw)
    bounds = sorted({0, len(data), *(c for c in (cuts or []) if 0 < c < len(data))})
    batches = []
    for a, b in itertools.pairwise(bounds):
        batches += decoder.feed(data[a:b])
    batches += decoder.finish()
    return [row for batch in batches for row in batch.rows], batches


def encode(fmt: TextFormat, rows, schema: Schema = SCHEMA3) -> bytes:
    enc = encoder_for(fmt)
    return enc.encode(RowBatch(schema, list(rows))) + enc.finish()


@pytest.mark.parametrize("fmt", [CSV, TSV, JSONL, DYNAMODB_JSONL, CUSTOM_ESCAPED],
                         ids=["csv", "tsv", "jsonl", "dynamodb", "custom"])
@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy(3), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_round_trip_any_chunking(fmt: TextFormat, rows, cuts) -> None:
    data = encode(fmt, rows)
    got, _ = decode_all(fmt, data, cuts, schema=SCHEMA3)
    assert got == [tuple(r) for r in rows]


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(value), max_size=20), cuts=st.lists(st.integers(0, 200), max_size=5))
def test_single_column_csv_keeps_null_and_empty_apart(rows, cuts) -> None:
    schema = Schema((Column("only"),))
    data = encode(CSV, rows, schema)
    got, _ = decode_all(CSV, data, cuts, schema=schema)
    assert got == [tuple(r) for r in rows]


@settings(max_examples=100, deadline=None)
@given(rows=rows_strategy(3), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_record_count_matches_decoded_rows(rows, cuts) -> None:
    data = encode(CSV, rows)
    counter = RecordCounter(CSV)
    bounds = sorted({0, len(data), *(c for c in cuts if 0 < c < len(data))})
    for a, b in itertools.pairwise(bounds):
        counter.feed(data[a:b])
    assert counter.records == len(rows)


def test_csv_null_is_unquoted_empty_and_empty_string_is_quoted() -> None:
    assert encode(CSV, [("1", None, "")]) == b'1,,""\n'
    got, _ = decode_all(CSV, b'1,,""\n2,"",\n')
    assert got == [("1", None, ""), ("2", "", None)]


def test_csv_quoted_newline_multibyte_and_header() -> None:
    data = 'id,text\n1,"line one\nline two"\n2,"😀 ""quoted"""\n'.encode()
    fmt = CSV.replace(header=True)
    for cut in range(1, len(data)):
        got, batches = decode_all(fmt, data, [cut])
        assert got == [("1", "line one\nline two"), ("2", '😀 "quoted"')]
        assert batches[0].schema.names == ("id", "text")


def test_batches_carry_first_line() -> None:
    data = b"".join(f"{i},x\n".encode() for i in range(25))
    _, batches = decode_all(CSV, data, batch_rows=10)
    assert [b.first_line for b in batches] == [1, 11, 21]
    assert [len(b) for b in batches] == [10, 10, 5]


def test_tsv_is_postgres_text_format() -> None:
    rows = [("a\tb", None, "back\\slash\nnl")]
    data = encode(TSV, rows)
    assert data == b"a\\tb\t\\N\tback\\\\slash\\nnl\n"
    got, _ = decode_all(TSV, b"\\101\\x42\\q\t\\N\t\n")
    assert got == [("ABq", None, "")]


def test_jsonl_and_dynamodb_json_values() -> None:
    got, batches = decode_all(JSONL, b'{"id": 1, "v": 1.25, "s": null}\n{"id": 2, "s": "x"}\n')
    assert got == [(1, Decimal("1.25"), None), (2, None, "x")]
    assert batches[0].schema.names == ("id", "v", "s")
    item = (b'{"Item": {"id": {"N": "7"}, "n": {"N": "1.5"}, "ok": {"BOOL": true}, '
            b'"tags": {"SS": ["b", "a"]}, "m": {"M": {"k": {"S": "v"}}}, "b": {"B": "aGk="}}}\n')
    got, _ = decode_all(DYNAMODB_JSONL, item)
    assert got == [(7, Decimal("1.5"), True, {"a", "b"}, {"k": "v"}, b"hi")]
    # sets stay sets on the way back, and read back as sets
    names = Schema(tuple(Column(n) for n in ("id", "n", "ok", "tags", "m", "b")))
    out = encode(DYNAMODB_JSONL, got, names)
    assert b'"tags":{"SS":["a","b"]}' in out and b'"b":{"B":"aGk="}' in out
    assert decode_all(DYNAMODB_JSONL, out)[0] == got
    # as text (CSV), a set is a sorted JSON list
    assert encode(CSV, [({"b", "a"}, {3, 1})], Schema((Column("s"), Column("n")))) == \
        b'"[""a"",""b""]","[1,3]"\n'
    with pytest.raises(BadDataError, match="tags"):
        encode(DYNAMODB_JSONL, [({1, "x"},)], Schema((Column("tags"),)))


def test_regex_format_reads_groups_and_refuses_writing() -> None:
    fmt = TextFormat(kind="regex", column_separator="", quote=None,
                     regex=r"(\S+) (\d+)(?: (\w+))?")
    got, _ = decode_all(fmt, b"alpha 1 x\nbeta 22\n")
    assert got == [("alpha", "1", "x"), ("beta", "22", None)]
    with pytest.raises(ConfigError):
        encoder_for(fmt)
    with pytest.raises(BadDataError) as err:
        decode_all(fmt, b"alpha 1\nnot-a-match\n")
    assert err.value.line == 2


# -- malformed input: every error names file, line, column and shows the record ---------------

def test_unbalanced_quote_names_line_and_column() -> None:
    with pytest.raises(BadDataError) as err:
        decode_all(CSV, b'a,b\nc,d\ne,"f\ng,h\n', [7, 11])
    e = err.value
    assert (e.location, e.line, e.column) == ("data.txt", 3, 3)
    assert "unbalanced quote" in str(e) and "data.txt, line 3, column 3" in str(e)


def test_wrong_column_count_names_line() -> None:
    with pytest.raises(BadDataError) as err:
        decode_all(CSV, b"1,2,3\n4,5,6\n7,8\n")
    assert err.value.line == 3
    assert "expected 3 fields, found 2" in str(err.value)
    assert "'7,8'" in str(err.value)


@pytest.mark.parametrize("cut", [0, 9, 10, 11])
def test_invalid_utf8_names_line_column_and_byte(cut: int) -> None:
    data = b"ok,1\nbad,\xc3(x\n"  # \xc3 starts a 2-byte character that never completes
    with pytest.raises(BadDataError) as err:
        decode_all(CSV, data, [cut])
    assert (err.value.line, err.value.column) == (2, "col2")  # the field: no names declared
    assert "invalid utf-8 at byte 5 of the record" in str(err.value)


def test_strict_csv_error_and_json_error_locations() -> None:
    with pytest.raises(BadDataError) as err:
        decode_all(CSV, b'1,2\n"x"y,3\n')
    assert err.value.line == 2
    with pytest.raises(BadDataError) as err:
        decode_all(JSONL, b'{"a": 1}\n{"a": 2,}\n')
    assert (err.value.line, err.value.column) == (2, 9)


def test_long_snippets_are_truncated() -> None:
    record = b"x" * 500 + b"\n"
    with pytest.raises(BadDataError) as err:
        decode_all(CSV, b"a,b\n" + record)
    assert len(str(err.value)) < 200 and "..." in str(err.value)


def test_bad_rows_go_to_the_handler_and_decoding_goes_on() -> None:
    rejected: list[tuple[int | None, bytes]] = []
    data = b"1,a\n2\n3,c\n4,\xff\n5,e\n"
    got, _ = decode_all(CSV, data, [5, 13],
                        on_bad=lambda err, raw: rejected.append((err.line, raw)))
    assert got == [("1", "a"), ("3", "c"), ("5", "e")]
    assert rejected == [(2, b"2\n"), (4, b"4,\xff\n")]


# -- gzip, record counting, format helpers ------------------------------------------------------

def test_gzip_streams_both_ways_and_reads_concatenated_members() -> None:
    payload = b"".join(f"{i},row\n".encode() for i in range(2000))
    z = Gzip()
    packed = z.feed(payload[:5000]) + z.feed(payload[5000:]) + z.finish()
    assert gzip.decompress(packed) == payload
    two = packed + gzip.compress(b"tail\n")
    g = Gunzip(location="x.gz")
    out = b"".join(g.feed(two[i:i + 777]) for i in range(0, len(two), 777)) + g.finish()
    assert out == payload + b"tail\n"
    g = Gunzip(location="x.gz")
    g.feed(packed[: len(packed) // 2])
    with pytest.raises(BadDataError, match="truncated"):
        g.finish()


def test_count_records_handles_quoted_newlines_header_and_no_final_newline() -> None:
    assert count_records(b'a,"x\ny"\nb,c', CSV) == 2
    assert count_records(b"h1,h2\n1,2\n", CSV.replace(header=True)) == 1
    assert count_records(b'{"a":1}\n{"a":2}\n', JSONL) == 2


def test_format_helpers() -> None:
    assert format_for_path("s3://b/x/data.tsv.gz") == TSV
    assert format_for_path("/tmp/out.bin") is None
    assert parse_columns(["id INT", "name", "amount DECIMAL(12,2)"]) == (
        Column("id", "integer"), Column("name", "text"), Column("amount", "numeric"))
    fmt = format_from_definition("Custom", {"columnSeparator": ";", "column": ["a", "b"]})
    assert (fmt.kind, fmt.column_separator) == ("custom", ";")
    with pytest.raises(ConfigError, match="unknown type"):
        parse_columns(["x WIBBLE"])
    with pytest.raises(ConfigError, match="columnSeparator"):
        format_from_definition("Custom", {})


def test_tsv_octal_and_hex_escapes_are_bytes_as_in_postgres() -> None:
    """``\\xc3\\xa9`` is é (PostgreSQL reads the bytes so, and the MySQL sink passes them on
    as bytes), not the two characters U+00C3 U+00A9; escaped bytes that make no UTF-8 are
    refused, naming the field."""
    got, _ = decode_all(TSV, b"1\t\\xc3\\xa9\\303\\251\\x41\\101\\x7f\n")
    assert got == [("1", "\u00e9\u00e9AA\x7f")]
    with pytest.raises(BadDataError) as err:
        decode_all(TSV, b"1\tok\n2\ta\\xffb\n")
    assert (err.value.line, err.value.column) == (2, "col2")
