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
"""

from __future__ import annotations

import contextlib
import io
import posixpath
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
from anyio.abc import TaskGroup

from connectors import aws
from connectors.backoff import full_jitter
from connectors.base import (
    CSV,
    BytesIn,
    BytesOut,
    EndpointOptions,
    Progress,
    RangeReader,
    RangeWriter,
    RowsIn,
    RowsOut,
    Schema,
    Source,
    TextFormat,
)
from connectors.errors import (
    ConfigError,
    ConnectionLost,
    NotFoundError,
    TerminalError,
    TransientError,
)
from connectors.filesink import PART_RE, consume_rows_as_bytes, part_name, write_parts
from connectors.formats import (
    Gunzip,
    Gzip,
    decoder_for,
    format_for_path,
    same_layout,
)
from connectors.local import FileJoiner


def root_cause(group: BaseExceptionGroup[Any]) -> BaseException:
    from connectors.copy import root_cause as pick

    return pick(group)

CONNECTOR = "s3"
MiB = 1024 * 1024
MIN_PART = 5 * MiB
MAX_PARTS = 10_000
DEFAULT_CHUNK = 8 * MiB
DEFAULT_FILE_BYTES = 128 * MiB
#: Objects above this are copied server-side as parallel UploadPartCopy parts of
#: DEFAULT_COPY_PART (one CopyObject of 1 GiB took 8.1 s on SeaweedFS, 16 parts 4.8 s).
DEFAULT_COPY_THRESHOLD = 64 * MiB
DEFAULT_COPY_PART = 64 * MiB
COPY_PARALLEL_FACTOR = 4
READ_PIECE = 1024 * 1024


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(url: str) -> S3Url:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"{url!r} is not an S3 URL (s3://bucket/key or s3://bucket/prefix/)",
                          connector=CONNECTOR)
    return S3Url(parts.netloc, unquote(parts.path.lstrip("/")))


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str
    #: Set when the object is in another bucket than the source URL's (manifest entries).
    bucket: str = ""


def _is_gzip(key: str, compression: str | None) -> bool:
    if compression is None:
        return key.endswith(".gz")
    if compression not in ("gzip", "none"):
        raise ConfigError(f"compression {compression!r} is not supported; use gzip or none",
                          connector=CONNECTOR)
    return compression == "gzip"


def _note_retries(response: dict[str, Any], progress: Progress, cause: str) -> None:
    for _ in range(aws.retry_count(response)):
        progress.retried(cause)


def _read_in_pieces(body: Any) -> None:
    """Let the HTTP client buffer a whole READ_PIECE before it pauses the socket.

    aiohttp pauses reading at 128 KiB buffered by default, so ``read(1 MiB)`` returned a
    fraction of that and every piece cost a round through the event loop (and, for a file,
    a thread hop). ``set_read_chunk_size`` is aiohttp's own knob for consumers with big reads.
    """
    content = getattr(getattr(body, "raw_stream", None), "content", None)
    setter = getattr(content, "set_read_chunk_size", None)
    if setter is not None:
        setter(READ_PIECE)


async def iter_objects(client: Any, bucket: str, prefix: str, *,
                       page_size: int | None = None) -> AsyncIterator[S3Object]:
    """Every object below ``prefix`` in key order, one page at a time (folder markers skipped)."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if page_size:
            kwargs["MaxKeys"] = page_size
        if token:
            kwargs["ContinuationToken"] = token
        with aws.map_aws_errors(CONNECTOR, "list", f"s3://{bucket}/{prefix}"):
            page = await client.list_objects_v2(**kwargs)
        for item in page.get("Contents", []):
            if item["Key"].endswith("/") and item.get("Size", 0) == 0:
                continue
            yield S3Object(item["Key"], int(item.get("Size", 0)), item.get("ETag", ""))
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")
        if not token:
            return


async def _any_object(client: Any, bucket: str, prefix: str) -> bool:
    with aws.map_aws_errors(CONNECTOR, "list", f"s3://{bucket}/{prefix}"):
        page = await client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return bool(page.get("Contents"))


