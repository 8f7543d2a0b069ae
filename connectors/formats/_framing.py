"""Cutting a byte stream with arbitrary chunk boundaries into runs of whole records.

The cut happens on bytes, before any text decoding: record and quote characters are ASCII, so a
multi-byte UTF-8 character can never straddle a cut. A record separator only ends a record when
the number of quote characters before it is even (RFC 4180 doubles quotes inside quoted fields,
so parity tells whether we are inside quotes); this is ``bytes.count`` and ``bytes.rfind`` work,
no per-character Python loop.
"""

from __future__ import annotations

from connectors.errors import BadDataError

#: A record (or an unclosed quoted field) longer than this is refused rather than buffered.
MAX_RECORD_BYTES = 64 * 1024 * 1024
SNIPPET_CHARS = 60


def snippet(raw: bytes | str) -> str:
    """A short printable excerpt of a bad record for error messages."""
    text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
    text = text.rstrip("\r\n")
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS] + "..."
    return repr(text)


class Framer:
    """Feeds bytes in, hands whole-record runs out; tracks the line number of each run.

    ``next_line`` is the 1-based line of the first byte not yet handed out. Lines are counted
    by ``\\n`` (or by the record separator when that is not a newline).
    """

    def __init__(self, record_sep: bytes, quote: bytes | None = None,
                 escape: bytes | None = None, *, location: str,
                 max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.sep = record_sep
        self.quote = quote
        self.escape = escape
        self.location = location
        self.max_record_bytes = max_record_bytes
        self.next_line = 1
        self._line_mark = b"\n" if b"\n" in record_sep else record_sep
        self._carry = b""

    def _quotes(self, data: bytes, start: int, end: int) -> int:
        assert self.quote is not None
        n = data.count(self.quote, start, end)
        if self.escape and n:
            n -= data.count(self.escape + self.quote, start, end)
        return n

    def feed(self, chunk: bytes) -> bytes:
        """Add ``chunk``; return the longest prefix of buffered data made of whole records."""
        data = self._carry + chunk if self._carry else chunk
        cut = data.rfind(self.sep)
        if cut >= 0 and self.quote is not None:
            quotes = self._quotes(data, 0, cut)
            while quotes % 2 and cut >= 0:
                prev = data.rfind(self.sep, 0, cut)
                quotes -= self._quotes(data, prev + len(self.sep) if prev >= 0 else 0, cut)
                cut = prev
        if cut < 0:
            self._carry = data
            self._check_size()
            return b""
        end = cut + len(self.sep)
        self._carry = data[end:]
        self._check_size()
        return data[:end]

    def finish(self, *, check: bool = True) -> bytes:
        """The last record when it has no terminating separator; checks quotes are closed."""
        data, self._carry = self._carry, b""
        if check and data and self.quote is not None and self._quotes(data, 0, len(data)) % 2:
            self._unbalanced(data)
        return data

    def advance(self, run: bytes) -> int:
        """Account for ``run`` having been handed out; return the line it started on."""
        first = self.next_line
        self.next_line += run.count(self._line_mark)
        return first

    def _check_size(self) -> None:
        if len(self._carry) > self.max_record_bytes:
            if self.quote is not None and self._quotes(self._carry, 0, len(self._carry)) % 2:
                self._unbalanced(self._carry)
            raise BadDataError(
                f"a record is longer than {self.max_record_bytes} bytes "
                f"(missing record separator?): {snippet(self._carry[:200])}",
                location=self.location, line=self.next_line)

    def _unbalanced(self, data: bytes) -> None:
        """Raise for the quote that opens the field which never closes."""
        assert self.quote is not None
        opening = -1
        pos = data.find(self.quote)
        inside = False
        while pos >= 0:
            escaped = bool(self.escape) and pos > 0 and data[pos - 1:pos] == self.escape
            if not escaped:
                inside = not inside
                if inside:
                    opening = pos
            pos = data.find(self.quote, pos + 1)
        line = self.next_line + data.count(self._line_mark, 0, opening)
        line_start = data.rfind(b"\n", 0, opening) + 1
        raise BadDataError(
            f"unbalanced quote: the quoted field opened here never closes: "
            f"{snippet(data[line_start:line_start + 200])}",
            location=self.location, line=line, column=opening - line_start + 1)


def decode_text(run: bytes, encoding: str, *, location: str, first_line: int,
                lenient: bool) -> tuple[str, bool]:
    """Decode ``run``; return (text, tainted).

    On invalid input raise :class:`BadDataError` naming line and byte column, unless
    ``lenient``: then decode with ``surrogateescape`` and report ``tainted=True`` so the caller
    can route the rows holding lone surrogates aside.
    """
    try:
        return run.decode(encoding), False
    except UnicodeDecodeError as exc:
        if lenient:
            return run.decode(encoding, "surrogateescape"), True
        line = first_line + run.count(b"\n", 0, exc.start)
        line_start = run.rfind(b"\n", 0, exc.start) + 1
        line_end = run.find(b"\n", exc.start)
        raw_line = run[line_start:line_end if line_end >= 0 else len(run)]
        raise BadDataError(f"invalid {encoding} ({exc.reason}): {snippet(raw_line)}",
                           location=location, line=line,
                           column=exc.start - line_start + 1) from None
