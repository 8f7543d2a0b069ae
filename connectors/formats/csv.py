"""CSV (RFC 4180 by default) through the C ``csv`` module.

Python 3.11's ``csv`` reads and writes NULL and the empty string alike. headrace's CSV keeps
them apart the way PostgreSQL does: NULL is an unquoted empty field, the empty string is
``""``. Reading: only rows that hold an empty field (or the NULL marker) are looked at again
to see which fields were quoted. Writing: empty strings become a sentinel that the writer
leaves alone, then one ``str.replace`` turns it into ``""``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from connectors.base import Column, RowBatch, Schema, TextFormat

from ._decoder import TextDecoder
from ._framing import MAX_RECORD_BYTES
from .values import text_columns

# The csv module refuses a field over 131,072 characters ("field larger than field limit"),
# which made a long value "malformed CSV". Records are already bounded by the framer (one
# record at most MAX_RECORD_BYTES), so the module's own guard is raised to that bound.
if csv.field_size_limit() < MAX_RECORD_BYTES:
    csv.field_size_limit(MAX_RECORD_BYTES)

_EMPTY = "\x1e\x1fHR-EMPTY\x1f\x1e"
_NULL = "\x1e\x1fHR-NULL\x1f\x1e"
# The csv writer quotes only for characters of its line terminator, so a lone CR in a value
# would go out unquoted: CRs travel as this (newline-holding, hence quoted) marker instead.
_CR = "\n\x1fHR-CR\x1f"


def _dialect(fmt: TextFormat) -> dict[str, Any]:
    return {
        "delimiter": fmt.column_separator,
        "quotechar": fmt.quote,
        "escapechar": fmt.escape_char,
        "doublequote": fmt.escape_char is None,
        "quoting": csv.QUOTE_MINIMAL if fmt.quote else csv.QUOTE_NONE,
        "lineterminator": fmt.record_separator,
        "strict": True,
    }


class CsvDecoder(TextDecoder):
    quote_framing = True

    def __init__(self, fmt: TextFormat, **kwargs: Any) -> None:
        super().__init__(fmt, **kwargs)
        self._dialect = _dialect(fmt)
        self._null = fmt.null
        q = re.escape(fmt.quote or '"')
        esc = re.escape(fmt.escape_char) + "." if fmt.escape_char else q + q
        plain = f"[^{q}{re.escape(fmt.escape_char or '')}]"
        self._quoted_field = re.compile(f"{q}(?:{plain}|{esc})*{q}")

    def _parse(self, text: str, first_line: int, tainted: bool) -> None:
        lines = io.StringIO(text, newline="\n").readlines()
        reader = csv.reader(lines, **self._dialect)
        rows, row_lines = self._rows, self._row_lines
        width = len(self.schema) if self.schema is not None else None
        null = self._null
        prev = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                start, prev = prev, reader.line_num
                self._bad(f"malformed CSV ({exc})", line=first_line + start,
                          raw="".join(lines[start:prev]))
                continue
            start, prev = prev, reader.line_num
            if self._header_pending:
                self._header_pending = False
                if width is None:
                    self.schema = Schema(tuple(Column(n) for n in row))
                    width = len(row)
                continue
            if not row:
                row = [""]
            if width is None:
                width = len(self._set_width(len(row)))
            if len(row) != width:
                self._bad(f"expected {width} fields, found {len(row)}", line=first_line + start,
                          raw="".join(lines[start:prev]))
                continue
            fields: Sequence[str | None] = row
            if "" in row or (null and null in row):
                fields = self._apply_nulls(row, "".join(lines[start:prev]))
            if tainted and self._tainted("".join(lines[start:prev])):
                self._bad_encoding(line=first_line + start, raw="".join(lines[start:prev]),
                                   fields=row)
                continue
            rows.append(tuple(fields))
            row_lines.append(first_line + start)

    def _apply_nulls(self, row: list[str], raw: str) -> list[str | None]:
        """Turn unquoted NULL markers into None; quoted ones stay strings."""
        quoted = self._quoted_flags(raw.rstrip("\r\n"), len(row))
        null = self._null
        return [None if (v == null and not q) else v for v, q in zip(row, quoted, strict=True)]

    def _quoted_flags(self, raw: str, width: int) -> list[bool]:
        sep = self.fmt.column_separator
        quote = self.fmt.quote
        flags: list[bool] = []
        pos = 0
        for _ in range(width):
            if quote and raw.startswith(quote, pos):
                m = self._quoted_field.match(raw, pos)
                flags.append(True)
                end = m.end() if m else len(raw)
                nxt = raw.find(sep, end)
            else:
                flags.append(False)
                nxt = raw.find(sep, pos)
            pos = len(raw) if nxt < 0 else nxt + len(sep)
        return flags


class CsvEncoder:
    """Row batches -> CSV bytes; writes the header once when the format asks for one."""

    def __init__(self, fmt: TextFormat) -> None:
        self.fmt = fmt
        self._dialect = _dialect(fmt)
        self._header_pending = fmt.header
        self._schema: Schema | None = None

    def encode(self, batch: RowBatch) -> bytes:
        header = self._header_pending
        text = self._encode(batch, cr_safe=False)
        if "\r" in text and "\r" not in self.fmt.record_separator:
            self._header_pending = header
            text = self._encode(batch, cr_safe=True)  # rare: values hold a lone CR
        return text.encode(self.fmt.encoding)

    def _encode(self, batch: RowBatch, *, cr_safe: bool) -> str:
        self._schema = batch.schema
        buf = io.StringIO()
        writer = csv.writer(buf, **self._dialect)
        if self._header_pending:
            self._header_pending = False
            writer.writerow(batch.schema.names)
        width = len(batch.schema)
        cols = text_columns(batch.rows, width)
        null = self.fmt.null
        empties = nulls = crs = 0
        for i, col in enumerate(cols):
            if cr_safe and any(v and "\r" in v for v in col):
                crs += sum(v.count("\r") for v in col if v is not None)
                col = cols[i] = [v.replace("\r", _CR) if v and "\r" in v else v for v in col]
            has_none = None in col
            has_empty = "" in col
            if not (has_none or has_empty):
                continue
            if null == "":
                none_as = _NULL if width == 1 else ""
                empty_as = _EMPTY
                empties += col.count("")
                nulls += col.count(None) if width == 1 else 0
            else:
                none_as, empty_as = null, ""
            cols[i] = [none_as if v is None else (empty_as if v == "" else v) for v in col]
        start = buf.tell()
        writer.writerows(zip(*cols, strict=True))
        text = buf.getvalue()
        if empties or width == 1 or crs:
            body = text[start:]
            if body.count(_EMPTY) != empties or body.count(_NULL) != nulls \
                    or body.count(_CR) != crs:
                return self._slow(batch, text[:start])
            body = body.replace(_EMPTY, (self.fmt.quote or "") * 2).replace(_NULL, "")
            text = text[:start] + body.replace(_CR, "\r")
        return text

    def _slow(self, batch: RowBatch, head: str) -> str:
        """Field by field; used only when the data itself holds the sentinel text."""
        quote = self.fmt.quote or '"'
        sep, end = self.fmt.column_separator, self.fmt.record_separator
        lines = [head]
        for row in zip(*text_columns(batch.rows, len(batch.schema)), strict=True):
            fields = []
            for v in row:
                if v is None:
                    fields.append(self.fmt.null)
                elif v == "" or any(c in v for c in (sep, quote, "\n", "\r")):
                    fields.append(quote + v.replace(quote, quote * 2) + quote)
                else:
                    fields.append(v)
            lines.append(sep.join(fields) + end)
        return "".join(lines)

    def finish(self) -> bytes:
        if self._header_pending and self.fmt.columns:
            self._header_pending = False
            buf = io.StringIO()
            csv.writer(buf, **self._dialect).writerow([c.name for c in self.fmt.columns])
            return buf.getvalue().encode(self.fmt.encoding)
        return b""
