"""NUL in the bytes a COPY loads: refused here, naming the line and the column.

PostgreSQL text values cannot hold NUL (0x00). COPY refuses one with "invalid byte sequence
for encoding UTF8: 0x00" and the line, but not the column (the server checks the encoding of
a whole line before it splits it into fields). This guard looks for a raw NUL in each chunk
(one C-speed ``in`` per chunk, and a newline count to know the line) and, on the first one,
finds its field in that line. A NUL written as an escape (``\\0``, ``\\x00``) is left to the
server, which names only the line. Lines end at the record separator's last byte (the
``\n`` of ``\r\n``); a CSV record whose quoted value holds a newline counts as two lines
there, and a NUL after that newline may be given the wrong field.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import TextFormat
from connectors.errors import BadDataError

#: The part of a long line kept to find a NUL's field (a longer line names no column).
_MAX_TAIL = 1 << 20


class NulGuard:
    """Check each chunk of ``fmt`` text before COPY reads it; raise at the first NUL."""

    def __init__(self, fmt: TextFormat, columns: Sequence[str], *, where: str) -> None:
        self._fmt, self._columns, self._where = fmt, list(columns), where
        self._rs = fmt.record_separator[-1:].encode("utf-8") or b"\n"
        self._lines = 0          # record separators seen before the current line
        self._tail = b""         # the current line's bytes so far (up to _MAX_TAIL)
        self._tail_whole = True  # False once the current line grew past _MAX_TAIL

    def check(self, chunk: bytes) -> None:
        at = chunk.find(b"\x00")
        if at < 0:
            self._advance(chunk)
            return
        before = chunk[:at]
        line_start = before.rfind(self._rs)
        if line_start >= 0:
            self._advance(before[:line_start + 1])
            before = before[line_start + 1:]
        line = self._lines + 1
        text = self._tail + before if self._tail_whole else None
        column = self._column_of(text) if text is not None else None
        name = (self._columns[column] if column is not None and column < len(self._columns)
                else None)
        raise BadDataError(
            "NUL (0x00) cannot be stored in PostgreSQL text; nothing was committed",
            connector=self._where, operation="COPY FROM", line=line,
            column=name if name else (column + 1 if column is not None else None))

    def _advance(self, data: bytes) -> None:
        newlines = data.count(self._rs)
        if newlines:
            self._lines += newlines
            self._tail = data[data.rfind(self._rs) + 1:]
            self._tail_whole = True
        elif self._tail_whole:
            self._tail += data
            if len(self._tail) > _MAX_TAIL:
                self._tail, self._tail_whole = b"", False

    def _column_of(self, line: bytes) -> int:
        """The 0-based field of a line's end: separators outside quotes (CSV) or not escaped
        (TSV, Custom) before it."""
        fmt = self._fmt
        sep = fmt.column_separator.encode("utf-8")
        if fmt.kind == "csv" and fmt.quote:
            quote = fmt.quote.encode("utf-8")
            fields, inside, i = 0, False, 0
            while i < len(line):
                if line.startswith(quote, i):
                    inside = not inside
                    i += len(quote)
                elif not inside and line.startswith(sep, i):
                    fields += 1
                    i += len(sep)
                else:
                    i += 1
            return fields
        escape = (fmt.escape_char or "").encode("utf-8")
        if escape:
            line = line.replace(escape + escape, b"").replace(escape + sep, b"")
        return line.count(sep)
