"""The pass that makes LOAD DATA read headrace TSV (PostgreSQL's text format) as PostgreSQL
would (no server needed): both readings are modelled here from the two manuals."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import TSV, Column, RowBatch, Schema
from connectors.formats import encoder_for
from connectors.mysql import EscapeTranslator

_PG = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.S)
_PG_NAMED = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_MY_NAMED = {0x30: b"\x00", 0x62: b"\b", 0x6E: b"\n", 0x72: b"\r", 0x74: b"\t", 0x5A: b"\x1a"}


def postgres_reading(data: bytes) -> list[list[bytes | None]]:
    """COPY FROM (FORMAT text): split on raw tabs and newlines, then undo the escapes."""
    def field(raw: bytes) -> bytes | None:
        if raw == b"\\N":
            return None

        def one(m: re.Match[bytes]) -> bytes:
            octal, hexa, other = m.groups()
            if octal is not None:
                return bytes((int(octal, 8) & 0xFF,))
            if hexa is not None:
                return bytes((int(hexa, 16),))
            return _PG_NAMED.get(other, other)
        return _PG.sub(one, raw)

    rows = []
    for line in _split(data, 0x0A)[:-1]:
        rows.append([field(f) for f in _split(line, 0x09)])
    return rows


def _split(data: bytes, sep: int) -> list[bytes]:
    """Split on ``sep`` bytes that no backslash escapes."""
    parts, start, i = [], 0, 0
    while i < len(data):
        if data[i] == 0x5C:
            i += 2
            continue
        if data[i] == sep:
            parts.append(data[start:i])
            start = i + 1
        i += 1
    parts.append(data[start:])
    return parts


def load_data_reading(data: bytes) -> list[list[bytes | None]]:
    """LOAD DATA ... FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'."""
    def field(raw: bytes) -> bytes | None:
        if raw == b"\\N":
            return None
        out, i = bytearray(), 0
        while i < len(raw):
            if raw[i] == 0x5C and i + 1 < len(raw):
                nxt = raw[i + 1]
                out += _MY_NAMED.get(nxt, bytes((nxt,)))
                i += 2
            else:
                out.append(raw[i])
                i += 1
        return bytes(out)

    return [[field(f) for f in _split(line, 0x09)] for line in _split(data, 0x0A)[:-1]]


def translated(data: bytes, cuts: list[int]) -> bytes:
    t = EscapeTranslator("\t\n")
    out, last = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        out.append(t.feed(data[last:cut]))
        last = cut
    out.append(t.feed(data[last:]))
    out.append(t.finish())
    return b"".join(out)


def test_the_reported_bytes_and_every_sequence_the_two_read_differently() -> None:
    data = b"a\\vb\\fc\t\\Z\\101\\x41\\x\\0\\7\n\\N\tN\\N\\\\f\n"
    assert load_data_reading(data) != postgres_reading(data)  # the model sees the defect
    out = translated(data, [])
    assert out == b"a\x0bb\x0cc\tZAAx\\0\x07\n\\N\tN\\N\\\\f\n"
    assert load_data_reading(out) == postgres_reading(data)


def test_a_sequence_cut_by_a_chunk_boundary_is_held_back() -> None:
    data = b"\\101\\x4f\\v\\\\\n"
    for cut in range(len(data) + 1):
        assert translated(data, [cut]) == b"AO\x0b\\\\\n", cut


def test_an_escaped_separator_stays_data() -> None:
    t = EscapeTranslator("|\n")
    assert t.feed(b"a\\174b|\\x7c\n") + t.finish() == b"a\\|b|\\|\n"


_VALUES = st.lists(st.one_of(st.none(), st.text(st.characters(
    codec="utf-8", exclude_characters="\x00"), max_size=12)), min_size=1, max_size=6)


@settings(max_examples=50, deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=4),
       st.lists(st.integers(min_value=0), max_size=5), st.integers(0, 3))
def test_load_data_reads_what_postgres_reads(rows: list[list[str | None]], cuts: list[int],
                                             spelling: int) -> None:
    """headrace's TSV writer, and a writer spelling control bytes in octal or hex, read the
    same by both after the pass, wherever the chunks are cut."""
    width = max(map(len, rows))
    rows = [r + [None] * (width - len(r)) for r in rows]
    schema = Schema(tuple(Column(f"c{i}") for i in range(width)))
    data = encoder_for(TSV).encode(RowBatch(schema, [tuple(r) for r in rows]))
    if spelling == 1:
        data = re.sub(rb"[\x01-\x08\x0b\x0c\x0e-\x1f]", lambda m: b"\\%03o" % m[0][0], data)
    elif spelling == 2:
        data = re.sub(rb"[\x01-\x08\x0b\x0c\x0e-\x1f]", lambda m: b"\\x%02x" % m[0][0], data)
    elif spelling == 3:
        data = data.replace(b"\x0b", b"\\v").replace(b"\x0c", b"\\f").replace(b"\x08", b"\\b")
    want = [[None if v is None else v.encode() for v in r] for r in rows]
    assert postgres_reading(data) == want
    assert load_data_reading(translated(data, cuts)) == want


def test_crlf_line_ends_become_lf_wherever_the_chunks_are_cut() -> None:
    """A CR before a line break belongs to the break (headrace's TSV reader and COPY agree);
    an escaped CR (``\\r``, or a backslash before a raw CR) is data and stays."""
    data = b"1\ta\r\n2\t\\r\r\n3\tb\\\r\n4\t\\1\r\n"
    want = b"1\ta\n2\t\\r\n3\tb\\\r\n4\t\x01\n"
    for cut in range(len(data) + 1):
        assert translated(data, [cut]) == want, cut
    for cut in range(len(data) + 1):
        # the stream ends after a CR: no line break follows, so it is passed on
        assert translated(data[:-1], [cut]) == want[:-1] + b"\r", cut
