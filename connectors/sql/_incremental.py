"""Incremental copies: read only the rows past a copy's last committed watermark.

:class:`IncrementalSource` wraps a PostgreSQL or MySQL table source (or a query's, read as a
derived table: :meth:`connectors.sql._base.SqlSource.restrict`). It reads the rows whose
incremental column is past the previous watermark (the whole table the first time), keeps
track of the new one (the largest value it read) and of the keys of the rows it loaded near
it, and hands the rest of the copy ordinary row batches. What the copy then commits with the
rows is :meth:`IncrementalSource.state`: a PostgreSQL or MySQL sink writes it in the load's
own transaction (the ``headrace_checkpoints`` row), a file or S3 output has it written to the
store after it completed (``engine``), so a crash between load and watermark neither loses
nor repeats rows.

The boundary, where other tools lose or repeat rows:

* Rows sharing the watermark value, some committed after the last run read it: with a key
  (``--key``, else the table's primary key), the read starts *at* the watermark (``>=``) and
  the rows already loaded there are recognised by key and skipped (append), or merged
  (``--key``: upsert). Without any key it starts strictly after it (``>``): rows committed
  later with exactly that value are then not seen (docs/compatibility.md).
* Rows committed late with an older value: ``lookback`` (a period) starts the read that much
  before the watermark; rows re-read inside it are matched by key, so a look-back without a
  key is an error.
* Time zones: a ``timestamptz`` (MySQL ``TIMESTAMP``) watermark is an instant, kept in UTC;
  a ``timestamp`` (``DATETIME``) one is compared as the wall time it is.
* NULL in the column: such a row has no place in the order, so it is never read (no
  comparison with NULL is true); give the column a NOT NULL constraint or a default.
* A column whose type has no useful order (boolean, json, binary) is an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio

from connectors.base import (
    Column,
    ColumnType,
    Progress,
    RowBatch,
    RowsOut,
    Schema,
    TextFormat,
)
from connectors.errors import ConfigError

#: The logical types a watermark can be kept in.
ORDERABLE: frozenset[ColumnType] = frozenset(
    {"integer", "bigint", "numeric", "double", "date", "timestamp", "timestamptz", "text"})
_TIMES: frozenset[ColumnType] = frozenset({"date", "timestamp", "timestamptz"})


@dataclass(frozen=True)
class IncrementSpec:
    """What ``--incremental COLUMN [--key COLUMNS] [--lookback PERIOD]`` asks for."""

    column: str
    key: tuple[str, ...] = ()
    lookback: timedelta | None = None

    @property
    def merge(self) -> bool:
        """An explicit key merges (upsert); without one, rows are appended."""
        return bool(self.key)


def encode_value(value: Any) -> Any:
    """A watermark value as JSON (instants in UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def decode_value(raw: Any, kind: ColumnType) -> Any:
    if raw is None:
        return None
    if kind == "timestamptz":
        v = datetime.fromisoformat(raw)
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if kind == "timestamp":
        return datetime.fromisoformat(raw).replace(tzinfo=None)
    if kind == "date":
        return date.fromisoformat(raw)
    if kind == "numeric":
        return Decimal(raw)
    if kind == "double":
        return float(raw)
    if kind in ("integer", "bigint"):
        return int(raw)
    return str(raw)


def _key_text(values: Sequence[Any]) -> str:
    return json.dumps([encode_value(v) for v in values], separators=(",", ":"), default=str)


@dataclass
class Watermark:
    """A copy's committed position: the largest value loaded, and the keys (with their
    values) of the rows loaded at or near it, which a later read that starts there skips.

    ``since`` is how far back ``near`` is complete: it holds the key of every row loaded with
    a value at or after ``since`` (after, when ``since_open``). A later read never starts
    before it, whatever its look-back, or it would load rows again whose keys were not kept
    (a look-back larger than the last run's, a table that has gained a primary key). None:
    no keys kept (a keyless or merging copy)."""

    column: str
    kind: ColumnType
    value: Any = None
    rows: int = 0
    near: dict[str, Any] = field(default_factory=dict)
    since: Any = None
    since_open: bool = False

    def to_json(self) -> str:
        return json.dumps({"column": self.column, "type": self.kind,
                           "value": encode_value(self.value), "rows": self.rows,
                           "near": {k: encode_value(v) for k, v in self.near.items()},
                           "since": encode_value(self.since), "sinceOpen": self.since_open},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Watermark:
        raw = json.loads(text)
        kind = raw["type"]
        near = {k: decode_value(v, kind) for k, v in (raw.get("near") or {}).items()}
        if "since" in raw:
            since = decode_value(raw["since"], kind)
        else:  # written before ``since`` was kept: the kept keys reach back this far at least
            since = min(near.values()) if near else None
        return cls(raw["column"], kind, decode_value(raw.get("value"), kind),
                   int(raw.get("rows") or 0), near, since, bool(raw.get("sinceOpen")))

    @property
    def display(self) -> str | None:
        """The value as text, for describe-copy and ``--output json``."""
        value = encode_value(self.value)
        return None if value is None else str(value)


def check_column(schema: Schema, spec: IncrementSpec, key: Sequence[str],
                 where: str, *, query: bool = False) -> Column:
    """The incremental column of ``schema``, or a clear error: missing, not orderable, a
    look-back on a column that is not a time, a look-back without a key. ``query``: the
    source is a query, whose result the column and the key must be in (it has no primary
    key: a look-back needs ``--key``)."""
    by_name = {c.name: c for c in schema.columns}
    column = by_name.get(spec.column)
    if column is None:
        what = "the query's result has" if query else "there is"
        raise ConfigError(f"{where}: {what} no column {spec.column!r} to copy incrementally "
                          f"by (columns: {', '.join(schema.names)})")
    if column.type not in ORDERABLE:
        raise ConfigError(f"{where}: column {spec.column!r} is {column.type}, which has no "
                          "order to keep a watermark in; use a timestamp, date, number or "
                          "text column")
    missing = [k for k in key if k not in by_name]
    if missing:
        place = "the query's result" if query else "the source"
        raise ConfigError(f"{where}: key columns {missing} are not in {place} "
                          f"(columns: {', '.join(schema.names)})")
    if spec.lookback is not None:
        if column.type not in _TIMES:
            raise ConfigError(f"{where}: --lookback needs a date or timestamp column; "
                              f"{spec.column!r} is {column.type}")
        if not key:
            whose = "a query has no primary key" if query else "the source has no primary key"
            raise ConfigError(f"{where}: --lookback re-reads rows, which are matched by key, "
                              f"but {whose} and no --key (incrementalKey) was given")
    return column


def literal(value: Any, kind: ColumnType, dialect: str) -> str:
    """``value`` as a SQL literal of ``kind`` for ``dialect`` (postgresql or mysql)."""
    if kind in ("integer", "bigint"):
        return str(int(value))
    if kind in ("numeric", "double"):
        return format(Decimal(str(value)), "f")
    if isinstance(value, datetime):
        if kind == "timestamptz":
            value = value.astimezone(UTC)
        text = value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        if dialect == "postgresql":
            return f"'{text}+00'::timestamptz" if kind == "timestamptz" else \
                f"'{text}'::timestamp"
        return f"'{text}'"  # MySQL sessions run in UTC (TIMESTAMP columns read as UTC)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    text = str(value)
    if dialect == "mysql" and ("\\" in text or any(ord(c) < 32 for c in text)):
        return f"_utf8mb4 X'{text.encode('utf-8').hex()}'"
    return "'" + text.replace("'", "''") + "'"


def condition(previous: Watermark | None, spec: IncrementSpec, key: Sequence[str],
              quoted_column: str, dialect: str) -> str | None:
    """The WHERE condition of the next read: everything the first time; after the watermark
    without a key; from the watermark (less the look-back) with one, an appending copy never
    further back than its kept keys reach (:attr:`Watermark.since`)."""
    if previous is None or previous.value is None:
        return f"{quoted_column} IS NOT NULL"

    def where(op: str, value: Any) -> str:
        return f"{quoted_column} {op} {literal(value, previous.kind, dialect)}"

    if not key:
        return where(">", previous.value)
    low = previous.value
    if spec.lookback is not None:
        try:
            low = low - spec.lookback
        except OverflowError:  # before the first representable time: from the start
            low = None
    if spec.merge:  # rows re-read are upserted again: any look-back is safe
        return f"{quoted_column} IS NOT NULL" if low is None else where(">=", low)
    if previous.since is None:  # no keys kept (a keyless or merging copy before)
        return where(">", previous.value)
    if low is not None and low > previous.since:
        return where(">=", low)
    return where(">" if previous.since_open else ">=", previous.since)


class IncrementalSource:
    """A SQL table source restricted to the rows past ``previous`` (see the module)."""

    def __init__(self, inner: Any, spec: IncrementSpec, key: Sequence[str],
                 column: Column, previous: Watermark | None) -> None:
        self.inner = inner
        self.describe: str = inner.describe
        self.spec = spec
        self.key = tuple(key)
        self.column = column
        self.previous = previous
        self.state = Watermark(column.name, column.type,
                               previous.value if previous else None,
                               0, dict(previous.near) if previous else {},
                               previous.since if previous else None,
                               previous.since_open if previous else False)
        #: how far back the keys carried over from ``previous`` are complete (see
        #: :attr:`Watermark.since`): the previous ``since``, or, when it kept none, its
        #: value (open: rows loaded at it are not among the keys)
        self._carried: tuple[Any, bool] | None = None
        if previous is not None and previous.value is not None:
            self._carried = (previous.since, previous.since_open) \
                if previous.since is not None else (previous.value, True)
        #: rows read again inside the look-back (or at the watermark) and skipped by key
        self.skipped = 0

    @property
    def native_format(self) -> TextFormat | None:
        return None

    def can_produce(self, fmt: TextFormat) -> bool:
        return False  # rows only: each is looked at

    async def schema(self) -> Schema | None:
        result: Schema | None = await self.inner.schema()
        return result

    async def produce_bytes(self, fmt: TextFormat, out: Any, progress: Progress) -> None:
        raise ConfigError(f"{self.describe}: an incremental copy reads rows")

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        send, recv = anyio.create_memory_object_stream[RowBatch](2)

        async def read() -> None:
            async with send:
                await self.inner.produce_rows(send, progress)

        async with anyio.create_task_group() as tg, recv:
            tg.start_soon(read)
            async for batch in recv:
                kept = self._take(batch)
                if kept.rows:
                    await out.send(kept)
        self._prune()  # a read of no rows moves ``since`` too (the look-back may have grown)

    def _take(self, batch: RowBatch) -> RowBatch:
        names = batch.schema.names
        col = names.index(self.column.name)
        keys = [names.index(k) for k in self.key]
        prev = self.previous
        append = not self.spec.merge
        kept = []
        for row in batch.rows:
            value = row[col]
            if value is None:
                continue
            key = _key_text([row[i] for i in keys]) if keys else None
            if append and prev is not None and prev.value is not None and key is not None \
                    and value <= prev.value and key in prev.near:
                self.skipped += 1
                continue
            kept.append(row)
            self._advance(value, key)
        self.state.rows += len(kept)
        self._prune()
        return RowBatch(batch.schema, kept, first_line=batch.first_line)

    def _advance(self, value: Any, key: str | None) -> None:
        state = self.state
        if state.value is None or value > state.value:
            state.value = value
        if key is not None and not self.spec.merge and value >= self._near_bound():
            state.near[key] = value  # pruned once per batch, when the bound has moved

    def _near_bound(self) -> Any:
        value = self.state.value
        if self.spec.lookback is None:
            return value
        try:
            return value - self.spec.lookback
        except OverflowError:  # within the look-back of the first representable time
            return type(value).min.replace(tzinfo=value.tzinfo) \
                if isinstance(value, datetime) else type(value).min

    def _prune(self) -> None:
        """Keep only the keys a later read can meet again (at or inside the look-back, and
        not before :attr:`Watermark.since`), and move ``since``."""
        state = self.state
        if not self.key or self.spec.merge or state.value is None:
            state.since, state.since_open = None, False
            return
        since, since_open = self._near_bound(), False
        if self._carried is not None:
            carried, carried_open = self._carried
            if carried > since or (carried == since and carried_open):
                since, since_open = carried, carried_open
        state.since, state.since_open = since, since_open
        near = state.near
        if near and min(near.values()) < since:
            state.near = {k: v for k, v in near.items() if v >= since}
