"""Local files: ``file:///abs/path``, ``file://relative`` or a plain path; a file or a directory.

Reading a directory reads every regular file below it, in path order, as one stream (names
starting with ``.`` are skipped; with ``header`` set, the first line of every file after the
first is dropped; a file that does not end with the record separator gets one).

Writing is atomic per file: bytes go to ``.<name>.headrace-tmp-<random>`` in the same directory,
which is fsynced and renamed over the final name only when the input ended normally; on failure
or cancellation the temp is removed (shielded), and temps left by a killed process are removed
by the next write to the same name. ENOSPC raises :class:`DiskFull` with the path and the bytes
written. A destination ending in ``/`` (or an existing directory) receives parts
``part-00000.<ext>``, ``part-00001.<ext>``...: a new part starts once the current one holds
``part_bytes`` (default 128 MiB), always at a record boundary. Parts are committed together at
the end, and older ``part-NNNNN.*`` files the write did not produce are removed then, so a rerun
with less data leaves no stale part behind. ``.gz`` names (or ``compression="gzip"``) are
gzip-compressed on write and decompressed on read.

Blocking file calls run in worker threads through a per-connector CapacityLimiter.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

import anyio

from connectors.base import (
    BytesIn,
    BytesOut,
    EndpointOptions,
    Progress,
    RangeReader,
    RowsIn,
    RowsOut,
    Source,
    TextFormat,
)
from connectors.errors import ConfigError, ConnectorError, DiskFull, NotFoundError
from connectors.fileformat import NamedFormatSink, NamedFormatSource
from connectors.filesink import PART_RE, consume_rows_as_bytes, part_name, write_parts
from connectors.formats import (
    Gunzip,
    Gzip,
    decoder_for,
    same_layout,
)

CONNECTOR = "file"
TEMP_MARK = ".headrace-tmp-"
DEFAULT_PART_BYTES = 128 * 1024 * 1024
DEFAULT_CHUNK = 1024 * 1024
#: An atomic file being written starts going to the disk each time this many more bytes
#: arrived (:func:`_flush_behind`), so its fsync at commit waits for the tail only.
FLUSH_BEHIND_EVERY = 64 * 1024 * 1024
R = TypeVar("R")


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Files we write get the usual mode (0666 less the umask), not mkstemp's 0600.
_FILE_MODE = 0o666 & ~_read_umask()


def path_from_url(url: str) -> str:
    """``file:///a/b`` -> ``/a/b``; ``file://rel/x`` -> ``rel/x``; a plain path stays as is."""
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != "localhost":
            return unquote(parts.netloc + parts.path)
        return unquote(parts.path)
    return url


def _is_gzip(path: str, compression: str | None) -> bool:
    if compression is None:
        return path.endswith(".gz")
    if compression not in ("gzip", "none"):
        raise ConfigError(f"compression {compression!r} is not supported; use gzip or none")
    return compression == "gzip"


def _os_error(exc: OSError, path: str, operation: str, written: int | None = None) -> Exception:
    if exc.errno == errno.ENOSPC:
        where = f" after {written} bytes written" if written is not None else ""
        return DiskFull(f"{path}: no space left on device{where}", connector=CONNECTOR,
                        operation=operation)
    if exc.errno == errno.ENOENT:
        return NotFoundError(f"{path}: no such file or directory", connector=CONNECTOR,
                             operation=operation)
    return ConnectorError(f"{path}: {exc.strerror or exc}", connector=CONNECTOR,
                          operation=operation)


class _Files:
    """Runs blocking calls in threads, one limiter per connector."""

    def __init__(self, threads: int = 2) -> None:
        self._threads = threads
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., R], *args: Any) -> R:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._threads)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)


def _remove_stale_temps(directory: Path, name_glob: str) -> None:
    for stale in directory.glob(f".{name_glob}{TEMP_MARK}*"):
        with suppress(FileNotFoundError):
            stale.unlink()


