"""Reading S3 objects by byte ranges: resumed when a body breaks off, parallel, in order.

Each range GET carries ``If-Match`` (the listing's ETag), so an object that changes mid-read
fails instead of mixing versions; a body that ends early is resumed from the first byte not yet
delivered. :meth:`Ranges.stream` delivers the ranges of many objects strictly in order with at
most ``parallel + 1`` held in memory; :meth:`Ranges.fetch_into` writes one object's ranges at
their offsets as they arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from connectors import aws
from connectors.aws import full_jitter
from connectors.base import BytesOut, Progress, TextFormat
from connectors.errors import (
    ConnectionLost,
    TerminalFault,
    TimedOut,
    TransientError,
    single_failure,
)
from connectors.formats import FileJoiner, Gunzip

from ._parallel import each_at_most
from ._url import CONNECTOR, S3Object, note_retries

READ_PIECE = 1024 * 1024

#: A direct download hands a range's pieces on in batches of about this many bytes.
WRITE_BATCH = 8 * 1024 * 1024
#: ... and, by default, asks for ranges of this size: its memory is WRITE_BATCH per range in
#: flight whatever the range's size, and every GET costs ~3-4 ms of botocore CPU (1 GiB in
#: 5 MiB ranges: 205 requests, 0.7 s of the copy's CPU; in 16 MiB ranges: 64).
DIRECT_RANGE = 16 * 1024 * 1024

Deliver = Callable[[int, bytes], Awaitable[None]]
WritePieces = Callable[..., Awaitable[None]]  # (offset, *pieces)


def read_in_pieces(body: Any) -> None:
    """Let the HTTP client buffer a whole READ_PIECE before it pauses the socket.

    aiohttp pauses reading at 128 KiB buffered by default, so ``read(1 MiB)`` returned a
    fraction of that and every piece cost a round through the event loop (and, for a file,
    a thread hop). ``set_read_chunk_size`` is aiohttp's own knob for consumers with big reads.
    """
    raw = getattr(body, "raw_stream", None)
    content = getattr(raw, "content", None)
    setter = getattr(content, "set_read_chunk_size", None)
    if setter is not None:
        setter(READ_PIECE)
    # asyncio's socket transports recv() at most 256 KiB at a time (``max_size``), so a
    # body cost four trips through the loop, the HTTP parser and the reader per READ_PIECE;
    # on loopback the socket usually holds more. The connection goes back to the pool as it
    # is: a larger recv() changes nothing for the next request on it.
    transport = getattr(getattr(raw, "connection", None), "transport", None)
    if transport is not None and getattr(transport, "max_size", READ_PIECE) < READ_PIECE:
        transport.max_size = READ_PIECE


@dataclass
class _Range:
    """One range of one object, filled by a fetch task, delivered in order."""

    obj: S3Object
    start: int
    end: int
    first: bool
    last: bool
    done: anyio.Event = field(default_factory=anyio.Event)
    #: The range's bytes as they came off the wire (sent on as they are: no joining copy).
    pieces: list[bytes] = field(default_factory=list)

    async def take(self, _offset: int, piece: bytes) -> None:
        self.pieces.append(piece)


@dataclass(frozen=True)
class Ranges:
    """How one source reads: its bucket (for objects that name none), the range size, the
    ranges in flight and the attempts one range gets."""

    bucket: str
    chunk_size: int
    parallel: int
    attempts: int
    #: The range size of :meth:`fetch_into` (0: ``chunk_size``).
    direct_range: int = 0

    def _location(self, obj: S3Object) -> str:
        return f"s3://{obj.bucket or self.bucket}/{obj.key}"

    async def read(self, client: Any, obj: S3Object, start: int, end: int, progress: Progress,
                   deliver: Deliver) -> None:
        """Hand bytes [start, end) of ``obj`` to ``deliver(offset, piece)`` as they arrive.

        A body that breaks off is resumed from the first byte not yet delivered, so every byte
        is delivered exactly once; one that stops (``read_timeout``) fails the read. Errors of
        ``deliver`` itself are not retried here.
        """
        pos = start
        failures = 0
        bucket = obj.bucket or self.bucket
        target = self._location(obj)
        while pos < end:
            try:
                with aws.map_errors(CONNECTOR, "get", target):
                    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": obj.key,
                                              "Range": f"bytes={pos}-{end - 1}"}
                    if obj.etag:
                        kwargs["IfMatch"] = obj.etag
                    resp = await client.get_object(**kwargs)
                    note_retries(resp, progress, "s3-get")
                    async with resp["Body"] as body:
                        read_in_pieces(body)
                        while True:
                            piece = await body.read(READ_PIECE)
                            if not piece:
                                break
                            if pos + len(piece) > end:
                                raise TerminalFault(
                                    f"{target}: the server sent more than the range asked for",
                                    connector=CONNECTOR, operation="get")
                            await deliver(pos, piece)
                            pos += len(piece)
                if pos < end:
                    raise ConnectionLost(f"{target}: the body ended at byte {pos} of {end}",
                                         connector=CONNECTOR, operation="get")
            except TimedOut:
                raise  # a silent server: the attempt fails now (its retries decide), no resume
            except TransientError:
                failures += 1
                if failures >= self.attempts:
                    raise
                progress.retried("s3-get-resume")
                await anyio.sleep(full_jitter(failures, base=0.1, cap=5.0))

    async def fetch_into(self, client: Any, obj: S3Object, progress: Progress,
                         write: WritePieces) -> None:
        """Every range of ``obj`` (``direct_range`` bytes each), ``parallel`` at a time, to
        ``write(offset, *pieces)`` (no ordering, so nothing waits on a slow range).

        A range's pieces are gathered until ``WRITE_BATCH`` bytes (or the range's end) and
        handed on together: one gathering write and one thread hop per batch rather than per
        socket read, and no joining copy."""
        async def fetch(start: int) -> None:
            pending: list[bytes] = []
            held = 0
            at = start  # where pending's first byte goes: pieces arrive in order

            async def flush() -> None:
                nonlocal held, at
                pieces = tuple(pending)
                pending.clear()
                base, at, held = at, at + held, 0
                await write(base, *pieces)

            async def take(_offset: int, piece: bytes) -> None:
                nonlocal held
                pending.append(piece)
                held += len(piece)
                if held >= WRITE_BATCH:
                    await flush()

            await self.read(client, obj, start, min(start + span, obj.size), progress, take)
            if pending:
                await flush()

        span = self.direct_range or self.chunk_size
        await each_at_most(self.parallel, range(0, obj.size, span), fetch)

    async def stream(self, client: Any, objects: AsyncIterator[S3Object], fmt: TextFormat,
                     out: BytesOut, progress: Progress,
                     gzipped: Callable[[str], bool]) -> None:
        """The objects' bytes, in order, to ``out``: each a whole number of records of ``fmt``
        (``gzipped(key)`` says which to decompress)."""
        send, recv = anyio.create_memory_object_stream[_Range](self.parallel)
        limiter = anyio.CapacityLimiter(self.parallel)
        try:
            with single_failure():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._schedule, client, objects, send, tg, limiter, progress)
                    await self._deliver(recv, fmt, out, progress, gzipped)
        finally:
            send.close()
            recv.close()

    async def _schedule(self, client: Any, objects: AsyncIterator[S3Object],
                        send: Any, tg: TaskGroup, limiter: anyio.CapacityLimiter,
                        progress: Progress) -> None:
        async for obj in objects:
            size = obj.size
            bounds = [(a, min(a + self.chunk_size, size))
                      for a in range(0, size, self.chunk_size)] or [(0, 0)]
            for i, (a, b) in enumerate(bounds):
                job = _Range(obj, a, b, first=i == 0, last=i == len(bounds) - 1)
                await send.send(job)  # blocks while `parallel` ranges wait: bounded memory
                tg.start_soon(self._fetch, client, job, limiter, progress)
        await send.aclose()

    async def _fetch(self, client: Any, job: _Range, limiter: anyio.CapacityLimiter,
                     progress: Progress) -> None:
        if job.end > job.start:
            async with limiter:
                await self.read(client, job.obj, job.start, job.end, progress, job.take)
        job.done.set()

    async def _deliver(self, recv: Any, fmt: TextFormat, out: BytesOut, progress: Progress,
                       gzipped: Callable[[str], bool]) -> None:
        joiner = FileJoiner(fmt)
        gunzip: Gunzip | None = None
        async for job in recv:
            await job.done.wait()
            pieces, job.pieces = job.pieces, []
            if job.first:
                joiner.start()
                gunzip = Gunzip(location=self._location(job.obj)) \
                    if gzipped(job.obj.key) else None
            for data in pieces:
                progress.add(nbytes=len(data))
                if gunzip is not None:
                    data = await anyio.to_thread.run_sync(gunzip.feed, data) \
                        if len(data) > 256 * 1024 else gunzip.feed(data)
                for piece in joiner.feed(data):
                    await out.send(piece)
            if job.last and gunzip is not None:
                for piece in joiner.feed(gunzip.finish()):
                    await out.send(piece)