async def _head(client: Any, bucket: str, key: str) -> S3Object | None:
    try:
        with aws.map_aws_errors(CONNECTOR, "head", f"s3://{bucket}/{key}"):
            head = await client.head_object(Bucket=bucket, Key=key)
    except NotFoundError:
        return None
    return S3Object(key, int(head.get("ContentLength", 0)), head.get("ETag", ""), bucket)


async def read_manifest(client: Any, manifest_url: str) -> AsyncIterator[S3Object]:
    """The objects a Redshift-style manifest lists (``{"entries": [{"url", "mandatory"}]}``),
    in manifest order. A missing ``mandatory`` entry is an error; other missing ones are skipped.
    """
    import json

    u = parse_s3_url(manifest_url)
    with aws.map_aws_errors(CONNECTOR, "get", manifest_url):
        resp = await client.get_object(Bucket=u.bucket, Key=u.key)
        async with resp["Body"] as body:
            raw = await body.read()
    try:
        entries = json.loads(raw)["entries"]
        urls = [(str(e["url"]), bool(e.get("mandatory", False))) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{manifest_url}: not a manifest ({{\"entries\": [{{\"url\": ...}}]}}):"
                          f" {exc}", connector=CONNECTOR, operation="read") from None
    for url, mandatory in urls:
        entry = parse_s3_url(url)
        obj = await _head(client, entry.bucket, entry.key)
        if obj is None:
            if mandatory:
                raise NotFoundError(f"{url}: listed as mandatory in {manifest_url} but missing",
                                    connector=CONNECTOR, operation="read")
            continue
        yield obj


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


class S3Source:
    """An S3 object or prefix as a copy source."""

    def __init__(self, url: str, fmt: TextFormat | None = None, *,
                 compression: str | None = None, parallel: int = 4,
                 chunk_size: int = DEFAULT_CHUNK, endpoint_url: str | None = None,
                 max_range_attempts: int = 5, page_size: int | None = None,
                 manifest_url: str | None = None) -> None:
        self.url = parse_s3_url(url)
        self.describe = str(self.url)
        self._fmt = fmt or format_for_path(self.url.key) or CSV
        #: No format was given and the name implies none: the bytes are not known to be
        #: records (a direct copy may move them without counting any).
        self.opaque = fmt is None and format_for_path(self.url.key) is None
        self._compression = compression
        _is_gzip(self.url.key, compression)
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
    def native_format(self) -> TextFormat:
        return self._fmt

    @property
    def compression(self) -> str | None:
        return self._compression

    def can_produce(self, fmt: TextFormat) -> bool:
        return same_layout(fmt, self._fmt)

    async def schema(self) -> Schema | None:
        return Schema(self._fmt.columns) if self._fmt.columns else None

    def is_gzip(self, key: str) -> bool:
        return _is_gzip(key, self._compression)

    def client(self) -> Any:
        return aws.client("s3", parallel=self.parallel, endpoint_url=self.endpoint_url)

    async def resolve(self, client: Any) -> tuple[str | None, AsyncIterator[S3Object]]:
        """(prefix or None for a single object, the objects to read)."""
        bucket, key = self.url.bucket, self.url.key
        if self.manifest_url:
            return "", read_manifest(client, self.manifest_url)
        if self.url.is_prefix:
            return key, iter_objects(client, bucket, key, page_size=self.page_size)
        obj = await _head(client, bucket, key)
        if obj is not None:
            async def one() -> AsyncIterator[S3Object]:
                yield obj
            return None, one()
        if await _any_object(client, bucket, key + "/"):
            return key + "/", iter_objects(client, bucket, key + "/", page_size=self.page_size)
        raise NotFoundError(f"{self.describe}: no such object (and no objects below it)",
                            connector=CONNECTOR, operation="read")

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        async with self.client() as client:
            _, objects = await self.resolve(client)
            await self._stream(client, objects, fmt, out, progress)

    async def _stream(self, client: Any, objects: AsyncIterator[S3Object], fmt: TextFormat,
                      out: BytesOut, progress: Progress) -> None:
        send, recv = anyio.create_memory_object_stream[_Range](self.parallel)
        limiter = anyio.CapacityLimiter(self.parallel)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._schedule, client, objects, send, tg, limiter, progress)
                await self._deliver(recv, fmt, out, progress)
        except BaseExceptionGroup as group:
            raise root_cause(group) from None
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
                await self.read_range(client, job.obj, job.start, job.end, progress,
                                      job.take)
        job.done.set()

    async def get_range(self, client: Any, obj: S3Object, start: int, end: int,
                        progress: Progress) -> bytes:
        """Bytes [start, end) of ``obj``; a broken-off body is resumed where it stopped."""
        pieces: list[bytes] = []

        async def take(_offset: int, piece: bytes) -> None:
            pieces.append(piece)

        await self.read_range(client, obj, start, end, progress, take)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def read_range(self, client: Any, obj: S3Object, start: int, end: int,
                         progress: Progress,
                         deliver: Callable[[int, bytes], Awaitable[None]]) -> None:
        """Hand bytes [start, end) of ``obj`` to ``deliver(offset, piece)`` as they arrive.

        A body that breaks off is resumed from the first byte not yet delivered, so every byte
        is delivered exactly once. Errors of ``deliver`` itself are not retried here.
        """
        pos = start
        failures = 0
        bucket = obj.bucket or self.url.bucket
        target = f"s3://{bucket}/{obj.key}"
        while pos < end:
            try:
                with aws.map_aws_errors(CONNECTOR, "get", target):
                    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": obj.key,
                                              "Range": f"bytes={pos}-{end - 1}"}
                    if obj.etag:
                        kwargs["IfMatch"] = obj.etag
                    resp = await client.get_object(**kwargs)
                    _note_retries(resp, progress, "s3-get")
                    async with resp["Body"] as body:
                        _read_in_pieces(body)
                        while True:
                            piece = await body.read(READ_PIECE)
                            if not piece:
                                break
                            if pos + len(piece) > end:
                                raise TerminalError(
                                    f"{target}: the server sent more than the range asked for",
                                    connector=CONNECTOR, operation="get")
                            await deliver(pos, piece)
                            pos += len(piece)
                if pos < end:
                    raise ConnectionLost(f"{target}: the body ended at byte {pos} of {end}",
                                         connector=CONNECTOR, operation="get")
            except TransientError:
                failures += 1
                if failures >= self.max_range_attempts:
                    raise
                progress.retried("s3-get-resume")
                await anyio.sleep(full_jitter(failures, base=0.1, cap=5.0))

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
            obj = await _head(client, self.url.bucket, self.url.key)
            if obj is None or self.is_gzip(obj.key) != compressed:
                return None
            writer = await start(obj.size)
            limiter = anyio.CapacityLimiter(self.parallel)

            async def write(offset: int, piece: bytes) -> None:
                await writer.write_at(offset, piece)
                progress.add(nbytes=len(piece))

            async def fetch(a: int, b: int) -> None:
                async with limiter:
                    await self.read_range(client, obj, a, b, progress, write)

            try:
                async with anyio.create_task_group() as tg:
                    for a in range(0, obj.size, self.chunk_size):
                        tg.start_soon(fetch, a, min(a + self.chunk_size, obj.size))
            except BaseExceptionGroup as group:
                raise root_cause(group) from None
            return obj.size

    async def _deliver(self, recv: Any, fmt: TextFormat, out: BytesOut,
                       progress: Progress) -> None:
        joiner = FileJoiner(fmt)
        gunzip: Gunzip | None = None
        async for job in recv:
            await job.done.wait()
            pieces, job.pieces = job.pieces, []
            if job.first:
                joiner.start()
                gunzip = Gunzip(location=f"s3://{job.obj.bucket or self.url.bucket}/"
                                         f"{job.obj.key}") \
                    if self.is_gzip(job.obj.key) else None
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


class _Upload:
    """One object being written: PutObject when small, else a multipart upload.

    The object becomes visible only in :meth:`complete`; :meth:`abort` removes a pending
    multipart upload. At most ``parallel`` parts are in flight (the semaphore also makes the
    writer wait, which is the backpressure on the incoming stream).
    """

    def __init__(self, client: Any, bucket: str, key: str, *, part_size: int,
                 sem: anyio.Semaphore, tg: TaskGroup, progress: Progress,
                 multipart: bool = False) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.part_size = part_size
        self._sem = sem
        self._tg = tg
        self._progress = progress
        self._force_multipart = multipart
        self.upload_id: str | None = None
        self.parts: dict[int, str] = {}
        self.size = 0
        #: The part being filled. Parts are built in a BytesIO that botocore and aiohttp send
        #: as it is: bytes would be wrapped in a BytesIO that aiohttp then copies whole, so a
        #: part in flight held twice its size (and slicing a bytearray copied it twice more).
        self._buf = io.BytesIO()
        self._next_part = 1
        self.completed = False

    @property
    def target(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        view = memoryview(data)
        while view:
            room = self.part_size - self._buf.tell()
            self._buf.write(view[:room])
            view = view[room:]
            if self._buf.tell() >= self.part_size:
                await self._start_part(self._take_part())

    def _take_part(self) -> io.BytesIO:
        body, self._buf = self._buf, io.BytesIO()
        body.seek(0)
        return body

    async def _start_part(self, body: io.BytesIO) -> None:
        await self._sem.acquire()
        try:
            if self.upload_id is None:
                with aws.map_aws_errors(CONNECTOR, "create-multipart-upload", self.target):
                    resp = await self.client.create_multipart_upload(Bucket=self.bucket,
                                                                     Key=self.key)
                self.upload_id = resp["UploadId"]
            number = self._next_part
            if number > MAX_PARTS:
                raise ConfigError(f"{self.target}: more than {MAX_PARTS} parts; raise the part "
                                  "size", connector=CONNECTOR, operation="upload")
            self._next_part += 1
        except BaseException:
            self._sem.release()
            raise
        self._tg.start_soon(self._put_part, number, body)

    async def _put_part(self, number: int, body: io.BytesIO) -> None:
        try:
            with aws.map_aws_errors(CONNECTOR, "upload-part", self.target):
                resp = await self.client.upload_part(Bucket=self.bucket, Key=self.key,
                                                     UploadId=self.upload_id,
                                                     PartNumber=number, Body=body)
            _note_retries(resp, self._progress, "s3-upload-part")
            self.parts[number] = resp["ETag"]
        finally:
            self._sem.release()

    async def finish(self) -> None:
        """Send the last part when multipart (its uploads then end with the task group)."""
        multipart = self.upload_id is not None or self._force_multipart
        if multipart and (self._buf.tell() or self.upload_id is None):
            await self._start_part(self._take_part())

    async def complete(self) -> None:
        """Make the object visible (all parts must have been uploaded)."""
        if self.upload_id is not None:
            parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(self.parts.items())]
            with aws.map_aws_errors(CONNECTOR, "complete-multipart-upload", self.target):
                resp = await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                    MultipartUpload={"Parts": parts})
        else:
            with aws.map_aws_errors(CONNECTOR, "put", self.target):
                resp = await self.client.put_object(Bucket=self.bucket, Key=self.key,
                                                    Body=self._take_part())
        _note_retries(resp, self._progress, "s3-complete")
        self.completed = True

    async def abort(self) -> None:
        if self.upload_id is not None and not self.completed:
            upload_id, self.upload_id = self.upload_id, None
            with aws.map_aws_errors(CONNECTOR, "abort-multipart-upload", self.target):
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                         UploadId=upload_id)


