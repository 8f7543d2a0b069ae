"""The part every text decoder shares: framing, text decoding, batching, bad-row routing."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from connectors.base import Column, RowBatch, Schema, TextFormat
from connectors.errors import BadDataError

from ._framing import Framer, decode_text, snippet

#: Called with the error and the raw bytes of a rejected record; may raise to stop the copy.
BadRowHandler = Callable[[BadDataError, bytes], None]

DEFAULT_BATCH_ROWS = 10_000
_SURROGATE = re.compile("[\udc80-\udcff]")


def generic_schema(width: int) -> Schema:
    """Column names for data that declares none: ``col1``, ``col2``, ..."""
    return Schema(tuple(Column(f"col{i + 1}") for i in range(width)))


class TextDecoder:
    """Base of the decoders: ``feed(chunk) -> batches``, then ``finish() -> batches``.

    Subclasses implement :meth:`_parse` for one run of whole records, appending to
    ``self._rows`` and ``self._row_lines``.
    """

    quote_framing = False

    def __init__(self, fmt: TextFormat, *, location: str, schema: Schema | None = None,
                 batch_rows: int = DEFAULT_BATCH_ROWS, on_bad: BadRowHandler | None = None) -> None:
        self.fmt = fmt
        self.location = location
        self.batch_rows = max(1, batch_rows)
        self.on_bad = on_bad
        declared = Schema(fmt.columns) if fmt.columns else None
        self.schema: Schema | None = declared or schema
        self.bad_rows = 0
        self._header_pending = fmt.header
        enc = fmt.encoding
        quote = fmt.quote.encode(enc) if (self.quote_framing and fmt.quote) else None
        escape = fmt.escape_char.encode(enc) if (quote and fmt.escape_char) else None
        self._framer = Framer(fmt.record_separator.encode(enc), quote, escape, location=location)
        self._rows: list[tuple[Any, ...]] = []
        self._row_lines: list[int] = []

    # -- the public surface -------------------------------------------------------------------
    def feed(self, chunk: bytes) -> list[RowBatch]:
        run = self._framer.feed(chunk)
        if run:
            self._parse_run(run)
        return self._take(final=False)

    def finish(self) -> list[RowBatch]:
        run = self._framer.finish()
        if run:
            self._parse_run(run)
        return self._take(final=True)

    # -- for subclasses -----------------------------------------------------------------------
    def _parse(self, text: str, first_line: int, tainted: bool) -> None:
        raise NotImplementedError

    def _set_width(self, width: int) -> Schema:
        self.schema = generic_schema(width)
        return self.schema

    def _bad(self, message: str, *, line: int, raw: str,
             column: int | str | None = None) -> None:
        """Reject one record: raise, or hand it to the bad-row handler."""
        err = BadDataError(f"{message}: {snippet(raw)}", location=self.location, line=line,
                           column=column)
        if self.on_bad is None:
            raise err
        self.bad_rows += 1
        self.on_bad(err, raw.encode(self.fmt.encoding, "surrogateescape"))

    def _bad_encoding(self, *, line: int, raw: str, fields: Sequence[Any] = ()) -> None:
        """Reject a record holding bytes that are not text in the format's encoding, naming
        the field that holds them (the first of ``fields``, the record's values, with a lone
        surrogate) and their byte offset in the record."""
        m = _SURROGATE.search(raw)
        offset = len(raw[:m.start()].encode(self.fmt.encoding, "surrogateescape")) + 1 if m \
            else None
        column: int | str | None = None
        for i, value in enumerate(fields):
            if isinstance(value, str) and _SURROGATE.search(value):
                names = self.schema.names if self.schema is not None else ()
                column = names[i] if i < len(names) else i + 1
                break
        at = f" at byte {offset} of the record" if offset else ""
        self._bad(f"invalid {self.fmt.encoding}{at}", line=line, raw=raw, column=column)

    @staticmethod
    def _tainted(text: str) -> bool:
        return _SURROGATE.search(text) is not None

    # -- internals ----------------------------------------------------------------------------
    def _parse_run(self, run: bytes) -> None:
        first = self._framer.advance(run)
        # Lenient always: a record with invalid bytes reaches _parse, which knows its fields
        # and hands it to _bad_encoding (raising there unless bad rows are routed aside).
        text, tainted = decode_text(run, self.fmt.encoding, location=self.location,
                                    first_line=first, lenient=True)
        self._parse(text, first, tainted)

    def _take(self, *, final: bool) -> list[RowBatch]:
        rows, lines, size = self._rows, self._row_lines, self.batch_rows
        if len(rows) < size and not (final and rows):
            return []
        assert self.schema is not None
        out: list[RowBatch] = []
        start = 0
        while len(rows) - start >= size:
            out.append(RowBatch(self.schema, rows[start:start + size], lines[start]))
            start += size
        if final and start < len(rows):
            out.append(RowBatch(self.schema, rows[start:], lines[start]))
            start = len(rows)
        self._rows = rows[start:]
        self._row_lines = lines[start:]
        return out
