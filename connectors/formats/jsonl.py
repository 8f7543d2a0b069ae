"""JSON lines: one object per line, keyed by column name.

Columns come from the format's declared columns (other keys are ignored) or, when none are
declared, from the keys of the first object (a later object with a key outside them is a bad
record: declare the columns to read sparse data). A missing key reads as NULL. Numbers with a
fraction read as ``Decimal`` so nothing is lost on the way to a ``numeric`` column.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from connectors.base import Column, RowBatch, Schema, TextFormat
from connectors.errors import BadDataError

from ._decoder import TextDecoder
from .values import json_default


class JsonLinesDecoder(TextDecoder):
    def __init__(self, fmt: TextFormat, **kwargs: Any) -> None:
        super().__init__(fmt, **kwargs)
        self._loads = json.JSONDecoder(parse_float=Decimal).decode
        self._strict_keys = not fmt.columns

    def _object(self, line: str, lineno: int) -> dict[str, Any] | None:
        try:
            obj = self._loads(line)
        except json.JSONDecodeError as exc:
            self._bad(f"invalid JSON ({exc.msg})", line=lineno, raw=line, column=exc.colno)
            return None
        if not isinstance(obj, dict):
            self._bad(f"expected a JSON object, found {type(obj).__name__}", line=lineno,
                      raw=line)
            return None
        return obj

    def _values(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def _fields_of(self, line: str) -> list[Any]:
        """A record's values by column, for naming the one with invalid bytes (none when the
        record is not an object of the columns)."""
        try:
            parsed: Any = self._loads(line)
            obj = self._values(parsed) if isinstance(parsed, dict) else None
        except (ValueError, KeyError, TypeError):
            return []
        if obj is None:
            return []
        names = self.schema.names if self.schema is not None else tuple(obj)
        return [obj.get(k) for k in names]

    def _parse(self, text: str, first_line: int, tainted: bool) -> None:
        rows, row_lines = self._rows, self._row_lines
        for i, line in enumerate(text.split("\n")):
            if not line.strip():
                continue
            lineno = first_line + i
            if tainted and self._tainted(line):
                self._bad_encoding(line=lineno, raw=line, fields=self._fields_of(line))
                continue
            obj = self._object(line, lineno)
            if obj is None:
                continue
            try:
                obj = self._values(obj)
            except (KeyError, ValueError, TypeError) as exc:
                self._bad(f"invalid item ({exc})", line=lineno, raw=line)
                continue
            if self.schema is None:
                self.schema = Schema(tuple(Column(k) for k in obj))
            names = self.schema.names
            if self._strict_keys and len(obj) and not obj.keys() <= set(names):
                extra = sorted(set(obj) - set(names))
                self._bad(f"key {extra[0]!r} is not one of the columns {list(names)} taken "
                          "from the first record (declare the columns to read sparse data)",
                          line=lineno, raw=line)
                continue
            get = obj.get
            rows.append(tuple([get(k) for k in names]))
            row_lines.append(lineno)


class JsonLinesEncoder:
    def __init__(self, fmt: TextFormat) -> None:
        self.fmt = fmt
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                       default=json_default, allow_nan=False).encode

    def _record(self, names: tuple[str, ...], row: tuple[Any, ...]) -> Any:
        return dict(zip(names, row, strict=True))

    def encode(self, batch: RowBatch) -> bytes:
        names = batch.schema.names
        dumps, record = self._dumps, self._record
        out = []
        for k, row in enumerate(batch.rows):
            try:
                out.append(dumps(record(names, row)))
            except (TypeError, ValueError) as exc:
                line = (batch.first_line + k) if batch.first_line else None
                raise BadDataError(f"cannot write row as JSON: {exc}", line=line) from exc
        if not out:
            return b""
        out.append("")
        return "\n".join(out).encode(self.fmt.encoding)

    def finish(self) -> bytes:
        return b""