class S3Sink:
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
        self._fmt = fmt or format_for_path(self.url.key) or CSV
        #: No format was given and the name implies none: the bytes are not known to be
        #: records (a direct copy may move them without counting any).
        self.opaque = fmt is None and format_for_path(self.url.key) is None
        self._compression = compression
        self._gzip = _is_gzip(self.url.key, compression) if not self.url.is_prefix \
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

    @property
    def native_format(self) -> TextFormat:
        return self._fmt

    def can_consume(self, fmt: TextFormat) -> bool:
        return same_layout(fmt, self._fmt)

    async def schema(self) -> Schema | None:
        return Schema(self._fmt.columns) if self._fmt.columns else None

    def client(self) -> Any:
        return aws.client("s3", parallel=self.parallel, endpoint_url=self.endpoint_url)

    def _part_key(self, index: int) -> str:
        return self.url.key + part_name(index, self._fmt, self._gzip)

    async def abort_stale_uploads(self, client: Any) -> int:
        """Abort pending multipart uploads a killed earlier write left for our key(s).

        For a key URL: uploads of exactly that key; for a prefix: uploads of ``part-NNNNN.*``
        keys directly below it. Returns how many were aborted.
        """
        bucket, key = self.url.bucket, self.url.key
        aborted = 0
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
        while True:
            with aws.map_aws_errors(CONNECTOR, "list-multipart-uploads", self.describe):
                page = await client.list_multipart_uploads(**kwargs)
            for upload in page.get("Uploads", []):
                name = upload["Key"][len(key):]
                ours = (upload["Key"] == key) if not self.url.is_prefix else (
                    "/" not in name and bool(PART_RE.match(name)))
                if ours:
                    with aws.map_aws_errors(CONNECTOR, "abort-multipart-upload", self.describe):
                        await client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                                            UploadId=upload["UploadId"])
                    aborted += 1
            if not page.get("IsTruncated"):
                return aborted
            kwargs["KeyMarker"] = page.get("NextKeyMarker")
            kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker")

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        async with self.client() as client:
            await self.abort_stale_uploads(client)
            uploads: list[_Upload] = []
            sem = anyio.Semaphore(self.parallel)
            try:
                async with anyio.create_task_group() as tg:
                    if self.url.is_prefix:
                        await self._write_parts(client, fmt, inp, progress, uploads, sem, tg)
                    else:
                        up = _Upload(client, self.url.bucket, self.url.key,
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
                    await self._remove_stale_parts(client, {u.key for u in uploads})
            except BaseException as exc:
                with anyio.move_on_after(30, shield=True):
                    for up in uploads:
                        with contextlib.suppress(Exception):
                            await up.abort()
                if isinstance(exc, BaseExceptionGroup):
                    raise root_cause(exc) from None
                raise

    async def _write_parts(self, client: Any, fmt: TextFormat, inp: BytesIn, progress: Progress,
                           uploads: list[_Upload], sem: anyio.Semaphore, tg: TaskGroup) -> None:
        async def open_part(index: int) -> _Upload:
            upload = _Upload(client, self.url.bucket, self._part_key(index),
                             part_size=self.part_size, sem=sem, tg=tg, progress=progress,
                             multipart=True)
            uploads.append(upload)
            return upload

        await write_parts(fmt, inp, progress, location=self.describe, part_bytes=self.file_bytes,
                          gzip=self._gzip, open_part=open_part)

    async def _remove_stale_parts(self, client: Any, keep: set[str]) -> None:
        stale = [obj.key async for obj in iter_objects(client, self.url.bucket, self.url.key)
                 if "/" not in obj.key[len(self.url.key):]
                 and PART_RE.match(obj.key[len(self.url.key):]) and obj.key not in keep]
        for i in range(0, len(stale), 1000):
            with aws.map_aws_errors(CONNECTOR, "delete", self.describe):
                await client.delete_objects(
                    Bucket=self.url.bucket,
                    Delete={"Objects": [{"Key": k} for k in stale[i:i + 1000]], "Quiet": True})

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
                await self._upload_ranges(client, reader, progress)
            return int(reader.size)

    async def _upload_ranges(self, client: Any, reader: RangeReader,
                             progress: Progress) -> None:
        size = reader.size
        target = str(self.url)
        bucket, key = self.url.bucket, self.url.key
        if size <= self.part_size:
            body = await reader.read_at(0, size)
            with aws.map_aws_errors(CONNECTOR, "put", target):
                resp = await client.put_object(Bucket=bucket, Key=key, Body=body)
            _note_retries(resp, progress, "s3-put")
            progress.add(nbytes=size)
            return
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        with aws.map_aws_errors(CONNECTOR, "create-multipart-upload", target):
            created = await client.create_multipart_upload(Bucket=bucket, Key=key)
        upload_id = created["UploadId"]
        etags: dict[int, str] = {}
        # Taken before a part's task starts and given back when its upload ends: at most
        # `parallel` parts are read and held at once, and no more tasks than that wait.
        slots = anyio.Semaphore(self.parallel)

        async def part(number: int, start: int, end: int) -> None:
            try:
                body = await reader.read_at(start, end - start)
                with aws.map_aws_errors(CONNECTOR, "upload-part", target):
                    resp = await client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                                    PartNumber=number, Body=body)
                _note_retries(resp, progress, "s3-upload-part")
                etags[number] = resp["ETag"]
                progress.add(nbytes=end - start)
            finally:
                slots.release()

        try:
            async with anyio.create_task_group() as tg:
                for number, start in enumerate(range(0, size, part_size), start=1):
                    await slots.acquire()
                    tg.start_soon(part, number, start, min(start + part_size, size))
            with aws.map_aws_errors(CONNECTOR, "complete-multipart-upload", target):
                resp = await client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                               for n, e in sorted(etags.items())]})
            _note_retries(resp, progress, "s3-complete")
        except BaseException as exc:
            with anyio.move_on_after(30, shield=True), contextlib.suppress(Exception):
                await client.abort_multipart_upload(Bucket=bucket, Key=key,
                                                    UploadId=upload_id)
            if isinstance(exc, BaseExceptionGroup):
                raise root_cause(exc) from None
            raise

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
            total = 0
            requests = anyio.CapacityLimiter(self.copy_parallel)
            pending = anyio.Semaphore(self.copy_parallel)

            async def one(obj: S3Object, dest: str) -> None:
                try:
                    await self._copy_one(client, source.url.bucket, obj, dest, requests,
                                         progress)
                finally:
                    pending.release()

            async def rest() -> AsyncIterator[S3Object]:
                if first is not None:
                    yield first
                async for obj in objects:
                    yield obj

            try:
                async with anyio.create_task_group() as tg:
                    async for obj in rest():
                        if prefix is None:
                            dest = (self.url.key + posixpath.basename(obj.key)) \
                                if self.url.is_prefix else self.url.key
                        else:
                            dest = self.url.key + obj.key[len(prefix):]
                        await pending.acquire()
                        tg.start_soon(one, obj, dest)
                        total += obj.size
            except BaseExceptionGroup as group:
                raise root_cause(group) from None
            return total

    def _dest_gzip(self, key: str, prefix: str | None) -> bool:
        if self.url.is_prefix:
            return _is_gzip(key, self._compression)
        return self._gzip

    async def _copy_one(self, client: Any, bucket: str, obj: S3Object, dest: str,
                        limiter: anyio.CapacityLimiter, progress: Progress) -> None:
        source = {"Bucket": bucket, "Key": obj.key}
        target = f"s3://{self.url.bucket}/{dest}"
        if obj.size <= self.copy_threshold:
            async with limiter:
                with aws.map_aws_errors(CONNECTOR, "copy-object", target):
                    kwargs: dict[str, Any] = {"Bucket": self.url.bucket, "Key": dest,
                                              "CopySource": source}
                    if obj.etag:
                        kwargs["CopySourceIfMatch"] = obj.etag
                    resp = await client.copy_object(**kwargs)
                _note_retries(resp, progress, "s3-copy")
            return
        with aws.map_aws_errors(CONNECTOR, "create-multipart-upload", target):
            created = await client.create_multipart_upload(Bucket=self.url.bucket, Key=dest)
        upload_id = created["UploadId"]
        etags: dict[int, str] = {}

        async def part(number: int, start: int, end: int) -> None:
            async with limiter:
                with aws.map_aws_errors(CONNECTOR, "upload-part-copy", target):
                    kwargs: dict[str, Any] = {
                        "Bucket": self.url.bucket, "Key": dest, "UploadId": upload_id,
                        "PartNumber": number, "CopySource": source,
                        "CopySourceRange": f"bytes={start}-{end - 1}"}
                    if obj.etag:
                        kwargs["CopySourceIfMatch"] = obj.etag
                    resp = await client.upload_part_copy(**kwargs)
                _note_retries(resp, progress, "s3-copy")
                etags[number] = resp["CopyPartResult"]["ETag"]

        part_size = max(self.copy_part_size, -(-obj.size // MAX_PARTS))
        try:
            async with anyio.create_task_group() as tg:
                for i, start in enumerate(range(0, obj.size, part_size)):
                    tg.start_soon(part, i + 1, start, min(start + part_size, obj.size))
            with aws.map_aws_errors(CONNECTOR, "complete-multipart-upload", target):
                await client.complete_multipart_upload(
                    Bucket=self.url.bucket, Key=dest, UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                               for n, e in sorted(etags.items())]})
        except BaseException:
            with anyio.move_on_after(30, shield=True):
                with contextlib.suppress(Exception):
                    await client.abort_multipart_upload(Bucket=self.url.bucket, Key=dest,
                                                        UploadId=upload_id)
            raise


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
        return await _head(client, u.bucket, u.key) is not None


