"""headrace CSV made readable by ``LOAD DATA`` without losing NULL.

headrace's CSV (PostgreSQL's) writes NULL as an unquoted empty field and the empty string as
``""``. ``LOAD DATA ... OPTIONALLY ENCLOSED BY '"'`` reads both as the empty string, but it
reads an unquoted ``NULL`` as NULL and a quoted ``"NULL"`` as the text. So a byte pass marks
every unquoted empty field ``NULL`` and quotes every unquoted ``NULL`` word, and a record
ending in CRLF is made to end in LF (LOAD DATA would keep the CR in the last value); nothing
else changes, and no row is decoded into Python values (the rows lane took ~15 CPU seconds per
million rows for S3 CSV -> MySQL; this pass ~1 s per 300 MB).

Records are cut whole by :class:`~connectors.formats._framing.Framer` (quote-aware). A run
with no two separators in a row (or at a record's start or end), no empty record and no
``NULL`` anywhere is passed as is; otherwise each such place is kept only when the number of
quote characters before it is even (outside quotes: doubled quotes inside a field keep the parity).
"""

from __future__ import annotations

import re

from connectors.base import TextFormat
from connectors.formats import Framer
from connectors.sql import is_utf8

#: The LOAD DATA reading of the marked bytes: CSV whose NULL is the unquoted word.
NULL_WORD = "NULL"


def convertible(fmt: TextFormat) -> bool:
    """True for a CSV this pass turns into one LOAD DATA reads exactly."""
    return (fmt.kind == "csv" and fmt.null == "" and fmt.quote == '"'
            and fmt.escape_char in (None, '"') and fmt.record_separator == "\n"
            and len(fmt.column_separator) == 1 and fmt.column_separator not in '"\n'
            and is_utf8(fmt))


def marked_format(fmt: TextFormat) -> TextFormat:
    """The format of the marked bytes (what LOAD DATA is told to read)."""
    return fmt.replace(null=NULL_WORD)


class NullMarker:
    """Feed CSV chunks cut anywhere; get back whole records with NULLs marked."""

    def __init__(self, fmt: TextFormat, *, location: str) -> None:
        if not convertible(fmt):
            raise ValueError(f"not a CSV this pass can mark: {fmt}")
        self._sep = fmt.column_separator.encode()
        self._framer = Framer(b"\n", b'"', location=location)
        sep = re.escape(self._sep)
        # an empty or NULL field (group 1: the word), or the CR of a CRLF line break (group 2)
        self._field = re.compile(rb"(?<=[" + sep + rb"\n])(NULL)?(?=" + sep + rb"|\r?\n)"
                                 rb"|(\r)(?=\n)")
        self._hints = (self._sep + self._sep, self._sep + b"\n", b"\n" + self._sep, b"\n\n",
                       b"NULL", b"\r\n")

    def feed(self, chunk: bytes) -> bytes:
        return self._mark(self._framer.feed(chunk))

    def finish(self) -> bytes:
        """The last record (checked for an unclosed quote), marked."""
        tail = self._framer.finish()
        if tail and not tail.endswith(b"\n"):
            tail += b"\n"
        return self._mark(tail)

    def _mark(self, run: bytes) -> bytes:
        """``run`` starts at a record's start, outside quotes, and ends after a record."""
        if not run or (not any(h in run for h in self._hints)
                       and not run.startswith((self._sep, b"\n"))):
            return run  # nothing empty and no NULL word anywhere: the common case
        text = b"\n" + run  # the run starts a line
        out: list[bytes] = []
        last = prev = 0
        inside = False
        for match in self._field.finditer(text):
            pos = match.start()
            if text.count(b'"', prev, pos) % 2:
                inside = not inside
            prev = pos
            if inside:
                continue
            out.append(text[last:pos])
            if match.group(2) is None:
                out.append(b'"NULL"' if match.group(1) else b"NULL")
            last = match.end()
        if not out:
            return run
        out.append(text[last:])
        return b"".join(out)[1:]
