"""PostgreSQL COPY: the options that render a TextFormat, and loading a table from a byte
stream or from row batches (values coerced to the target columns' types).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg

from connectors.base import BytesIn, Progress, RowBatch, RowsIn, TextFormat
from connectors.errors import BadDataError
from connectors.sql import (
    convert_placeholders,
    first_line,
    is_utf8,
    next_batch,
    quote_ident,
    target_columns,
)

from ._errors import COPY_CONTEXT
from ._guard import TextGuard
from ._marker import EndMarkerQuoter
from ._types import pg_coercer, pg_column_fits


def copy_options(fmt: TextFormat, *, loading: bool) -> dict[str, Any] | None:
    """asyncpg COPY keyword options rendering ``fmt``, or None when COPY cannot."""
    if not is_utf8(fmt):
        return None
    if len(fmt.column_separator) != 1 or fmt.column_separator in "\r\n\\":
        return None
    allowed_records = ("\n", "\r\n") if loading else ("\n",)
    if fmt.record_separator not in allowed_records:
        return None
    if any(ch in fmt.null for ch in "\r\n") or fmt.column_separator in fmt.null:
        return None
    if fmt.kind == "csv":
        if fmt.quote is None or len(fmt.quote) != 1 or fmt.quote == fmt.column_separator:
            return None
        if fmt.escape_char is not None and len(fmt.escape_char) != 1:
            return None
        if fmt.quote in fmt.null:
            return None
        opts: dict[str, Any] = {"format": "csv", "delimiter": fmt.column_separator,
                                "null": fmt.null, "quote": fmt.quote, "header": fmt.header}
        if fmt.escape_char is not None:
            opts["escape"] = fmt.escape_char
        return opts
    if fmt.kind in ("tsv", "custom"):
        if fmt.quote is not None or fmt.escape_char != "\\" or fmt.header:
            return None
        return {"format": "text", "delimiter": fmt.column_separator, "null": fmt.null}
    return None


def quoted(name: str) -> str:
    """``name`` as a quoted PostgreSQL identifier."""
    return quote_ident(name, "postgresql")


def copy_count(status: str) -> int:
    parts = status.split()
    return int(parts[-1]) if parts and parts[-1].isdigit() else 0


async def copy_stream_in(conn: asyncpg.Connection, table: str, schema: str | None,
                         inp: BytesIn, opts: dict[str, Any], progress: Progress, *,
                         fmt: TextFormat | None = None, columns: Sequence[str] = (),
                         where: str = "") -> str:
    """``COPY table FROM STDIN`` fed from ``inp`` until end-of-stream; returns the status.

    Given the stream's ``fmt`` (and the table's ``columns``, for errors), each chunk first
    passes :class:`EndMarkerQuoter` (a data line COPY would take for its end marker) and
    :class:`TextGuard` (NUL and invalid UTF-8 refused naming the column).
    """
    marker = EndMarkerQuoter(fmt) if fmt is not None else None
    guard = TextGuard(fmt, columns, where=where) if fmt is not None else None

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in inp:
            progress.add(nbytes=len(chunk))
            if marker is not None and guard is not None:
                chunk = marker.feed(chunk)
                guard.check(chunk)
            if chunk:
                yield chunk
        if marker is not None and guard is not None:
            tail = marker.finish()
            guard.check(tail)
            if tail:
                yield tail

    return str(await conn.copy_to_table(table, schema_name=schema, source=chunks(), **opts))


async def table_columns(conn: asyncpg.Connection, table: str,
                          schema: str | None) -> list[tuple[str, str]]:
    target = f"{quote_ident(schema, 'postgresql')}." if schema else ""
    stmt = await conn.prepare(f"SELECT * FROM {target}{quote_ident(table, 'postgresql')}")
    return [(a.name, a.type.name) for a in stmt.get_attributes()]


def coercers_for(types: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    return [pg_coercer(t) for t in types]


def coerce_row(row: Sequence[Any], coercers: Sequence[Callable[[Any], Any] | None],
                names: Sequence[str], line: int) -> tuple[Any, ...]:
    if len(row) != len(coercers):
        raise BadDataError(f"expected {len(coercers)} values, got {len(row)}", line=line)
    out = []
    for i, (value, fix) in enumerate(zip(row, coercers, strict=True)):
        if fix is None or value is None:
            out.append(value)
            continue
        try:
            out.append(fix(value))
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise BadDataError(f"column {names[i]}: {exc}", line=line, column=i + 1) from None
    return tuple(out)


def _coerce_batch(rows: list[tuple[Any, ...]], coercers: Sequence[Callable[[Any], Any] | None],
                  types: Sequence[str], names: Sequence[str],
                  base: int) -> list[tuple[Any, ...]]:
    """Coerce only the columns of ``rows`` holding a value of a type that does not fit.

    Checking the set of types per column is far cheaper than a Python call per value, and
    rows from a typed source (another database) usually need no conversion at all.
    """
    width = len(coercers)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise BadDataError(f"expected {width} values, got {len(row)}", line=base + i)
    needed = [fix if fix is not None and not pg_column_fits(types[c], [r[c] for r in rows])
              else None for c, fix in enumerate(coercers)]
    if not any(needed):
        return rows
    return [coerce_row(r, needed, names, base + i) for i, r in enumerate(rows)]


async def copy_rows_in(conn: asyncpg.Connection, table: str, schema: str | None,
                       first: RowBatch, inp: RowsIn, progress: Progress) -> str:
    """Binary ``COPY`` of row batches (``first``, then the rest of ``inp``) into a table."""
    target = await table_columns(conn, table, schema)
    by_name = dict(target)
    columns = target_columns(first.schema.names, [n for n, _ in target])
    types = [by_name[c] for c in columns]
    coercers = coercers_for(types)
    # One binary COPY per batch: asyncpg encodes a list in its compiled loop, while an async
    # generator would cost a Python round trip per row; all COPYs share the transaction.
    number = 0
    batch: RowBatch | None = first
    while batch is not None:
        base = first_line(batch, number)
        rows = _coerce_batch(batch.rows, coercers, types, columns, base)
        try:
            await conn.copy_records_to_table(table, schema_name=schema, columns=columns,
                                             records=rows)
        except asyncpg.PostgresError as exc:
            _locate_in_batch(exc, base)
            raise
        number += len(rows)
        progress.add(rows=len(rows))
        batch = await next_batch(inp)
    return f"COPY {number}"


def _locate_in_batch(exc: asyncpg.PostgresError, base: int) -> None:
    """Make COPY's ``line N`` (counted within one batch) a source line number."""
    context = getattr(exc, "context", None) or ""
    m = COPY_CONTEXT.search(context)
    if m:
        line = base + int(m.group(1)) - 1
        exc.context = context[:m.start(1)] + str(line) + context[m.end(1):]


async def insert_batches(conn: asyncpg.Connection, insert_query: str, first: RowBatch,
                          inp: RowsIn, progress: Progress) -> None:
    sql, count = convert_placeholders(insert_query, "postgresql")
    stmt = await conn.prepare(sql)
    params = stmt.get_parameters()
    coercers = coercers_for([p.name for p in params])
    types = [p.name for p in params]
    names = [f"${i + 1}" for i in range(count)]
    batch: RowBatch | None = first
    number = 0
    while batch is not None:
        base = first_line(batch, number)
        rows = _coerce_batch(batch.rows, coercers, types, names, base)
        await stmt.executemany(rows)
        number += len(rows)
        progress.add(rows=len(rows))
        batch = await next_batch(inp)
