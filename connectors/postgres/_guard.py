"""What PostgreSQL text cannot hold, refused in the bytes a COPY loads, naming line and column.

PostgreSQL text values hold UTF-8 without NUL (0x00). COPY refuses a NUL or invalid UTF-8
with "invalid byte sequence for encoding UTF8" and the line, but not the column (the server
checks the encoding of a whole line before it splits it into fields). This guard checks each
chunk first (a C-speed ``in`` for NUL; ``isascii``, else an incremental UTF-8 decode, for the
encoding; a newline count to know the line) and, at the first bad byte, finds its field in
that line. A NUL written as an escape (``\\0``, ``\\x00``) is left to the server, which names
only the line. Lines end at the record separator's last byte (the ``\\n`` of ``\\r\\n``); a CSV
record whose quoted value holds a newline counts as two lines here, and a bad byte after that
newline may be given the wrong field.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

from connectors.base import TextFormat
from connectors.errors import BadDataError

#: The part of a long line kept to find a bad byte's field (a longer line names no column).
_MAX_TAIL = 1 << 20


class TextGuard:
    """Check each chunk of ``fmt`` text before COPY reads it; raise at the first NUL or
    invalid UTF-8."""

    def __init__(self, fmt: TextFormat, columns: Sequence[str], *, where: str) -> None:
        self._fmt, self._columns, self._where = fmt, list(columns), where
        self._rs = fmt.record_separator[-1:].encode("utf-8") or b"\n"
        self._lines = 0          # record separators seen before the current line
        self._tail = b""         # the current line's bytes so far (up to _MAX_TAIL)
        self._tail_whole = True  # False once the current line grew past _MAX_TAIL
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = 0        # bytes of a character the last chunk cut, held by the decoder

    def check(self, chunk: bytes) -> None:
        at = chunk.find(b"\x00")
        problem = "NUL (0x00) cannot be stored in PostgreSQL text"
        bad = self._first_invalid(chunk if at < 0 else chunk[:at])
        if bad is not None:
            at, problem = bad, (f"invalid UTF-8 (byte 0x{chunk[bad]:02x}); PostgreSQL text "
                                "holds UTF-8 only")
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
            f"{problem}; nothing was committed", connector=self._where,
            operation="COPY FROM", line=line,
            column=name if name else (column + 1 if column is not None else None))

    def _first_invalid(self, data: bytes) -> int | None:
        """The offset in ``data`` of the first byte that is not UTF-8, or None (a character
        cut by the chunk's end is held by the decoder and checked with the next chunk)."""
        if data.isascii() and not self._pending:
            return None
        try:
            self._decoder.decode(data)
        except UnicodeDecodeError as exc:
            return max(0, exc.start - self._pending)
        finally:
            self._pending = len(self._decoder.getstate()[0])
        return None

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