async def prefix_not_empty(url: str, *, endpoint_url: str | None = None) -> bool:
    """True when at least one object lies below ``s3://bucket/prefix`` (S3PrefixNotEmpty)."""
    u = parse_s3_url(url)
    async with aws.client("s3", endpoint_url=endpoint_url) as client:
        return await _any_object(client, u.bucket, u.key)


async def upload_file(path: str | Path, url: str, *, parallel: int = 4,
                      endpoint_url: str | None = None) -> int:
    """Upload one local file byte for byte (no codec, no compression change); returns bytes."""
    from connectors.copy import copy
    from connectors.local import LocalSource

    source = LocalSource(str(path), CSV, compression="none")
    sink = S3Sink(url, CSV, compression="none", parallel=parallel, endpoint_url=endpoint_url)
    return (await copy(source, sink)).bytes


async def upload_directory(directory: str | Path, url: str, *, parallel: int = 4,
                           endpoint_url: str | None = None) -> list[str]:
    """Upload every file below ``directory`` to ``url`` (a prefix) keeping relative paths."""
    root = Path(directory)
    prefix = url if url.endswith("/") else url + "/"
    files = await anyio.to_thread.run_sync(
        lambda: sorted(p for p in root.rglob("*") if p.is_file()))
    urls = [prefix + p.relative_to(root).as_posix() for p in files]
    limiter = anyio.CapacityLimiter(max(1, parallel))

    async def one(p: Path, u: str) -> None:
        async with limiter:
            await upload_file(p, u, endpoint_url=endpoint_url)

    try:
        async with anyio.create_task_group() as tg:
            for p, u in zip(files, urls, strict=True):
                tg.start_soon(one, p, u)
    except BaseExceptionGroup as group:
        raise root_cause(group) from None
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
    limiter = anyio.CapacityLimiter(max(1, parallel))

    async def one(key: str, dest: Path) -> None:
        async with limiter:
            source = S3Source(f"s3://{u.bucket}/{key}", CSV, compression="none",
                              endpoint_url=endpoint_url)
            await copy(source, LocalSink(str(dest), CSV, compression="none"))

    try:
        async with anyio.create_task_group() as tg:
            for key, dest in zip(keys, paths, strict=True):
                tg.start_soon(one, key, dest)
    except BaseExceptionGroup as group:
        raise root_cause(group) from None
    return paths
