"""One incremental copy, for ``headrace copy --incremental`` and a CopyActivity's
``incrementalColumn``: the previous watermark found, the source restricted to what is past
it, the sink told to merge and to commit the new watermark with the rows, the copy run.

Where the watermark lives (see :mod:`connectors.incremental`): a PostgreSQL or MySQL target
keeps it in its ``headrace_checkpoints`` row, written in the load's transaction; for a file or
S3 (or DynamoDB) output it is the store's, written only after the output completed (the
caller does that: ``Store.record_copy_run``). The store also gets a copy of a SQL target's,
after the commit, so ``headrace describe-copy`` and ``list-runs`` can show every copy's
watermark and rows moved. The runs of one copy take turns under a lease in the store
(:func:`one_at_a_time`), or two at once would read the same watermark.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio

from connectors.base import CommitsWatermark, Progress, Sink, Source
from connectors.copy import CopyOptions, CopyResult, copy
from connectors.errors import ConfigError, root_cause
from connectors.sql import (
    Dialect,
    IncrementalSource,
    IncrementSpec,
    SqlSource,
    Watermark,
    check_column,
    condition,
    quote_ident,
)
from engine.errors import ScheduleError
from engine.schedule import parse_lookback as lookback_period


def copy_key(source: str, dest: str, column: str) -> str:
    """A command-line copy's key: its source, destination and column (display forms, so
    no password is part of it)."""
    digest = hashlib.sha256(f"{source}\n{dest}\n{column}".encode()).hexdigest()[:32]
    return f"copy:{digest}"


def activity_key(pipeline_id: str, activity_id: str) -> str:
    return f"activity:{pipeline_id}/{activity_id}"


def increment_folder(run: int) -> str:
    """The folder run ``run`` of an incremental copy to files or S3 writes, below the
    destination: earlier increments stay, and a rerun after a crash before the store noted
    the run writes the same folder again."""
    return f"increment-{run:06d}/"


def parse_lookback(text: str | None, name: str = "--lookback") -> timedelta | None:
    """``30s``, ``5m``, ``1h``, ``2d`` or an AWS period (``5 minutes``); ``name`` is what an
    error calls the value (the flag, or an object's field)."""
    if text is None or not str(text).strip():
        return None
    try:
        return lookback_period(str(text))
    except ScheduleError as exc:
        raise ConfigError(f"{name} {exc}") from None


#: How long a copy's lease lasts unless renewed (every third of it while the copy runs).
LEASE_SECONDS = 30.0


class CopyLeases(Protocol):
    """The store's leases (:meth:`engine.store.Store.acquire_lease`)."""

    async def acquire_lease(self, name: str, owner: str, expires_at: datetime,
                            now: datetime, *, steal_from: Iterable[str] = ()) -> str | None: ...

    async def release_lease(self, name: str, owner: str) -> None: ...


class CopyLeaseLost(ConfigError):
    """Another run of the copy took over its lease (this one stalled past the expiry)."""


def lease_owner(label: str) -> str:
    """``label@host:pid``: whose run of a copy holds its lease; a dead process's on this host
    is taken over at once (:func:`one_at_a_time`)."""
    return f"{label}@{socket.gethostname()}:{os.getpid()}"


def _dead_here(holder: str) -> bool:
    where, _, pid = holder.rpartition(":")
    if where.rpartition("@")[2] != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@asynccontextmanager
async def one_at_a_time(leases: CopyLeases, key: str, owner: str, now: Callable[[], datetime],
                        on_wait: Callable[[str], Awaitable[None]] | None = None,
                        ) -> AsyncIterator[None]:
    """Hold the lease of copy ``key`` while the body runs, waiting while another run of it
    holds it: two runs of one incremental copy at once (a CopyActivity's instances of a
    backfill, two commands) would both read the same watermark and load its rows twice. The
    lease is renewed while held; if another run took it over, the body is cancelled and
    :class:`CopyLeaseLost` raised (nothing it loaded is committed)."""
    name = f"increment:{key}"
    told = False
    while True:
        t = now()
        holder = await leases.acquire_lease(name, owner, t + timedelta(seconds=LEASE_SECONDS),
                                            t)
        if holder is None:
            break
        if _dead_here(holder):
            holder = await leases.acquire_lease(
                name, owner, t + timedelta(seconds=LEASE_SECONDS), t, steal_from=[holder])
            if holder is None:
                break
        if not told and on_wait is not None:
            await on_wait(holder)
            told = True
        await anyio.sleep(0.5)

    async def keep() -> None:
        while True:
            await anyio.sleep(LEASE_SECONDS / 3)
            t = now()
            holder = await leases.acquire_lease(
                name, owner, t + timedelta(seconds=LEASE_SECONDS), t)
            if holder is not None:
                raise CopyLeaseLost(f"another run of this incremental copy ({holder}) took "
                                    "over its lease while this one stalled; stopped here")

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(keep)
            yield
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise root_cause(group) from None
    finally:
        with anyio.CancelScope(shield=True):
            await leases.release_lease(name, owner)


@dataclass
class IncrementalResult:
    result: CopyResult
    previous: Watermark | None
    state: Watermark
    skipped: int

    def as_json(self) -> dict[str, Any]:
        return {"column": self.state.column,
                "previousWatermark": self.previous.display if self.previous else None,
                "watermark": self.state.display, "rowsMoved": self.result.rows,
                "rereadSkipped": self.skipped}


async def previous_state(key: str, sink: Sink, stored: str | None) -> Watermark | None:
    """The watermark to continue from: a SQL target's own row, else the store's."""
    text = await sink.stored_watermark(key) if isinstance(sink, CommitsWatermark) else stored
    return Watermark.from_json(text) if text else None


async def run_incremental(source: Source, sink: Sink, spec: IncrementSpec, key: str, *,
                          stored: str | None, options: CopyOptions | None = None,
                          progress: Progress | None = None) -> IncrementalResult:
    """Copy the rows of ``source`` past the watermark under ``key``; ``stored`` is the
    store's state for it (used when the sink keeps none itself)."""
    if not isinstance(source, SqlSource):
        raise ConfigError(f"{source.describe}: an incremental copy reads a PostgreSQL or "
                          "MySQL table or query")
    dialect: Dialect = "mysql" if type(source).__module__.startswith("connectors.mysql") \
        else "postgresql"
    schema = await source.schema()
    if schema is None:
        raise ConfigError(f"{source.describe}: the source's columns are unknown")
    query = bool(source.endpoint.select_query)
    # a query's rows need not be the table's: its primary key is not theirs
    keys = spec.key or (() if query else await source.primary_key())  # type: ignore[attr-defined]
    column = check_column(schema, spec, keys, source.describe, query=query)
    if spec.merge:
        if not isinstance(sink, CommitsWatermark) and \
                not type(sink).__module__.startswith("connectors.dynamodb"):
            raise ConfigError(f"{sink.describe}: --key merges rows (upsert), which PostgreSQL, "
                              "MySQL and DynamoDB destinations do; append to this one "
                              "(leave --key out)")
        if isinstance(sink, CommitsWatermark):
            sink.merge_keys = tuple(spec.key)
    previous = await previous_state(key, sink, stored)
    if previous is not None and previous.column != column.name:
        raise ConfigError(f"the watermark under this copy is for column {previous.column!r}, "
                          f"not {column.name!r}")
    source.restrict(condition(previous, spec, keys, quote_ident(column.name, dialect),
                              dialect))
    reader = IncrementalSource(source, spec, keys, column, previous)
    if isinstance(sink, CommitsWatermark):
        sink.commit_watermark(key, reader.state.to_json)
    result = await copy(reader, sink, options, progress)
    return IncrementalResult(result, previous, reader.state, reader.skipped)


async def describe_copies(store_url: str | None, key: str | None) -> list[dict[str, Any]]:
    """The store's incremental copies (``headrace describe-copy``); with ``key``, that one
    with every run."""
    from engine.errors import NotFound
    from engine.store import open_store

    async with open_store(store_url, create=False) as store:
        records = [r for r in await store.list_copies() if key is None or r.copy_key == key]
        if key is not None and not records:
            raise NotFound(f"no incremental copy {key!r} in this store")
        out = []
        for r in records:
            entry: dict[str, Any] = {
                "copyKey": r.copy_key, "source": r.source, "dest": r.dest,
                "column": r.column, "watermark": Watermark.from_json(r.state).display,
                "rowsMoved": r.rows_moved, "runs": r.runs, "updatedAt": r.updated_at}
            if key is not None:
                entry["history"] = [
                    {"run": run, "rowsMoved": rows, "watermark": mark, "finishedAt": at}
                    for run, rows, mark, at in await store.copy_runs(r.copy_key)]
            out.append(entry)
    return out
