"""Writing a local file (atomically) or a directory of parts committed together."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

import anyio

from connectors.base import (
    BytesIn,
    EndpointOptions,
    Progress,
    RangeDownloader,
    RowsIn,
    Source,
    Takeover,
    TakeoverLane,
    TextFormat,
    VerifyCheck,
)
from connectors.errors import ConfigError
from connectors.formats import (
    PART_RE,
    Gzip,
    NamedFormatSink,
    consume_rows_as_bytes,
    is_gzip,
    same_layout,
    write_parts,
)

from ._atomic import AtomicFile, Files
from ._special import STDIO, InPlaceFile, WriteTarget, write_target
from ._url import path_from_url
from ._verify import HashingPart, stored_figures

DEFAULT_PART_BYTES = 128 * 1024 * 1024


class LocalSink(NamedFormatSink):
    """A local file, or a directory of parts when the path ends with ``/``; ``-`` is stdout,
    and a FIFO, a device or a symlink is written through (see :mod:`._special`)."""

    def __init__(self, path: str, fmt: TextFormat | None = None, *,
                 compression: str | None = None, part_bytes: int = DEFAULT_PART_BYTES) -> None:
        self.directory = path != STDIO and (path.endswith("/") or os.path.isdir(path))
        self.path = Path(path)
        self.describe = "stdout" if path == STDIO else str(path)
        self._set_format(path, fmt)
        self._gzip = is_gzip(path, compression) if not self.directory else \
            compression == "gzip"
        self.part_bytes = max(1, part_bytes)
        self._files = Files()
        self._verify: VerifyCheck | None = None

    #: ``--verify`` compares the bytes as written with the bytes read back from disk.
    verify_kind: Literal["rows", "bytes"] = "bytes"

    def verify_with(self, check: VerifyCheck) -> None:
        """Refused, before anything is read, for stdout, a FIFO or a device: what they were
        given cannot be read back, so a figure of the bytes sent would compare them with
        themselves (README, "Copies in depth": --verify)."""
        if not self.directory and write_target(str(self.path)).in_place:
            raise ConfigError(f"{self.describe}: --verify needs a regular file or a directory; "
                              "what goes to stdout, a FIFO or a device cannot be read back to "
                              "compare (copy to a file with --verify, then send that file on)",
                              connector="file")
        self._verify = check

    async def _verified(self, fmt: TextFormat, files: list[AtomicFile], sent: str) -> None:
        """Re-read the finished temps and hand both figures to the copy, before commit."""
        if self._verify is None:
            return
        for f in files:
            await f.finish()
        paths = [f.temp_path for f in files if f.temp_path is not None]
        rows, stored = await self._files.run(stored_figures, paths, fmt, self._gzip)
        await self._verify(rows, stored, sent)


    async def take_over(self, source: Source, progress: Progress,
                        lanes: frozenset[TakeoverLane]) -> Takeover | None:
        """Direct when ``source`` is one object fetched by ranges (see :class:`TakesOver`)."""
        if "direct" not in lanes:
            return None
        copied = await self.direct_copy(source, progress)
        return None if copied is None else Takeover("direct", copied)

    async def direct_copy(self, source: Source, progress: Progress) -> int | None:
        """A byte-for-byte download of one object into this file by parallel ranges written
        at their offsets (a :class:`~connectors.base.RangeDownloader`).

        None when that does not apply, as for the S3 sink's direct upload (only opaque bytes:
        data known to be records streams and is counted). The file is as atomic as ever: a
        temp, fsynced, renamed on success."""
        if not isinstance(source, RangeDownloader) or self.directory or not self.opaque or \
                not source.opaque or not same_layout(source.native_format, self._fmt):
            return None
        target = await self._target()
        if target.in_place:
            return None  # a stream: no writes at offsets
        af: AtomicFile | None = None

        async def start(size: int) -> AtomicFile:
            nonlocal af
            af = AtomicFile(target.path, self._files)
            await af.open()
            return af

        try:
            copied = await source.download_into(start, compressed=self._gzip,
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
        target = await self._target()
        if target.in_place and self._verify is not None:
            raise ConfigError(f"{self.describe}: --verify needs a regular file or a directory "
                              "(a stream cannot be read back)", connector="file")
        f = InPlaceFile(target, self._files) if target.in_place else \
            AtomicFile(target.path, self._files)
        await f.open()
        sent = hashlib.sha256()
        try:
            async for chunk in inp:
                progress.add(nbytes=len(chunk))
                data = gz.feed(chunk) if gz else chunk
                sent.update(data)
                await f.write(data)
            if gz:
                tail = gz.finish()
                sent.update(tail)
                await f.write(tail)
            if isinstance(f, AtomicFile):
                await self._verified(fmt, [f], sent.hexdigest())
            await f.commit()
        except BaseException:
            await f.abort()
            raise

    async def _target(self) -> WriteTarget:
        return await self._files.run(write_target, str(self.path))

    async def _write_parts(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        parts: list[AtomicFile] = []
        sent = hashlib.sha256()

        async def open_part(name: str) -> HashingPart:
            part = AtomicFile(self.path / name, self._files)
            parts.append(part)
            await part.open()
            return HashingPart(part, sent)

        try:
            await write_parts(fmt, inp, progress, location=self.describe,
                              part_bytes=self.part_bytes, gzip=self._gzip, open_part=open_part)
            await self._verified(fmt, parts, sent.hexdigest())
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


def sink_from_url(url: str, options: EndpointOptions) -> LocalSink:
    path = path_from_url(url)
    return LocalSink(path, options.format, compression=options.compression)
