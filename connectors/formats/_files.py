"""What the file-like ends (local files and directories, S3 objects and prefixes) share: a
format from the name, gzip from the name, files joined into one record stream, a directory
(prefix) written as ``part-NNNNN.<ext>`` parts cut at record boundaries, and rows encoded to
bytes for the bytes lane."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from connectors.base import CSV, BytesIn, Progress, RowBatch, RowsIn, Schema, TextFormat
from connectors.errors import ConfigError

from ._codecs import encoder_for
from ._framing import Framer
from ._names import format_for_path, same_layout
from .compression import Gzip


def is_gzip(name: str, compression: str | None, *, connector: str | None = None) -> bool:
    """``compression`` when given (gzip or none), else whether ``name`` ends with ``.gz``."""
    if compression is None:
        return name.endswith(".gz")
    if compression not in ("gzip", "none"):
        raise ConfigError(f"compression {compression!r} is not supported; use gzip or none",
                          connector=connector)
    return compression == "gzip"


class NamedFormat:
    """Base of file-like sources and sinks: holds the format and answers from it."""

    _fmt: TextFormat
    #: No format was given and the name implies none: the bytes are not known to be records
    #: (a direct copy may move them without counting any).
    opaque: bool

    def _set_format(self, name: str, fmt: TextFormat | None) -> None:
        implied = format_for_path(name)
        self._fmt = fmt or implied or CSV
        self.opaque = fmt is None and implied is None

    @property
    def native_format(self) -> TextFormat:
        return self._fmt

    async def schema(self) -> Schema | None:
        return Schema(self._fmt.columns) if self._fmt.columns else None


class NamedFormatSource(NamedFormat):
    def can_produce(self, fmt: TextFormat) -> bool:
        # Parquet files cannot be joined into one stream: the end reads them as rows
        return fmt.kind != "parquet" and same_layout(fmt, self._fmt)


class NamedFormatSink(NamedFormat):
    def can_consume(self, fmt: TextFormat) -> bool:
        return same_layout(fmt, self._fmt)


class FileJoiner:
    """Joins several files (or objects) into one record stream.

    A separator goes between two files when the first does not end with one; with ``header``
    set, the first record of every file after the first is dropped.
    """

    def __init__(self, fmt: TextFormat) -> None:
        self._sep = fmt.record_separator.encode(fmt.encoding)
        self._header = fmt.header
        self._index = -1
        self._skip = False
        self._first = True
        self._ends_clean = True

    def start(self) -> None:
        """The next bytes fed belong to a new file."""
        self._index += 1
        self._skip = self._header and self._index > 0
        self._first = True

    def feed(self, data: bytes) -> list[bytes]:
        if self._skip:
            cut = data.find(self._sep)
            if cut < 0:
                return []
            data = data[cut + len(self._sep):]
            self._skip = False
        if not data:
            return []
        out = []
        if self._first and not self._ends_clean:
            out.append(self._sep)
        self._first = False
        self._ends_clean = data.endswith(self._sep)
        out.append(data)
        return out


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
                      open_part: Callable[[str], Awaitable[Part]]) -> None:
    """Write ``inp`` as parts opened by ``open_part(name)`` (``part-00000.csv``...: see
    :func:`part_name`); a new part starts once the
    current one holds ``part_bytes`` (uncompressed) and a record ends, so no record spans two
    parts. Each part is finished (not committed) here. Parquet is one part, uncut and
    uncompressed (its bytes are one file, compressed inside)."""
    if fmt.kind == "parquet":
        part: Part | None = None
        async for chunk in inp:
            progress.add(nbytes=len(chunk))
            if part is None:
                part = await open_part(part_name(0, fmt, False))
            await part.write(chunk)
        if part is not None:
            await part.finish()
        return
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
            current = await open_part(part_name(opened, fmt, gzip))
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
