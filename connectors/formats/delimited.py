"""Delimited text without quoting: TSV (PostgreSQL's text format) and Custom.

TSV: records end with the record separator, fields are split by the column separator, a
backslash escapes (``\\t \\n \\r \\b \\f \\v \\\\``, octal ``\\NNN``, hex ``\\xHH``; any other
escaped character stands for itself) and ``\\N`` is NULL. Octal and hex escapes are bytes, as
in PostgreSQL: a field's text is the UTF-8 they make with the rest (``\\xc3\\xa9`` is é), and
escaped bytes that are not UTF-8 are refused like invalid UTF-8 in the file. Custom
(``escape_char`` None) has no escapes at all: a value holding a separator cannot be written
and is refused with its column. Escaping works a column at a time on one joined string (C
speed), not value by value.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.base import Column, RowBatch, Schema, TextFormat
from connectors.errors import BadDataError

from ._decoder import TextDecoder
from .values import text_columns

_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_JOIN = "\x00"
#: An escaped byte that is not part of a UTF-8 character (left as its surrogate escape).
_BYTE_ESCAPE = re.compile("[\udc80-\udcff]")


class DelimitedDecoder(TextDecoder):
    def __init__(self, fmt: TextFormat, **kwargs: Any) -> None:
        super().__init__(fmt, **kwargs)
        esc = fmt.escape_char
        self._esc = esc
        self._unescape_re = (
            re.compile(re.escape(esc) + r"(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.S)
            if esc else None)

    def _unescape_match(self, m: re.Match[str]) -> str:
        """One escape. Octal and hex give a *byte*, as in PostgreSQL (``\\xc3\\xa9`` is é):
        one above 0x7F comes back as its surrogate escape, for :meth:`_unescape` to decode."""
        octal, hexa, other = m.groups()
        if octal is not None or hexa is not None:
            value = int(octal, 8) & 0xFF if octal is not None else int(hexa, 16)
            return chr(value) if value < 0x80 else chr(0xDC00 + value)
        return _SIMPLE.get(other, other)

    def _unescape(self, field: str) -> str:
        assert self._unescape_re is not None
        text = self._unescape_re.sub(self._unescape_match, field)
        if _BYTE_ESCAPE.search(text):  # escaped bytes: the field's text is their UTF-8
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
        return text

    def _split_escaped(self, line: str) -> list[str]:
        """Split on separators that are not escaped (``\\|`` is a literal ``|``)."""
        esc, sep = self._esc or "", self.fmt.column_separator
        mark = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in line)
        marked = line.replace(esc + esc, mark + "E").replace(esc + sep, mark + "S")
        return [f.replace(mark + "S", esc + sep).replace(mark + "E", esc + esc)
                for f in marked.split(sep)]

    def _parse(self, text: str, first_line: int, tainted: bool) -> None:
        rsep, csep = self.fmt.record_separator, self.fmt.column_separator
        lines = text.split(rsep)
        if lines and lines[-1] == "":
            lines.pop()
        rows, row_lines = self._rows, self._row_lines
        width = len(self.schema) if self.schema is not None else None
        esc, null, unescape = self._esc, self.fmt.null, self._unescape_re
        strip_cr = rsep == "\n"
        for i, line in enumerate(lines):
            if strip_cr and line.endswith("\r"):
                line = line[:-1]
            fields: list[Any] = (self._split_escaped(line) if esc and esc + csep in line
                                 else line.split(csep))
            if self._header_pending:
                self._header_pending = False
                if width is None:
                    self.schema = Schema(tuple(Column(n) for n in fields))
                    width = len(fields)
                continue
            if width is None:
                width = len(self._set_width(len(fields)))
            if len(fields) != width:
                self._bad(f"expected {width} fields, found {len(fields)}",
                          line=first_line + i, raw=line)
                continue
            if tainted and self._tainted(line):
                self._bad_encoding(line=first_line + i, raw=line, fields=fields)
                continue
            if esc and esc in line:
                assert unescape is not None
                fields = [None if f == null else (self._unescape(f) if esc in f else f)
                          for f in fields]
                if _BYTE_ESCAPE.search("".join(f for f in fields if f)):
                    self._bad_encoding(line=first_line + i, raw=line, fields=fields)
                    continue
            elif null in fields:
                fields = [None if f == null else f for f in fields]
            rows.append(tuple(fields))
            row_lines.append(first_line + i)


class DelimitedEncoder:
    def __init__(self, fmt: TextFormat) -> None:
        self.fmt = fmt
        self._header_pending = fmt.header
        esc = fmt.escape_char
        specials = {fmt.column_separator, fmt.record_separator, "\n", "\r"}
        if esc:
            pairs = [(esc, esc + esc)]
            named = {"\t": "t", "\n": "n", "\r": "r"}
            for ch in sorted(specials - {esc}):
                pairs.append((ch, esc + named.get(ch, ch)))
            self._pairs = pairs
            specials.add(esc)
        else:
            self._pairs = []
        self._specials = sorted(specials)

    def encode(self, batch: RowBatch) -> bytes:
        fmt = self.fmt
        width = len(batch.schema)
        head = ""
        if self._header_pending:
            self._header_pending = False
            head = fmt.column_separator.join(batch.schema.names) + fmt.record_separator
        cols = text_columns(batch.rows, width)
        for i, col in enumerate(cols):
            cols[i] = self._column(col, batch.schema.names[i], batch)
        if not batch.rows:
            return head.encode(fmt.encoding)
        lines = fmt.record_separator.join(map(fmt.column_separator.join, zip(*cols, strict=True)))
        return (head + lines + fmt.record_separator).encode(fmt.encoding)

    def _column(self, col: list[Any], name: str, batch: RowBatch) -> list[str]:
        null = self.fmt.null
        has_none = None in col
        values = [null if v is None else v for v in col] if has_none else col
        joined = _JOIN.join(v for v, orig in zip(values, col, strict=True) if orig is not None)
        if not any(s in joined for s in self._specials):
            return values
        if not self._pairs:
            for k, v in enumerate(col):
                if v is not None and any(s in v for s in self._specials):
                    raise BadDataError(
                        f"column {name!r}: value {v[:40]!r} holds a separator and this "
                        "format has no escape character",
                        location=None, line=(batch.first_line or 1) + k if batch.first_line
                        else None)
            return values
        if _JOIN in joined:
            return [v if o is None else self._escape(v) for v, o in zip(values, col, strict=True)]
        for old, new in self._pairs:
            joined = joined.replace(old, new)
        escaped = iter(joined.split(_JOIN))
        return [v if o is None else next(escaped) for v, o in zip(values, col, strict=True)]

    def _escape(self, value: str) -> str:
        for old, new in self._pairs:
            value = value.replace(old, new)
        return value

    def finish(self) -> bytes:
        if self._header_pending and self.fmt.columns:
            self._header_pending = False
            return (self.fmt.column_separator.join(c.name for c in self.fmt.columns)
                    + self.fmt.record_separator).encode(self.fmt.encoding)
        return b""
