"""S3 objects and prefixes as copy sources and sinks.

``s3://bucket/key`` is one object; ``s3://bucket/prefix/`` (trailing slash) is every object below
the prefix, in key order (a key URL whose object does not exist but which has objects below
``key/`` reads as that prefix). Listing is lazy and paginated, so a prefix of any size streams.

Reading: objects are fetched as ranges of ``chunk_size`` bytes, ``parallel`` at a time, and
delivered strictly in order; at most ``parallel + 1`` ranges are held in memory. Each range GET
carries ``If-Match`` (the ETag from the listing), so an object that changes mid-read fails the
read instead of mixing versions. A range whose body breaks off (truncated response, reset
connection) is resumed from the first missing byte with a new Range request; a short object is
never delivered. ``.gz`` keys (or ``compression="gzip"``) are decompressed.

Writing: bytes are cut into ``part_size`` parts and uploaded ``parallel`` at a time with a
multipart upload, created on the first full part and completed only at end-of-stream; input
smaller than one part becomes a single PutObject at the end. On any failure or cancellation the
multipart upload is aborted in shielded cleanup, so no object and no pending upload is left.
A process killed mid-upload cannot clean up: the next write to the same key (or prefix) aborts
the pending uploads it left before it starts (so two writers must not target one key at once).
A prefix destination receives ``part-00000.<ext>``, ... (a new object once one holds
``file_bytes``, cut at a record boundary), all completed together at the end; older
``part-NNNNN.*`` objects under the prefix that this write did not produce are then deleted.

``manifest_url`` reads the objects a Redshift-style manifest lists, in its order.

S3 -> S3 on the same endpoint with the same format and compression is copied server-side
(CopyObject; UploadPartCopy in parallel above ``copy_threshold``); nothing passes through here.
A single object <-> a single local file goes by parallel positioned I/O (``direct_copy``,
``download_into``): ranged GETs written at their offsets, file parts read at theirs.

The pieces: :mod:`connectors.s3_endpoint` (URL, object record, sizes),
:mod:`connectors.s3_listing`, :mod:`connectors.s3_download` (ranged reads),
:mod:`connectors.s3_upload` (multipart writer, cleanup), :mod:`connectors.s3_server_copy`.
This module holds the source and sink, the URL constructors and the helpers the engine calls,
and re-exports the pieces' public names.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from connectors import aws
from connectors.base import (
    CSV,
    BytesIn,
    BytesOut,
    EndpointOptions,
    Progress,
    RangeWriter,
    RowsIn,
    RowsOut,
    Source,
    TextFormat,
)
from connectors.errors import ConfigError, NotFoundError
from connectors.fileformat import NamedFormatSink, NamedFormatSource
from connectors.filesink import consume_rows_as_bytes, part_name, write_parts
from connectors.formats import Gzip, decoder_for, same_layout
from connectors.s3_download import READ_PIECE as READ_PIECE
from connectors.s3_download import Ranges
from connectors.s3_endpoint import (
    CONNECTOR,
    COPY_PARALLEL_FACTOR,
    DEFAULT_CHUNK,
    DEFAULT_COPY_PART,
    DEFAULT_COPY_THRESHOLD,
    DEFAULT_FILE_BYTES,
    MIN_PART,
    S3Object,
    is_gzip,
    parse_s3_url,
    root_cause,
)
from connectors.s3_endpoint import MAX_PARTS as MAX_PARTS
from connectors.s3_endpoint import MiB as MiB
from connectors.s3_endpoint import S3Url as S3Url
from connectors.s3_listing import any_object, head, iter_objects, read_manifest
from connectors.s3_server_copy import ServerCopy
from connectors.s3_upload import Upload, abort_stale_uploads, remove_stale_parts, upload_ranges


class S3Source(NamedFormatSource):
    """An S3 object or prefix as a copy source."""

    def __init__(self, url: str, fmt: TextFormat | None = None, *,
                 compression: str | None = None, parallel: int = 4,
                 chunk_size: int = DEFAULT_CHUNK, endpoint_url: str | None = None,
                 max_range_attempts: int = 5, page_size: int | None = None,
                 manifest_url: str | None = None) -> None:
        self.url = parse_s3_url(url)
        self.describe = str(self.url)
        self._set_format(self.url.key, fmt)
        self._compression = compression
        is_gzip(self.url.key, compression)
        self.parallel = max(1, parallel)
        self.chunk_size = max(64 * 1024, chunk_size)
        self.endpoint_url = endpoint_url
        self.max_range_attempts = max_range_attempts
        self.page_size = page_size
        #: When set, the objects to read are the manifest's entries (``url`` is then only
        #: used for its name and format).
        self.manifest_url = manifest_url

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or aws.endpoint_from_env("s3") or "aws"

    @property
    def compression(self) -> str | None:
        return self._compression

    def is_gzip(self, key: str) -> bool:
        return is_gzip(key, self._compression)

    def client(self) -> Any:
        return aws.client("s3", parallel=self.parallel, endpoint_url=self.endpoint_url)

    @property
    def _ranges(self) -> Ranges:
        return Ranges(self.url.bucket, self.chunk_size, self.parallel, self.max_range_attempts)

    async def resolve(self, client: Any) -> tuple[str | None, AsyncIterator[S3Object]]:
        """(prefix or None for a single object, the objects to read)."""
        bucket, key = self.url.bucket, self.url.key
        if self.manifest_url:
            return "", read_manifest(client, self.manifest_url)
        if self.url.is_prefix:
            return key, iter_objects(client, bucket, key, page_size=self.page_size)
        obj = await head(client, bucket, key)
        if obj is not None:
            async def one() -> AsyncIterator[S3Object]:
                yield obj
            return None, one()
        if await any_object(client, bucket, key + "/"):
            return key + "/", iter_objects(client, bucket, key + "/", page_size=self.page_size)
        raise NotFoundError(f"{self.describe}: no such object (and no objects below it)",
                            connector=CONNECTOR, operation="read")

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        async with self.client() as client:
            _, objects = await self.resolve(client)
            await self._ranges.stream(client, objects, fmt, out, progress, self.is_gzip)

    async def get_range(self, client: Any, obj: S3Object, start: int, end: int,
                        progress: Progress) -> bytes:
        """Bytes [start, end) of ``obj``; a broken-off body is resumed where it stopped."""
        return await self._ranges.get(client, obj, start, end, progress)

    async def read_range(self, client: Any, obj: S3Object, start: int, end: int,
                         progress: Progress,
                         deliver: Callable[[int, bytes], Awaitable[None]]) -> None:
        """Hand bytes [start, end) of ``obj`` to ``deliver(offset, piece)`` as they arrive,
        each byte exactly once (see :meth:`connectors.s3_download.Ranges.read`)."""
        await self._ranges.read(client, obj, start, end, progress, deliver)

    async def download_into(self, start: Callable[[int], Awaitable[RangeWriter]], *,
                            compressed: bool, progress: Progress) -> int | None:
        """Fetch the one object this URL names into a writer, by ranges in parallel.

        ``start(size)`` is called once the object is known and returns where the bytes go;
        ranges of ``chunk_size`` are fetched ``parallel`` at a time and each piece is written
        at its offset as it arrives (no ordering, so nothing waits on a slow range and only
        the pieces being written are in memory). Returns the bytes written, or None, before
        calling ``start``, when this is not a byte-for-byte copy of one object: a prefix or a
        manifest, or an object whose compression is not ``compressed``.
        """
        if self.manifest_url or self.url.is_prefix:
            return None
        async with self.client() as client:
            obj = await head(client, self.url.bucket, self.url.key)
            if obj is None or self.is_gzip(obj.key) != compressed:
                return None
            writer = await start(obj.size)

            async def write(offset: int, piece: bytes) -> None:
                await writer.write_at(offset, piece)
                progress.add(nbytes=len(piece))

            await self._ranges.fetch_into(client, obj, progress, write)
            return obj.size

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        decoder = decoder_for(self._fmt, location=self.describe, schema=await self.schema())
        send, recv = anyio.create_memory_object_stream[bytes](2)

        async def produce() -> None:
            await self.produce_bytes(self._fmt, send, progress)
            await send.aclose()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                async for chunk in recv:
                    for batch in await anyio.to_thread.run_sync(decoder.feed, chunk):
                        await out.send(batch)
                for batch in decoder.finish():
                    await out.send(batch)
        finally:
            send.close()
            recv.close()


class S3Sink(NamedFormatSink):
    """An S3 object, or a prefix of part objects when the URL ends with ``/``."""

    def __init__(self, url: str, fmt: TextFormat | None = None, *,
                 compression: str | None = None, parallel: int = 4,
                 part_size: int = DEFAULT_CHUNK, file_bytes: int = DEFAULT_FILE_BYTES,
                 endpoint_url: str | None = None,
                 copy_threshold: int = DEFAULT_COPY_THRESHOLD,
                 copy_part_size: int = DEFAULT_COPY_PART,
                 copy_parallel: int | None = None) -> None:
        self.url = parse_s3_url(url)
        self.describe = str(self.url)
        self._set_format(self.url.key, fmt)
        self._compression = compression
        self._gzip = is_gzip(self.url.key, compression) if not self.url.is_prefix \
            else compression == "gzip"
        self.parallel = max(1, parallel)
        self.part_size = max(MIN_PART, part_size)
        self.file_bytes = max(1, file_bytes)
        self.endpoint_url = endpoint_url
        self.copy_threshold = copy_threshold
        self.copy_part_size = max(MIN_PART, copy_part_size)
        #: Server-side copy requests in flight (they hold no data here, so more than
        #: ``parallel``).
        self.copy_parallel = max(1, copy_parallel or COPY_PARALLEL_FACTOR * self.parallel)

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or aws.endpoint_from_env("s3") or "aws"

    def client(self) -> Any:
        return aws.client("s3", parallel=self.parallel, endpoint_url=self.endpoint_url)

    def _part_key(self, index: int) -> str:
        return self.url.key + part_name(index, self._fmt, self._gzip)


    async def abort_stale_uploads(self, client: Any) -> int:
        """Abort pending multipart uploads a killed earlier write left for our key(s)
        (see :func:`connectors.s3_upload.abort_stale_uploads`); returns how many."""
        return await abort_stale_uploads(client, self.url)

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        async with self.client() as client:
            await self.abort_stale_uploads(client)
            uploads: list[Upload] = []
            sem = anyio.Semaphore(self.parallel)
            try:
                async with anyio.create_task_group() as tg:
                    if self.url.is_prefix:
                        await self._write_parts(client, fmt, inp, progress, uploads, sem, tg)
                    else:
                        up = Upload(client, self.url.bucket, self.url.key,
                                     part_size=self.part_size, sem=sem, tg=tg,
                                     progress=progress)
                        uploads.append(up)
                        gz = Gzip() if self._gzip else None
                        async for chunk in inp:
                            progress.add(nbytes=len(chunk))
                            await up.write(gz.feed(chunk) if gz else chunk)
                        if gz:
                            await up.write(gz.finish())
                        await up.finish()
                for up in uploads:
                    await up.complete()
                if self.url.is_prefix:
                    await remove_stale_parts(client, self.url, {u.key for u in uploads})
            except BaseException as exc:
                with anyio.move_on_after(30, shield=True):
                    for up in uploads:
                        with contextlib.suppress(Exception):
                            await up.abort()
                if isinstance(exc, BaseExceptionGroup):
                    raise root_cause(exc) from None
                raise

    async def _write_parts(self, client: Any, fmt: TextFormat, inp: BytesIn, progress: Progress,
                           uploads: list[Upload], sem: anyio.Semaphore, tg: TaskGroup) -> None:
        async def open_part(index: int) -> Upload:
            upload = Upload(client, self.url.bucket, self._part_key(index),
                             part_size=self.part_size, sem=sem, tg=tg, progress=progress,
                             multipart=True)
            uploads.append(upload)
            return upload

        await write_parts(fmt, inp, progress, location=self.describe, part_bytes=self.file_bytes,
                          gzip=self._gzip, open_part=open_part)


    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        await consume_rows_as_bytes(self._fmt, inp, progress, self.consume_bytes,
                                    anyio.to_thread.run_sync)

    # -- direct upload of one local file ------------------------------------------------------
    async def direct_copy(self, source: Source, progress: Progress) -> int | None:
        """Upload one local file as this object, byte for byte, with parts read at their
        offsets and sent ``parallel`` at a time (no ordered stream in between).

        None when that does not apply: a prefix destination, a directory source, a
        compression change, or data known to be records (a format was given or the names
        imply one): those stream, so their records are counted."""
        open_ranges = getattr(source, "open_ranges", None)
        if open_ranges is None or self.url.is_prefix or not self.opaque or \
                not getattr(source, "opaque", False) or \
                not same_layout(source.native_format, self._fmt):
            return None
        async with open_ranges(compressed=self._gzip) as reader:
            if reader is None:
                return None
            async with self.client() as client:
                await self.abort_stale_uploads(client)
                await upload_ranges(client, self.url, reader, progress,
                                    part_size=self.part_size, parallel=self.parallel)
            return int(reader.size)


    # -- server-side copy -----------------------------------------------------------------------
    async def server_side_copy(self, source: Source, progress: Progress) -> int | None:
        """CopyObject / UploadPartCopy when ``source`` is S3 on this endpoint with our format.

        Requests are cheap for us (no data passes through), so ``copy_parallel`` of them run
        at once, shared by whole-object copies and the parts of big objects. The listing is
        read lazily and at most ``copy_parallel`` object copies are pending at a time.
        """
        if not isinstance(source, S3Source) or source.endpoint != self.endpoint \
                or source.manifest_url:
            return None
        if not same_layout(source.native_format, self._fmt):
            return None
        async with aws.client("s3", parallel=self.copy_parallel,
                              endpoint_url=self.endpoint_url) as client:
            prefix, objects = await source.resolve(client)
            if prefix is not None and not self.url.is_prefix:
                return None  # many objects into one: a streamed (record) copy
            if prefix is not None and source.compression != self._compression:
                return None  # keys might need (de)compressing: decided per object, streamed
            first = await anext(objects, None)
            if first is not None and source.is_gzip(first.key) != \
                    self._dest_gzip(first.key, prefix):
                return None

            async def rest() -> AsyncIterator[S3Object]:
                if first is not None:
                    yield first
                async for obj in objects:
                    yield obj

            def dest_key(obj: S3Object) -> str:
                if prefix is None:
                    return (self.url.key + posixpath.basename(obj.key)) \
                        if self.url.is_prefix else self.url.key
                return self.url.key + obj.key[len(prefix):]

            copier = ServerCopy(self.url.bucket, self.copy_threshold, self.copy_part_size,
                                self.copy_parallel)
            return await copier.copy_all(client, source.url.bucket, rest(), dest_key, progress)

    def _dest_gzip(self, key: str, prefix: str | None) -> bool:
        if self.url.is_prefix:
            return is_gzip(key, self._compression)
        return self._gzip


# -- URL constructors and helpers the engine uses --------------------------------------------------

def source_from_url(url: str, options: EndpointOptions) -> S3Source:
    """The format is ``options.format``, else the name's (``.csv``...), else CSV."""
    return S3Source(url, options.format, compression=options.compression,
                    parallel=options.parallel, chunk_size=options.chunk_size)


