"""Writing S3 objects and prefixes: multipart uploads completed at end-of-stream (aborted on
failure), prefixes as part objects, one local file uploaded by parts read at their offsets, and
copies between objects on the same endpoint done by S3 itself."""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from connectors import aws
from connectors.base import (
    BytesIn,
    EndpointOptions,
    Progress,
    RangeSource,
    RowsIn,
    Source,
    Takeover,
    TakeoverLane,
    TextFormat,
    VerifyCheck,
)
from connectors.errors import single_failure
from connectors.formats import (
    Gzip,
    NamedFormatSink,
    RecordTally,
    consume_rows_as_bytes,
    record_tally,
    same_layout,
    write_parts,
)

from ._server_copy import ServerCopy
from ._upload import (
    Upload,
    abort_bound,
    abort_stale_uploads,
    remove_stale_parts,
    upload_ranges,
)
from ._url import (
    COPY_PARALLEL_FACTOR,
    DEFAULT_CHUNK,
    DEFAULT_COPY_PART,
    DEFAULT_COPY_THRESHOLD,
    DEFAULT_FILE_BYTES,
    MIN_PART,
    S3Object,
    S3Origin,
    is_gzip,
    parse_s3_url,
)


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
        self._verify: VerifyCheck | None = None

    #: ``--verify`` compares the parts' MD5s as sent with the ETags S3 computed of them.
    verify_kind: Literal["rows", "bytes"] = "bytes"

    def verify_with(self, check: VerifyCheck) -> None:
        self._verify = check  # Parquet: the rows its footer declares (formats.record_tally)

    async def _verified(self, uploads: list[Upload], records: int) -> None:
        if self._verify is None:
            return
        pairs = [up.etags() for up in uploads]
        if len(pairs) == 1:
            ours, theirs = pairs[0]
        else:  # several objects: one figure over each side's ETags in order
            ours = hashlib.sha256(" ".join(p[0] for p in pairs).encode()).hexdigest()
            theirs = hashlib.sha256(" ".join(p[1] for p in pairs).encode()).hexdigest()
        await self._verify(records, theirs, ours)

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or aws.endpoint_from_env("s3") or "aws"

    def client(self) -> Any:
        return aws.client("s3", parallel=self.parallel, endpoint_url=self.endpoint_url)



    async def abort_stale_uploads(self, client: Any) -> int:
        """Abort pending multipart uploads a killed earlier write left for our key(s)
        (see :func:`._upload.abort_stale_uploads`); returns how many."""
        return await abort_stale_uploads(client, self.url)

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        with single_failure():
            await self._upload(fmt, inp, progress)

    async def _upload(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        counter = record_tally(fmt, location=self.describe) if self._verify is not None \
            else None
        if counter is not None:
            inp = _CountedBytes(inp, counter)
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
                                     progress=progress, count_written=True)
                        up.verify = counter is not None
                        uploads.append(up)
                        gz = Gzip() if self._gzip else None
                        async for chunk in inp:
                            await up.write(gz.feed(chunk) if gz else chunk)
                        if gz:
                            await up.write(gz.finish())
                        await up.finish()
                if counter is not None:
                    await self._verified(uploads, counter.records)
                for up in uploads:
                    await up.complete()
                if self.url.is_prefix:
                    await remove_stale_parts(client, self.url, {u.key for u in uploads})
            except BaseException:
                with anyio.move_on_after(abort_bound(), shield=True):
                    for up in uploads:
                        with contextlib.suppress(Exception):
                            await up.abort()
                raise

    async def _write_parts(self, client: Any, fmt: TextFormat, inp: BytesIn, progress: Progress,
                           uploads: list[Upload], sem: anyio.Semaphore, tg: TaskGroup) -> None:
        async def open_part(name: str) -> Upload:
            upload = Upload(client, self.url.bucket, self.url.key + name,
                             part_size=self.part_size, sem=sem, tg=tg, progress=progress,
                             multipart=True)
            upload.verify = self._verify is not None
            uploads.append(upload)
            return upload

        await write_parts(fmt, inp, progress, location=self.describe, part_bytes=self.file_bytes,
                          gzip=self._gzip, open_part=open_part)


    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        await consume_rows_as_bytes(self._fmt, inp, progress, self.consume_bytes,
                                    anyio.to_thread.run_sync)

    # -- the copy done here, without the copy's stages ----------------------------------------
    async def take_over(self, source: Source, progress: Progress,
                        lanes: frozenset[TakeoverLane]) -> Takeover | None:
        """Server-side when ``source`` is S3 on this endpoint with our format, else direct when
        it is one local file of opaque bytes; None to stream (see :class:`TakesOver`)."""
        if "server-side" in lanes:
            copied = await self.server_side_copy(source, progress)
            if copied is not None:
                progress.add(nbytes=copied)  # no bytes passed through here while it ran
                return Takeover("server-side", copied)
        if "direct" in lanes:
            copied = await self.direct_copy(source, progress)
            if copied is not None:
                return Takeover("direct", copied)
        return None

    async def direct_copy(self, source: Source, progress: Progress) -> int | None:
        """Upload one local file as this object, byte for byte, with parts read at their
        offsets and sent ``parallel`` at a time (no ordered stream in between).

        None when that does not apply: a prefix destination, a directory source, a
        compression change, or data known to be records (a format was given or the names
        imply one): those stream, so their records are counted."""
        if not isinstance(source, RangeSource) or self.url.is_prefix or not self.opaque or \
                not source.opaque or not same_layout(source.native_format, self._fmt):
            return None
        async with source.open_ranges(compressed=self._gzip) as reader:
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
        if not isinstance(source, S3Origin) or source.endpoint != self.endpoint \
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


def sink_from_url(url: str, options: EndpointOptions) -> S3Sink:
    return S3Sink(url, options.format, compression=options.compression,
                  parallel=options.parallel, part_size=options.chunk_size)


class _CountedBytes(BytesIn):
    """``inp`` with its records counted as they pass (``--verify``'s record figure)."""

    def __init__(self, inp: BytesIn, counter: RecordTally) -> None:
        self._inp = inp
        self._counter = counter

    async def receive(self) -> bytes:
        chunk = await self._inp.receive()
        self._counter.feed(chunk)
        return chunk

    async def aclose(self) -> None:
        await self._inp.aclose()