def _flush_behind(fd: int) -> None:
    """Start writing the file's dirty pages to the disk now, and drop the pages already there.

    ``posix_fadvise(DONTNEED)`` starts writeback without waiting for it and frees clean pages,
    so the fsync before the rename waits for the tail only, and the copy does not fill the
    page cache with a file nobody reads back (measured on a 1 GiB download: the final fsync
    went from ~0.6 s to ~0.3 s and the writes themselves got faster; an fdatasync here instead
    blocked the writer). Not every platform has it; there the fsync at the end does it all.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


class AtomicFile:
    """A file that appears under its final name only on :meth:`commit`."""

    def __init__(self, path: str | os.PathLike[str], files: _Files | None = None) -> None:
        self.path = Path(path)
        self.written = 0
        self._scheduled = 0  # bytes handed to write_at, written or not yet
        self._files = files or _Files()
        self._fh: BinaryIO | None = None
        self._temp: Path | None = None

    def _open(self) -> None:
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(parent, self.path.name)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}{TEMP_MARK}", dir=parent)
        self._temp = Path(temp)
        os.fchmod(fd, _FILE_MODE)
        self._fh = os.fdopen(fd, "wb")

    async def open(self) -> None:
        try:
            await self._files.run(self._open)
        except OSError as exc:
            raise _os_error(exc, str(self.path), "open") from exc

    async def write(self, data: bytes) -> None:
        if not data:
            return
        assert self._fh is not None
        flush = self._crosses_flush_mark(len(data))
        try:
            await self._files.run(self._write_then_flush if flush else self._fh.write, data)
        except OSError as exc:
            raise _os_error(exc, str(self.path), "write", self.written) from exc
        self.written += len(data)

    async def write_at(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (pwrite), for writers that fill a file out of order
        (several may call this at once)."""
        if not data:
            return
        assert self._fh is not None
        flush = self._crosses_flush_mark(len(data))
        self._scheduled += len(data)
        try:
            await self._files.run(self._pwrite, data, offset, flush)
        except OSError as exc:
            raise _os_error(exc, str(self.path), "write", self.written) from exc
        self.written += len(data)

    def _crosses_flush_mark(self, size: int) -> bool:
        done = max(self.written, self._scheduled)
        return done // FLUSH_BEHIND_EVERY != (done + size) // FLUSH_BEHIND_EVERY

    def _write_then_flush(self, data: bytes) -> None:
        assert self._fh is not None
        self._fh.write(data)
        self._fh.flush()
        _flush_behind(self._fh.fileno())

    def _pwrite(self, data: bytes, offset: int, flush: bool) -> None:
        assert self._fh is not None
        fd = self._fh.fileno()
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
        if flush:
            _flush_behind(fd)

    def _finish(self) -> None:
        assert self._fh is not None and self._temp is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None

    async def finish(self) -> None:
        """Flush and fsync the temp (it is complete, not yet visible)."""
        try:
            await self._files.run(self._finish)
        except OSError as exc:
            raise _os_error(exc, str(self.path), "write", self.written) from exc

    def _rename(self) -> None:
        assert self._temp is not None
        os.replace(self._temp, self.path)
        self._temp = None
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def commit(self) -> None:
        if self._fh is not None:
            await self.finish()
        try:
            await self._files.run(self._rename)
        except OSError as exc:
            raise _os_error(exc, str(self.path), "rename", self.written) from exc

    def _abort(self) -> None:
        if self._fh is not None:
            with suppress(OSError):
                self._fh.close()
            self._fh = None
        if self._temp is not None:
            with suppress(FileNotFoundError):
                self._temp.unlink()
            self._temp = None

    async def abort(self) -> None:
        """Remove the temp; safe to call twice and from a cancelled scope (shields itself)."""
        with anyio.CancelScope(shield=True):
            await self._files.run(self._abort)


