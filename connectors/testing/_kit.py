"""A conformance kit for connectors, and in-memory ends for testing the copy engine.

Every connector's tests can call:

* :func:`check_round_trip` - N rows in through the sink, the same N rows out through a source;
* :func:`check_abort_leaves_nothing` - a copy cancelled mid-stream leaves nothing visible;
* :func:`check_clogged_sink` - while the consumer stalls, the source stops reading (its
  read-ahead stays bounded) and, once unclogged, delivers everything in order.

:class:`MemorySource` and :class:`MemorySink` are real Source/Sink implementations over Python
lists, used to test the copy engine itself (they are not stand-ins for any server).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio

from connectors.base import (
    BytesIn,
    BytesOut,
    Progress,
    RowBatch,
    RowsIn,
    RowsOut,
    Schema,
    Sink,
    Source,
    TextFormat,
)
from connectors.copy import CopyOptions, copy
from connectors.errors import root_cause
from connectors.formats import same_layout


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class MemorySource:
    """Rows (``produce_rows``) or encoded bytes in one format (``produce_bytes``).

    ``gate``: when set, the source stops before sending item number ``gate_after`` and waits for
    the event (to hold a copy mid-stream). ``sent`` counts items handed to the stream.
    """

    def __init__(self, schema: Schema, rows: Sequence[tuple[Any, ...]] = (), *,
                 data: bytes | None = None, fmt: TextFormat | None = None,
                 chunk_size: int = 64 * 1024, batch_rows: int = 100,
                 gate: anyio.Event | None = None, gate_after: int = 0,
                 describe: str = "memory-source") -> None:
        self._schema = schema
        self.rows = list(rows)
        self.data = data
        self._fmt = fmt
        self.chunk_size = chunk_size
        self.batch_rows = batch_rows
        self.gate = gate
        self.gate_after = gate_after
        self.describe = describe
        self.sent = 0
        #: Set when the source reached ``gate_after`` items and waits for ``gate``.
        self.at_gate = anyio.Event()

    @property
    def native_format(self) -> TextFormat | None:
        return self._fmt if self.data is not None else None

    def can_produce(self, fmt: TextFormat) -> bool:
        return self.data is not None and same_layout(fmt, self._fmt)

    async def schema(self) -> Schema | None:
        return self._schema

    async def _send(self, out: Any, item: Any) -> None:
        if self.gate is not None and self.sent == self.gate_after:
            self.at_gate.set()
            await self.gate.wait()
        await out.send(item)
        self.sent += 1

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        assert self.data is not None
        for i in range(0, len(self.data), self.chunk_size):
            piece = self.data[i:i + self.chunk_size]
            progress.add(nbytes=len(piece))
            await self._send(out, piece)

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        if self.data is not None:
            raise NotImplementedError("a bytes MemorySource is read through the copy's decoder")
        for i in range(0, len(self.rows), self.batch_rows):
            batch = RowBatch(self._schema, self.rows[i:i + self.batch_rows], i + 1)
            progress.add(rows=len(batch.rows))
            await self._send(out, batch)


class MemorySink:
    """Collects what it receives; makes it visible (``committed``) only at end-of-stream.

    ``fmt`` set: a bytes sink for that format; else a rows sink. ``delay`` seconds are spent per
    item received (a slow sink). ``aborted`` is set when the copy cancelled it.
    """

    def __init__(self, fmt: TextFormat | None = None, *, delay: float = 0.0,
                 describe: str = "memory-sink", schema: Schema | None = None) -> None:
        self._fmt = fmt
        self.delay = delay
        self.describe = describe
        self._schema = schema
        self.received = 0
        self.committed_rows: list[tuple[Any, ...]] | None = None
        self.committed_bytes: bytes | None = None
        self.aborted = False

    @property
    def native_format(self) -> TextFormat | None:
        return self._fmt

    def can_consume(self, fmt: TextFormat) -> bool:
        return same_layout(fmt, self._fmt)

    async def schema(self) -> Schema | None:
        return self._schema

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return self.committed_rows or []

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        pending: list[bytes] = []
        try:
            async for chunk in inp:
                self.received += 1
                pending.append(chunk)
                if self.delay:
                    await anyio.sleep(self.delay)
        except BaseException:
            self.aborted = True
            raise
        self.committed_bytes = b"".join(pending)

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        pending: list[tuple[Any, ...]] = []
        try:
            async for batch in inp:
                self.received += 1
                pending.extend(batch.rows)
                if self.delay:
                    await anyio.sleep(self.delay)
        except BaseException:
            self.aborted = True
            raise
        self.committed_rows = pending


async def check_round_trip(make_sink: Callable[[], Sink | Awaitable[Sink]],
                           make_source: Callable[[], Source | Awaitable[Source]],
                           rows: Sequence[tuple[Any, ...]], schema: Schema, *,
                           ordered: bool = True,
                           normalize: Callable[[tuple[Any, ...]], Any] | None = None) -> None:
    """Write ``rows`` through ``make_sink()``, read them back through ``make_source()``."""
    sink = await _resolve(make_sink())
    await copy(MemorySource(schema, rows), sink)
    source = await _resolve(make_source())
    back = MemorySink(schema=schema)
    await copy(source, back)
    norm = normalize or (lambda r: r)
    expected = [norm(tuple(r)) for r in rows]
    got = [norm(tuple(r)) for r in back.rows]
    if not ordered:
        expected.sort(key=repr)
        got.sort(key=repr)
    assert got == expected, (
        f"round trip through {sink.describe}/{source.describe} changed the rows: "
        f"{len(expected)} in, {len(got)} out; first difference at "
        f"{next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), None)}")


async def check_abort_leaves_nothing(make_sink: Callable[[], Sink | Awaitable[Sink]],
                                     observe: Callable[[], Awaitable[Iterable[Any] | int | None]],
                                     rows: Sequence[tuple[Any, ...]], schema: Schema, *,
                                     data: bytes | None = None,
                                     fmt: TextFormat | None = None) -> None:
    """Cancel a copy after half the input went into the sink; ``observe()`` must find nothing.

    ``observe`` returns what is visible at the destination (rows, objects, a count); any
    non-empty answer fails the check. Give ``data``/``fmt`` to feed a bytes sink.
    """
    sink = await _resolve(make_sink())
    gate = anyio.Event()
    if data is not None:
        chunk = max(1, len(data) // 4)
        source = MemorySource(schema, data=data, fmt=fmt, chunk_size=chunk, gate=gate,
                              gate_after=2)
    else:
        source = MemorySource(schema, rows, batch_rows=max(1, len(rows) // 4), gate=gate,
                              gate_after=2)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(copy, source, sink, CopyOptions(stream_depth=1))
            with anyio.fail_after(30):
                await source.at_gate.wait()
            await anyio.sleep(0.2)  # let the sink take what was sent
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise root_cause(group) from None
    visible = await observe()
    if isinstance(visible, int):
        assert visible == 0, f"{sink.describe}: {visible} items visible after an aborted copy"
    else:
        found = list(visible or [])
        assert not found, f"{sink.describe}: visible after an aborted copy: {found[:5]}"


async def check_clogged_sink(make_source: Callable[[], Source | Awaitable[Source]], *,
                             fmt: TextFormat | None = None, depth: int = 2,
                             hold: float = 0.5, max_read_ahead_bytes: int,
                             expected: bytes | None = None) -> None:
    """Stall the consumer; the source must stop reading while it is stalled.

    The source sends into a stream of ``depth`` slots that nobody reads for ``hold`` seconds
    after the first item. During the stall, what the source reported reading
    (``Progress.bytes``, or rows for a rows source) may exceed what the consumer took by at most
    ``max_read_ahead_bytes`` (its own buffers plus the stream's slots). Then the consumer
    resumes and must receive everything (``expected`` when given).
    """
    source = await _resolve(make_source())
    progress = Progress()
    send, recv = anyio.create_memory_object_stream[Any](depth)
    received: list[Any] = []
    finished = anyio.Event()

    async def produce() -> None:
        if fmt is not None:
            await source.produce_bytes(fmt, send, progress)
        else:
            await source.produce_rows(send, progress)
        finished.set()
        await send.aclose()

    def size(items: list[Any]) -> int:
        return sum(len(x) if isinstance(x, bytes) else len(x.rows) for x in items)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            with anyio.fail_after(60):
                received.append(await recv.receive())
            await anyio.sleep(hold)
            read_during_stall = progress.bytes if fmt is not None else progress.rows
            ahead = read_during_stall - size(received)
            async for item in recv:
                received.append(item)
    except BaseExceptionGroup as group:
        raise root_cause(group) from None
    finally:
        send.close()
        recv.close()
    assert ahead <= max_read_ahead_bytes, (
        f"{source.describe}: read {ahead} ahead of a stalled consumer "
        f"(bound {max_read_ahead_bytes})")
    if expected is not None:
        assert b"".join(received) == expected, f"{source.describe}: data changed in transit"
