"""What the file-like sinks (local files, S3 objects) share: a directory (prefix) written as
``part-NNNNN.<ext>`` parts cut at record boundaries, and rows encoded to bytes for the
byte lane."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from connectors.base import BytesIn, Progress, RowBatch, RowsIn, TextFormat
from connectors.formats import Framer, Gzip, encoder_for

#: A part's name: ``part-`` and five digits, then the format's extension.
PART_RE = re.compile(r"^part-\d{5}\.")


def part_name(index: int, fmt: TextFormat, gzip: bool) -> str:
    """``part-00000.csv`` (``.gz`` appended when compressed) for part ``index``."""
    return f"part-{index:05d}.{fmt.extension}" + (".gz" if gzip else "")


class Part(Protocol):
    """One part being written."""

    async def write(self, data: bytes) -> None: ...
    async def finish(self) -> None: ...


async def write_parts(fmt: TextFormat, inp: BytesIn, progress: Progress, *, location: str,
                      part_bytes: int, gzip: bool,
                      open_part: Callable[[int], Awaitable[Part]]) -> None:
    """Write ``inp`` as parts opened by ``open_part(index)``; a new part starts once the
    current one holds ``part_bytes`` (uncompressed) and a record ends, so no record spans two
    parts. Each part is finished (not committed) here."""
    enc = fmt.encoding
    quote = fmt.quote.encode(enc) if (fmt.kind == "csv" and fmt.quote) else None
    framer = Framer(fmt.record_separator.encode(enc), quote, location=location)
    current: Part | None = None
    gz: Gzip | None = None
    opened = 0
    written = 0

    async def write(data: bytes) -> None:
        nonlocal current, gz, opened, written
        if current is None:
            current = await open_part(opened)
            opened += 1
            gz = Gzip() if gzip else None
            written = 0
        await current.write(gz.feed(data) if gz else data)
        written += len(data)

    async def close() -> None:
        nonlocal current
        if current is not None:
            if gz is not None:
                await current.write(gz.finish())
            await current.finish()
            current = None

    async for chunk in inp:
        progress.add(nbytes=len(chunk))
        run = framer.feed(chunk)
        if run:
            await write(run)
            if written >= part_bytes:
                await close()
    tail = framer.finish(check=False)
    if tail:
        await write(tail)
    await close()


Encode = Callable[[RowBatch], bytes]


async def consume_rows_as_bytes(
        fmt: TextFormat, inp: RowsIn, progress: Progress,
        consume_bytes: Callable[[TextFormat, BytesIn, Progress], Awaitable[None]],
        run: Callable[[Encode, RowBatch], Awaitable[bytes]]) -> None:
    """Encode row batches as ``fmt`` (each batch through ``run``, which puts the work in a
    thread) and feed the bytes to ``consume_bytes`` over a small bounded stream."""
    encoder = encoder_for(fmt)
    send, recv = anyio.create_memory_object_stream[bytes](2)

    async def encode() -> None:
        async with inp:
            async for batch in inp:
                data = await run(encoder.encode, batch)
                if data:
                    await send.send(data)
        tail = encoder.finish()
        if tail:
            await send.send(tail)
        await send.aclose()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(encode)
            await consume_bytes(fmt, recv, progress)
    finally:
        send.close()
        recv.close()
