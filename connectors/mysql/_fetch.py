"""Taking a streaming (unbuffered) result off an asyncmy connection without letting it pile up
in memory, and the per-column fixes of the rows lane; shared by whole and partitioned reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import ColumnType
from connectors.sql import ROWS_PER_BATCH

from ._lines import Kind


async def fetch_gated(conn: Any, cur: Any) -> AsyncIterator[Sequence[Any]]:
    """``cur.fetchmany`` batches, with the socket read only while a fetch is running.

    asyncmy's protocol copies everything the server sends into one buffer that grows without
    limit and never pauses its transport, so while the copy waits on a slower sink the rest of
    the result set piled up in memory (peak RSS grew with the row count: 640 MB at 2M rows,
    benchmarks/README.md). Pausing the transport between fetches leaves the data in the
    kernel's socket buffer, and TCP flow control then holds the server back.
    """
    transport = getattr(conn, "_transport", None)
    try:
        while True:
            if transport is not None:
                transport.resume_reading()
            rows = await cur.fetchmany(ROWS_PER_BATCH)
            if transport is not None:
                transport.pause_reading()
            if not rows:
                return
            yield rows
    finally:
        if transport is not None and not transport.is_closing():
            transport.resume_reading()


def _bit_to_int(v: Any) -> Any:
    return int.from_bytes(v, "big") if isinstance(v, bytes) else v


def _to_bool(v: Any) -> Any:
    if isinstance(v, bytes):
        return int.from_bytes(v, "big") != 0
    return bool(v)


def _utc(v: Any) -> Any:
    return v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v


def row_fixes(columns: Sequence[tuple[str, Kind, ColumnType]]) -> list[tuple[int, Any]]:
    """Per-column conversions of the rows lane: BIT/TINYINT(1) -> bool, TIMESTAMP -> UTC."""
    fixes: list[tuple[int, Any]] = []
    for i, (_, kind, logical) in enumerate(columns):
        if logical == "boolean":
            fixes.append((i, _to_bool))
        elif kind == "bit":
            fixes.append((i, _bit_to_int))
        elif logical == "timestamptz":
            fixes.append((i, _utc))
    return fixes


def fix_rows(rows: Sequence[Sequence[Any]], fixes: list[tuple[int, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for r in rows:
        values = list(r)
        for i, fix in fixes:
            if values[i] is not None:
                values[i] = fix(values[i])
        out.append(tuple(values))
    return out
