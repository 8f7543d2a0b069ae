"""Reading a local file or directory: every regular file below it in path order as one
stream (gzip decompressed by name), or one file at any offset for a direct copy."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio

from connectors.base import (
    BytesOut,
    EndpointOptions,
    Progress,
    RangeReader,
    RowsOut,
    Schema,
    TextFormat,
    Total,
)
from connectors.errors import NotFoundError, TerminalFault
from connectors.formats import (
    FileJoiner,
    Gunzip,
    NamedFormatSource,
    ParquetInput,
    decoder_for,
    is_gzip,
    produce_parquet_rows,
    read_parquet_schema,
)
from connectors.timeouts import ReportingBody

from ._atomic import CONNECTOR, Files, os_error
from ._special import STDIO, is_readable_special, open_for_reading
from ._url import path_from_url

#: Bytes per read (see :func:`source_from_url`).
DEFAULT_CHUNK = 1024 * 1024


def _open_binary(path: Path) -> BinaryIO:
    return open_for_reading(path)


class _FileRanges:
    """An open file read by offset (``os.pread``) in worker threads."""

    def __init__(self, fh: BinaryIO, files: Files, name: str) -> None:
        self._fd = fh.fileno()
        self._files = files
        self._name = name
        self.size = os.fstat(self._fd).st_size

    async def read_at(self, offset: int, length: int) -> io.BytesIO:
        try:
            body, got = await self._files.run(self._read_into, offset, length)
        except OSError as exc:
            raise os_error(exc, self._name, "read") from exc
        if got != length:
            raise TerminalFault(f"{self._name}: the file changed size while it was read "
                                 f"(byte {offset + got} of {self.size})",
                                 connector=CONNECTOR, operation="read")
        return body

    def _read_into(self, offset: int, length: int) -> tuple[io.BytesIO, int]:
        """Read straight into the BytesIO's own buffer (no intermediate bytes object); one that
        reports its reads, so an upload of it that stalls is bounded."""
        body = ReportingBody()
        if length:
            body.seek(length - 1)
            body.write(b"\0")  # sizes the buffer
        got = 0
        with body.getbuffer() as view:
            while got < length:
                if hasattr(os, "preadv"):
                    n = os.preadv(self._fd, [view[got:]], offset + got)
                else:  # platforms without preadv: one more copy
                    data = os.pread(self._fd, length - got, offset + got)
                    n = len(data)
                    view[got:got + n] = data
                if n == 0:
                    break
                got += n
        body.seek(0)
        return body, got


class LocalSource(NamedFormatSource):
    """A local file or directory as a copy source; ``-`` is stdin, and a FIFO or a device is
    read as one stream (see :mod:`._special`)."""

    def __init__(self, path: str, fmt: TextFormat | None = None, *,
                 compression: str | None = None, chunk_size: int = DEFAULT_CHUNK) -> None:
        self.path = Path(path)
        self.describe = "stdin" if path == STDIO else str(path)
        self._set_format(path, fmt)
        self._compression = compression
        is_gzip(str(path), compression)
        self._chunk = max(4096, chunk_size)
        self._files = Files()

    def _list(self) -> list[Path]:
        if str(self.path) == STDIO or self.path.is_file() or is_readable_special(self.path):
            return [self.path]
        if self.path.is_dir():
            found = []
            for p in self.path.rglob("*"):
                rel = p.relative_to(self.path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if p.is_file():
                    found.append(p)
            return sorted(found, key=lambda p: p.relative_to(self.path).as_posix())
        raise NotFoundError(f"{self.path}: no such file or directory", connector=CONNECTOR,
                            operation="read")

    async def total(self) -> Total | None:
        """The bytes to read: the sizes of the regular files (none for stdin, a FIFO or a
        device, or when a file is decompressed, as its size is not what is read)."""
        if str(self.path) == STDIO:
            return None

        def size() -> int | None:
            paths = self._list()
            if any(is_gzip(str(p), self._compression) or not p.is_file() for p in paths):
                return None
            return sum(p.stat().st_size for p in paths)

        nbytes = await self._files.run(size)
        return None if nbytes is None else Total(bytes=nbytes)

    async def files(self) -> list[Path]:
        """The files this source reads, in order."""
        return await self._files.run(self._list)

    @asynccontextmanager
    async def open_ranges(self, *, compressed: bool) -> AsyncIterator[RangeReader | None]:
        """The one file this source names, open for reads at any offset (a direct copy).

        Yields None when that is not a byte-for-byte copy: a directory, or a file whose
        compression is not ``compressed``.
        """
        if str(self.path) == STDIO or not await self._files.run(self.path.is_file) or \
                is_gzip(str(self.path), self._compression) != compressed:
            yield None
            return
        try:
            fh = await self._files.run(_open_binary, self.path)
        except OSError as exc:
            raise os_error(exc, str(self.path), "open") from exc
        try:
            yield _FileRanges(fh, self._files, str(self.path))
        finally:
            with anyio.CancelScope(shield=True):
                await self._files.run(fh.close)

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        async with aclosing(self._joined(fmt)) as pieces:
            async for piece in pieces:
                progress.add(nbytes=len(piece))
                await out.send(piece)

    async def _joined(self, fmt: TextFormat) -> AsyncGenerator[bytes, None]:
        """Every file's bytes (decompressed by name) joined into one record stream of ``fmt``."""
        joiner = FileJoiner(fmt)
        for path in await self.files():
            joiner.start()
            gunzip = Gunzip(location=str(path)) if is_gzip(str(path), self._compression) \
                else None
            async with aclosing(self._read(path, gunzip)) as chunks:
                async for data in chunks:
                    for piece in joiner.feed(data):
                        yield piece

    async def _read(self, path: Path, gunzip: Gunzip | None) -> AsyncGenerator[bytes, None]:
        try:
            fh = await self._files.run(_open_binary, path)
        except OSError as exc:
            raise os_error(exc, str(path), "open") from exc
        try:
            while True:
                try:
                    data = await self._files.run(fh.read, self._chunk)
                except OSError as exc:
                    raise os_error(exc, str(path), "read") from exc
                if not data:
                    break
                if gunzip is not None:
                    data = await self._files.run(gunzip.feed, data)
                if data:
                    yield data
            if gunzip is not None:
                tail = gunzip.finish()
                if tail:
                    yield tail
        finally:
            with anyio.CancelScope(shield=True):
                await self._files.run(fh.close)

    async def schema(self) -> Schema | None:
        if self._fmt.kind == "parquet" and not self._fmt.columns:
            paths = await self.files()
            if not paths:
                return None
            return await read_parquet_schema(str(paths[0]), lambda: str(paths[0]))
        return await super().schema()

    async def _parquet_files(self) -> AsyncIterator[ParquetInput]:
        for path in await self.files():
            yield str(path), functools.partial(str, path)

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        if self._fmt.kind == "parquet":
            await produce_parquet_rows(self._parquet_files(), out, progress)
            return
        decoder = decoder_for(self._fmt, location=self.describe, schema=await self.schema())
        async with aclosing(self._joined(self._fmt)) as pieces:
            async for piece in pieces:
                for batch in await self._files.run(decoder.feed, piece):
                    await out.send(batch)
        for batch in decoder.finish():
            await out.send(batch)


def source_from_url(url: str, options: EndpointOptions) -> LocalSource:
    path = path_from_url(url)
    # Reads of 1 MiB: the copy's link then holds a few MiB, not stream_depth x 8 MiB (peak RSS
    # of a 1 GiB file -> S3 copy, benchmarks/README.md), at no cost in throughput.
    return LocalSource(path, options.format, compression=options.compression,
                       chunk_size=min(options.chunk_size, DEFAULT_CHUNK))
