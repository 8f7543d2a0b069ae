"""Content checksums for ``--verify``: what a copy read and what its destination holds.

Two kinds of figures, by the destination:

* ``rows`` (PostgreSQL, MySQL): the count and a content checksum of the rows. The source's
  figures are taken by the copy as the rows leave the source (the bytes lane's records are
  decoded for it); the destination's by a query over the rows the load wrote, inside the
  load's transaction, before it commits. The checksum is order-free: the sum (mod 2**64) of a
  64-bit BLAKE2b hash of each row's canonical text, so the two ends need not agree on row
  order. Canonical text makes equal values equal whatever their spelling: numbers by value
  (``1.50`` = ``1.5``), timestamps as the UTC instant, booleans as 1/0, JSON with sorted keys,
  binary as hex; text read from a text format is first read as the destination column's type.
* ``bytes`` (files, S3): the SHA-256 of the bytes the sink wrote, as it wrote them, against
  the same figure read back from storage (a local temp file, re-read before the rename) or the
  object's stored checksum (S3: the MD5 the server computed of each part, as its ETag, against
  ours). The rows are the records the sink wrote.

The copy compares the two (``connectors.copy``); a mismatch fails it naming both figures while
the sink is still inside its transaction (or before completing its upload, or its rename).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import ColumnType, RowBatch, Schema

_MASK = (1 << 64) - 1
_NULL = "\x00N"
_TRUE = frozenset({"t", "true", "1", "y", "yes", "on"})


# --- canonical rows ---------------------------------------------------------------------------

def _number_text(d: Decimal) -> str:
    if not d.is_finite():
        return str(d)
    d = d.normalize()
    return "0" if d.is_zero() else format(d, "f")


def _instant(v: datetime) -> str:
    if v.tzinfo is not None:
        v = v.astimezone(UTC).replace(tzinfo=None)
    return v.isoformat(sep=" ", timespec="microseconds")


def _value_text(v: Any) -> str:
    """Canonical text of a typed value (see the module docstring)."""
    if v is None:
        return _NULL
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return _number_text(v)
    if isinstance(v, float):
        return _number_text(Decimal(repr(v))) if v == v and abs(v) != float("inf") \
            else repr(v)
    if isinstance(v, datetime):
        return _instant(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return str(v)


def _from_text(text: str, kind: ColumnType) -> Any:
    """A value read from text as a column of ``kind`` would store it (the text itself when
    it does not read as one: the load would have failed on it anyway)."""
    s = text.strip()
    try:
        if kind in ("integer", "bigint", "numeric", "double"):
            return Decimal(s)
        if kind == "boolean":
            return s.lower() in _TRUE
        if kind in ("timestamptz", "timestamp"):
            return datetime.fromisoformat(s)  # (3.11: "Z", "+00" and a space all read)
        if kind == "date":
            return date.fromisoformat(s[:10])
        if kind == "json":
            return json.loads(text)
        if kind == "binary":
            return bytes.fromhex(s[2:]) if s.startswith("\\x") else text.encode("utf-8")
    except (ValueError, InvalidOperation):
        return text
    return text


class RowChecksum:
    """The order-free checksum of rows, read as the columns of ``schema`` (by position)."""

    def __init__(self, schema: Schema | None = None) -> None:
        self.rows = 0
        self._sum = 0
        self._kinds: list[ColumnType] = [c.type for c in schema.columns] if schema else []

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        kinds = self._kinds
        total = self._sum
        for row in rows:
            parts = []
            for i, v in enumerate(row):
                if isinstance(v, str) and i < len(kinds) and kinds[i] != "text":
                    v = _from_text(v, kinds[i])
                parts.append(_value_text(v))
            digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"),
                                     digest_size=8).digest()
            total = (total + int.from_bytes(digest, "big")) & _MASK
        self._sum = total
        self.rows += len(rows)

    def add(self, batch: RowBatch) -> None:
        self.add_rows(batch.rows)

    def checksum(self) -> str:
        return f"{self._sum:016x}"

    def minus(self, earlier: RowChecksum) -> tuple[int, str]:
        """(rows, checksum) of what was added since ``earlier`` (a sum is subtractable)."""
        return self.rows - earlier.rows, f"{(self._sum - earlier._sum) & _MASK:016x}"