def sink_from_url(url: str, options: EndpointOptions) -> S3Sink:
    return S3Sink(url, options.format, compression=options.compression,
                  parallel=options.parallel, part_size=options.chunk_size)


async def key_exists(url: str, *, endpoint_url: str | None = None) -> bool:
    """True when the object ``s3://bucket/key`` exists (S3KeyExists)."""
    u = parse_s3_url(url)
    async with aws.client("s3", endpoint_url=endpoint_url) as client:
        return await head(client, u.bucket, u.key) is not None


async def prefix_not_empty(url: str, *, endpoint_url: str | None = None) -> bool:
    """True when at least one object lies below ``s3://bucket/prefix`` (S3PrefixNotEmpty)."""
    u = parse_s3_url(url)
    async with aws.client("s3", endpoint_url=endpoint_url) as client:
        return await any_object(client, u.bucket, u.key)


async def upload_file(path: str | Path, url: str, *, parallel: int = 4,
                      endpoint_url: str | None = None) -> int:
    """Upload one local file byte for byte (no codec, no compression change); returns bytes."""
    from connectors.copy import copy
    from connectors.local import LocalSource

    source = LocalSource(str(path), CSV, compression="none")
    sink = S3Sink(url, CSV, compression="none", parallel=parallel, endpoint_url=endpoint_url)
    # Raw bytes, whatever the name implies: the direct lane (parallel parts read at their
    # offsets), not a stream scanned for CSV records nobody counts.
    source.opaque = sink.opaque = True
    return (await copy(source, sink)).bytes


