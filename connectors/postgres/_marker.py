"""COPY's end-of-data marker, written differently where it is data.

``COPY FROM`` takes a line holding only ``\\.`` as the end of the data, in text and in CSV
format alike, and silently ignores what follows: a TSV file with the line ``\\.`` (headrace's
TSV reads it as ``.``, an escaped full stop) or a one-column CSV file with the unquoted value
``\\.`` (a valid CSV value, which Python's csv module writes unquoted) lost every later row,
with a success status. This pass rewrites such a line, in the byte stream before COPY, to what
COPY reads as the same value: ``.`` for TSV, ``"\\."`` for CSV (COPY's own CSV output quotes it
so). A CSV line inside a quoted value is left alone (COPY reads it as data there: it is the
marker only at the start of a record).

A chunk without ``\\.`` passes as it is, apart from a line start that could still become the
marker (at most 3 bytes), held until the next chunk.
"""

from __future__ import annotations

import re

from connectors.base import TextFormat

_MARKER = re.compile(rb"(?:(?<=\n)|\A)\\\.(?=\r?\n|\Z)")
_PREFIXES = (b"\\", b"\\.", b"\\.\r")


class EndMarkerQuoter:
    """Feed COPY input chunks cut anywhere; get back the same records with every data line
    that would read as the end-of-data marker rewritten."""

    def __init__(self, fmt: TextFormat) -> None:
        self._csv = fmt.kind == "csv"
        quote = (fmt.quote or '"').encode("utf-8")
        self._quote = quote
        self._replacement = quote + b"\\." + quote if self._csv else b"."
        # parity counting reads doubled quotes right, not a backslash-escaped quote: a CSV
        # with another escape character is passed as it is
        self._track_quotes = self._csv and fmt.escape_char in (None, fmt.quote)
        self._active = not self._csv or self._track_quotes
        self._held = b""
        self._line_start = True  # the next byte starts a line
        self._inside = False     # CSV: the next byte is inside a quoted value

    def feed(self, chunk: bytes) -> bytes:
        return self._pass(chunk, final=False)

    def finish(self) -> bytes:
        return self._pass(b"", final=True)

    def _pass(self, chunk: bytes, *, final: bool) -> bytes:
        data = self._held + chunk if self._held else chunk
        self._held = b""
        if not final:
            last = data.rfind(b"\n")
            tail = data[last + 1:]
            if tail in _PREFIXES and (last >= 0 or self._line_start):
                self._held, data = tail, data[:last + 1]
        if not data:
            return data
        out = data
        if self._active and b"\\" in data and b"\\." in data:  # memchr first: fast
            out = self._rewrite(data)
        if self._track_quotes:
            self._inside = (self._inside + data.count(self._quote)) % 2 == 1
        self._line_start = data.endswith(b"\n")
        return out

    def _rewrite(self, data: bytes) -> bytes:
        pieces, last = [], 0
        for match in _MARKER.finditer(data):
            at = match.start()
            if at == 0 and not self._line_start:
                continue
            if self._track_quotes and (self._inside + data.count(self._quote, 0, at)) % 2:
                continue  # inside a quoted value
            pieces += [data[last:at], self._replacement]
            last = match.end()
        if not pieces:
            return data
        pieces.append(data[last:])
        return b"".join(pieces)
