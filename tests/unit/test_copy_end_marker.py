"""The pass that keeps COPY from reading a data line as its end-of-data marker (no server
needed: the server's reading is modelled from PostgreSQL's manual; the integration test in
tests/integration/test_byte_fidelity.py loads the same lines into PostgreSQL)."""

from __future__ import annotations

import pytest

from connectors.base import CSV, TSV
from connectors.postgres import EndMarkerQuoter


def quoted(data: bytes, fmt: object, cuts: list[int]) -> bytes:
    q = EndMarkerQuoter(fmt)  # type: ignore[arg-type]
    out, last = [], 0
    for cut in cuts:
        out.append(q.feed(data[last:cut]))
        last = cut
    out.append(q.feed(data[last:]))
    out.append(q.finish())
    return b"".join(out)


@pytest.mark.parametrize(("fmt", "data", "want"), [
    (TSV, b"a\n\\.\nb\n", b"a\n.\nb\n"),
    (TSV, b"\\.\r\nb\r\n", b".\r\nb\r\n"),
    (TSV, b"a\n\\.", b"a\n."),
    (TSV, b"x\\.\n\\.y\n\\\\.\n", b"x\\.\n\\.y\n\\\\.\n"),       # not alone on its line
    (CSV, b"a\n\\.\nb\n", b'a\n"\\."\nb\n'),
    (CSV, b'"multi\n\\.\nline"\n\\.\n', b'"multi\n\\.\nline"\n"\\."\n'),  # inside quotes: kept
    (CSV, b'"\\."\n', b'"\\."\n'),
])
def test_a_lone_marker_line_is_rewritten_wherever_the_chunks_are_cut(
        fmt: object, data: bytes, want: bytes) -> None:
    for cut in range(len(data) + 1):
        assert quoted(data, fmt, [cut]) == want, cut
    for a in range(len(data) + 1):
        for b in range(a, len(data) + 1):
            assert quoted(data, fmt, [a, b]) == want, (a, b)