@asynccontextmanager
async def atomic_file(path: str | os.PathLike[str],
                      files: _Files | None = None) -> AsyncIterator[AtomicFile]:
    """``async with atomic_file(p) as f: await f.write(...)`` commits on normal exit only."""
    af = AtomicFile(path, files)
    await af.open()
    try:
        yield af
        await af.commit()
    except BaseException:
        await af.abort()
        raise


async def write_file_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp, fsync, rename)."""
    async with atomic_file(path) as f:
        await f.write(data)


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


class _FileRanges:
    """An open file read by offset (``os.pread``) in worker threads."""

    def __init__(self, fh: BinaryIO, files: _Files, name: str) -> None:
        self._fd = fh.fileno()
        self._files = files
        self._name = name
        self.size = os.fstat(self._fd).st_size

    async def read_at(self, offset: int, length: int) -> io.BytesIO:
        try:
            body, got = await self._files.run(self._read_into, offset, length)
        except OSError as exc:
            raise _os_error(exc, self._name, "read") from exc
        if got != length:
            raise ConnectorError(f"{self._name}: the file changed size while it was read "
                                 f"(byte {offset + got} of {self.size})",
                                 connector=CONNECTOR, operation="read")
        return body

    def _read_into(self, offset: int, length: int) -> tuple[io.BytesIO, int]:
        """Read straight into the BytesIO's own buffer (no intermediate bytes object)."""
        body = io.BytesIO()
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
    """A local file or directory as a copy source."""

    def __init__(self, path: str, fmt: TextFormat | None = None, *,
                 compression: str | None = None, chunk_size: int = DEFAULT_CHUNK) -> None:
        self.path = Path(path)
        self.describe = str(path)
        self._set_format(path, fmt)
        self._compression = compression
        _is_gzip(str(path), compression)
        self._chunk = max(4096, chunk_size)
        self._files = _Files()

    def _list(self) -> list[Path]:
        if self.path.is_file():
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

    async def files(self) -> list[Path]:
        """The files this source reads, in order."""
        return await self._files.run(self._list)

    @asynccontextmanager
    async def open_ranges(self, *, compressed: bool) -> AsyncIterator[RangeReader | None]:
        """The one file this source names, open for reads at any offset (a direct copy).

        Yields None when that is not a byte-for-byte copy: a directory, or a file whose
        compression is not ``compressed``.
        """
        if not await self._files.run(self.path.is_file) or \
                _is_gzip(str(self.path), self._compression) != compressed:
            yield None
            return
        try:
            fh = await self._files.run(open, self.path, "rb")
        except OSError as exc:
            raise _os_error(exc, str(self.path), "open") from exc
        try:
            yield _FileRanges(fh, self._files, str(self.path))
        finally:
            with anyio.CancelScope(shield=True):
                await self._files.run(fh.close)

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        joiner = FileJoiner(fmt)
        for path in await self.files():
            joiner.start()
            gunzip = Gunzip(location=str(path)) if _is_gzip(str(path), self._compression) \
                else None
            async for data in self._read(path, gunzip):
                for piece in joiner.feed(data):
                    progress.add(nbytes=len(piece))
                    await out.send(piece)

    async def _read(self, path: Path, gunzip: Gunzip | None) -> AsyncIterator[bytes]:
        try:
            fh = await self._files.run(open, path, "rb")
        except OSError as exc:
            raise _os_error(exc, str(path), "open") from exc
        try:
            while True:
                try:
                    data = await self._files.run(fh.read, self._chunk)
                except OSError as exc:
                    raise _os_error(exc, str(path), "read") from exc
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

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        decoder = decoder_for(self._fmt, location=self.describe, schema=await self.schema())
        joiner = FileJoiner(self._fmt)
        for path in await self.files():
            joiner.start()
            gunzip = Gunzip(location=str(path)) if _is_gzip(str(path), self._compression) \
                else None
            async for data in self._read(path, gunzip):
                for piece in joiner.feed(data):
                    for batch in await self._files.run(decoder.feed, piece):
                        await out.send(batch)
        for batch in decoder.finish():
            await out.send(batch)