async def upload_directory(directory: str | Path, url: str, *, parallel: int = 4,
                           endpoint_url: str | None = None) -> list[str]:
    """Upload every file below ``directory`` to ``url`` (a prefix) keeping relative paths."""
    root = Path(directory)
    prefix = url if url.endswith("/") else url + "/"
    files = await anyio.to_thread.run_sync(
        lambda: sorted(p for p in root.rglob("*") if p.is_file()))
    urls = [prefix + p.relative_to(root).as_posix() for p in files]

    async def one(p: Path, u: str) -> None:
        await upload_file(p, u, endpoint_url=endpoint_url)

    await _each(parallel, one, zip(files, urls, strict=True))
    return urls


async def download_prefix(url: str, directory: str | Path, *, parallel: int = 4,
                          endpoint_url: str | None = None) -> list[Path]:
    """Download every object below ``url`` into ``directory`` (relative keys kept), raw bytes."""
    from connectors.copy import copy
    from connectors.local import LocalSink

    u = parse_s3_url(url)
    prefix = u.key if (u.is_prefix or not u.key) else u.key + "/"
    root = Path(directory)
    async with aws.client("s3", endpoint_url=endpoint_url) as client:
        keys = [obj.key async for obj in iter_objects(client, u.bucket, prefix)]
    paths = []
    for key in keys:
        rel = key[len(prefix):]
        if not rel or rel.startswith("/") or ".." in Path(rel).parts:
            raise ConfigError(f"s3://{u.bucket}/{key}: unsafe key for a local path",
                              connector=CONNECTOR)
        paths.append(root / rel)

    async def one(key: str, dest: Path) -> None:
        source = S3Source(f"s3://{u.bucket}/{key}", CSV, compression="none",
                          endpoint_url=endpoint_url)
        sink = LocalSink(str(dest), CSV, compression="none")
        source.opaque = sink.opaque = True  # raw bytes: the direct lane, as upload_file
        await copy(source, sink)

    await _each(parallel, one, zip(keys, paths, strict=True))
    return paths


async def _each(parallel: int, fn: Callable[[Any, Any], Awaitable[None]],
                items: Iterable[tuple[Any, Any]]) -> None:
    """``fn(*item)`` for every item, ``parallel`` at a time; a task starts only when a slot is
    free (a directory of many files is not one waiting task per file)."""
    slots = anyio.Semaphore(max(1, parallel))

    async def run(a: Any, b: Any) -> None:
        try:
            await fn(a, b)
        finally:
            slots.release()

    try:
        async with anyio.create_task_group() as tg:
            for a, b in items:
                await slots.acquire()
                tg.start_soon(run, a, b)
    except BaseExceptionGroup as group:
        raise root_cause(group) from None