class LocalSink(NamedFormatSink):
    """A local file, or a directory of parts when the path ends with ``/``."""

    def __init__(self, path: str, fmt: TextFormat | None = None, *,
                 compression: str | None = None, part_bytes: int = DEFAULT_PART_BYTES) -> None:
        self.directory = path.endswith("/") or os.path.isdir(path)
        self.path = Path(path)
        self.describe = str(path)
        self._set_format(path, fmt)
        self._gzip = _is_gzip(path, compression) if not self.directory else \
            compression == "gzip"
        self.part_bytes = max(1, part_bytes)
        self._files = _Files()

    def _part_name(self, index: int) -> str:
        return part_name(index, self._fmt, self._gzip)

    async def direct_copy(self, source: Source, progress: Progress) -> int | None:
        """A byte-for-byte download of one object into this file by parallel ranges written
        at their offsets (:meth:`connectors.s3.S3Source.download_into`).

        None when that does not apply, as for :meth:`connectors.s3.S3Sink.direct_copy`
        (only opaque bytes: data known to be records streams and is counted). The file is as
        atomic as ever: a temp, fsynced, renamed on success."""
        download = getattr(source, "download_into", None)
        if download is None or self.directory or not self.opaque or \
                not getattr(source, "opaque", False) or \
                not same_layout(source.native_format, self._fmt):
            return None
        af: AtomicFile | None = None

        async def start(size: int) -> AtomicFile:
            nonlocal af
            af = AtomicFile(self.path, self._files)
            await af.open()
            return af

        try:
            copied: int | None = await download(start, compressed=self._gzip,
                                                progress=progress)
            if af is not None:
                await af.commit()
        except BaseException:
            if af is not None:
                await af.abort()
            raise
        return copied

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        if self.directory:
            await self._write_parts(fmt, inp, progress)
            return
        gz = Gzip() if self._gzip else None
        async with atomic_file(self.path, self._files) as f:
            async for chunk in inp:
                progress.add(nbytes=len(chunk))
                await f.write(gz.feed(chunk) if gz else chunk)
            if gz:
                await f.write(gz.finish())

    async def _write_parts(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        parts: list[AtomicFile] = []

        async def open_part(index: int) -> AtomicFile:
            part = AtomicFile(self.path / self._part_name(index), self._files)
            parts.append(part)
            await part.open()
            return part

        try:
            await write_parts(fmt, inp, progress, location=self.describe,
                              part_bytes=self.part_bytes, gzip=self._gzip, open_part=open_part)
            for part in parts:
                await part.commit()
            keep = {p.path.name for p in parts}
            await self._files.run(self._remove_stale_parts, keep)
        except BaseException:
            with anyio.CancelScope(shield=True):
                for part in parts:
                    await part.abort()
            raise

    def _remove_stale_parts(self, keep: set[str]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        for p in self.path.iterdir():
            if PART_RE.match(p.name) and p.name not in keep and p.is_file():
                p.unlink()

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        await consume_rows_as_bytes(self._fmt, inp, progress, self.consume_bytes, self._files.run)


def source_from_url(url: str, options: EndpointOptions) -> LocalSource:
    path = path_from_url(url)
    # Reads of 1 MiB: the copy's link then holds a few MiB, not stream_depth x 8 MiB (peak RSS
    # of a 1 GiB file -> S3 copy, benchmarks/README.md), at no cost in throughput.
    return LocalSource(path, options.format, compression=options.compression,
                       chunk_size=min(options.chunk_size, DEFAULT_CHUNK))


def sink_from_url(url: str, options: EndpointOptions) -> LocalSink:
    path = path_from_url(url)
    return LocalSink(path, options.format, compression=options.compression)
