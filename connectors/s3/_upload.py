"""Writing S3 objects: the one multipart upload (:class:`Multipart`: the streaming writer,
the parallel file parts and the server-side part copies all go through it), the streaming
writer, parallel upload of a local file's ranges, and cleaning up what an earlier, killed
write left (pending uploads, stale part objects).

An object becomes visible only when its upload completes; a failed upload is aborted.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import sys
from typing import Any

import anyio
from anyio.abc import TaskGroup

from connectors import aws
from connectors.base import Progress, RangeReader, output_fence_held
from connectors.errors import ConfigError, TimedOut, root_cause
from connectors.formats import PART_RE
from connectors.timeouts import ReportingBody

from ._listing import iter_objects
from ._parallel import each_at_most
from ._url import CONNECTOR, MAX_PARTS, S3Url, note_retries

#: How long an abort may take in shielded cleanup.
ABORT_TIMEOUT = 30
#: ... when the write failed because the server went silent: it most likely will not answer
#: the abort either, and a pending upload left behind is removed by the next write of the same
#: key or prefix (:func:`abort_stale_uploads`) and is never visible.
ABORT_AFTER_SILENCE = 5


def abort_bound() -> float:
    """How long the abort in the cleanup of the error being handled may take."""
    error = sys.exc_info()[1]
    if isinstance(error, BaseExceptionGroup):
        error = root_cause(error)
    return ABORT_AFTER_SILENCE if isinstance(error, TimedOut) else ABORT_TIMEOUT


class Multipart:
    """The multipart upload of ``key``; nothing is visible until :meth:`complete`."""

    def __init__(self, client: Any, bucket: str, key: str, progress: Progress) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.progress = progress
        self.upload_id: str | None = None
        self.etags: dict[int, str] = {}
        self.completed = False

    @property
    def target(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    async def create(self) -> None:
        with aws.map_errors(CONNECTOR, "create-multipart-upload", self.target):
            created = await self.client.create_multipart_upload(Bucket=self.bucket,
                                                                Key=self.key)
        self.upload_id = created["UploadId"]

    async def send_part(self, number: int, body: io.BytesIO) -> None:
        with aws.map_errors(CONNECTOR, "upload-part", self.target), \
                aws.sending(body, CONNECTOR, "UploadPart", self.target):
            resp = await self.client.upload_part(Bucket=self.bucket, Key=self.key,
                                                 UploadId=self.upload_id, PartNumber=number,
                                                 Body=body)
        note_retries(resp, self.progress, "s3-upload-part")
        self.etags[number] = resp["ETag"]

    async def copy_part(self, number: int, source: dict[str, str], start: int, end: int,
                        etag: str) -> None:
        """Part ``number`` as bytes [start, end) of ``source``, copied by S3 itself
        (``etag``, when known, makes a source that changed meanwhile fail the copy)."""
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket, "Key": self.key, "UploadId": self.upload_id,
            "PartNumber": number, "CopySource": source,
            "CopySourceRange": f"bytes={start}-{end - 1}"}
        if etag:
            kwargs["CopySourceIfMatch"] = etag
        with aws.map_errors(CONNECTOR, "upload-part-copy", self.target):
            resp = await self.client.upload_part_copy(**kwargs)
        note_retries(resp, self.progress, "s3-copy")
        self.etags[number] = resp["CopyPartResult"]["ETag"]

    async def complete(self, *, retry_cause: str | None = "s3-complete") -> None:
        """Make the object visible (every part must have been sent)."""
        parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(self.etags.items())]
        # a worker that lost its claim completes nothing
        async with output_fence_held():
            with aws.map_errors(CONNECTOR, "complete-multipart-upload", self.target):
                resp = await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                    MultipartUpload={"Parts": parts})
        if retry_cause is not None:
            note_retries(resp, self.progress, retry_cause)
        self.completed = True

    async def abort(self) -> None:
        """Remove the pending upload (and its parts); nothing after :meth:`complete`."""
        if self.upload_id is not None and not self.completed:
            upload_id, self.upload_id = self.upload_id, None
            with aws.map_errors(CONNECTOR, "abort-multipart-upload", self.target):
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                         UploadId=upload_id)

    async def abort_quietly(self) -> None:
        """:meth:`abort` in shielded, bounded cleanup, its own failure ignored (the error
        that made us abort is the one to report)."""
        with anyio.move_on_after(abort_bound(), shield=True), contextlib.suppress(Exception):
            await self.abort()


class Upload:
    """One object being written from a stream: PutObject when small, else a
    :class:`Multipart` upload created on the first full part.

    The object becomes visible only in :meth:`complete`; :meth:`abort` removes a pending
    multipart upload. At most ``parallel`` parts are in flight (the semaphore also makes the
    writer wait, which is the backpressure on the incoming stream).
    """

    def __init__(self, client: Any, bucket: str, key: str, *, part_size: int,
                 sem: anyio.Semaphore, tg: TaskGroup, progress: Progress,
                 multipart: bool = False, count_written: bool = False) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.part_size = part_size
        self._sem = sem
        self._tg = tg
        self._progress = progress
        self._force_multipart = multipart
        #: Report each part's bytes to ``progress`` once it is uploaded (what was written,
        #: not what waits in the part buffers).
        self._count_written = count_written
        self._multipart = Multipart(client, bucket, key, progress)
        self.size = 0
        #: The part being filled. Parts are built in a BytesIO that botocore and aiohttp send
        #: as it is: bytes would be wrapped in a BytesIO that aiohttp then copies whole, so a
        #: part in flight held twice its size (and slicing a bytearray copied it twice more).
        self._buf: io.BytesIO = ReportingBody()  # an upload stalled mid-body is bounded
        self._next_part = 1
        self.completed = False
        #: ``--verify``: the MD5 of each part as sent (S3 returns each part's MD5 as its ETag)
        self.verify = False
        self._md5s: dict[int, bytes] = {}
        self._single_md5: bytes | None = None

    @property
    def target(self) -> str:
        return self._multipart.target

    @property
    def _started(self) -> bool:
        return self._multipart.upload_id is not None

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
        body, self._buf = self._buf, ReportingBody()
        body.seek(0)
        return body

    async def _start_part(self, body: io.BytesIO) -> None:
        await self._sem.acquire()
        try:
            if not self._started:
                await self._multipart.create()
            number = self._next_part
            if number > MAX_PARTS:
                raise ConfigError(f"{self.target}: more than {MAX_PARTS} parts; raise the part "
                                  "size", connector=CONNECTOR, operation="upload")
            self._next_part += 1
        except BaseException:
            self._sem.release()
            raise
        if self.verify:
            self._md5s[number] = hashlib.md5(body.getbuffer()).digest()
        self._tg.start_soon(self._put_part, number, body)

    async def _put_part(self, number: int, body: io.BytesIO) -> None:
        size = body.getbuffer().nbytes
        try:
            await self._multipart.send_part(number, body)
        finally:
            self._sem.release()
        if self._count_written:
            self._progress.add(nbytes=size)

    async def finish(self) -> None:
        """Send the last part when multipart (its uploads then end with the task group)."""
        multipart = self._started or self._force_multipart
        if multipart and (self._buf.tell() or not self._started):
            await self._start_part(self._take_part())

    async def complete(self) -> None:
        """Make the object visible (all parts must have been uploaded)."""
        if self._started:
            await self._multipart.complete()
        else:
            body = self._take_part()
            extra: dict[str, Any] = {}
            if self.verify:  # S3 refuses a body whose MD5 is not this: nothing is stored
                extra["ContentMD5"] = base64.b64encode(
                    self._single_md5 or hashlib.md5(body.getbuffer()).digest()).decode()
            async with output_fence_held():
                with aws.map_errors(CONNECTOR, "put", self.target), \
                        aws.sending(body, CONNECTOR, "PutObject", self.target):
                    resp = await self.client.put_object(Bucket=self.bucket, Key=self.key,
                                                        Body=body, **extra)
            note_retries(resp, self._progress, "s3-complete")
            if self._count_written:
                self._progress.add(nbytes=body.getbuffer().nbytes)
        self.completed = True

    async def abort(self) -> None:
        if not self.completed:
            await self._multipart.abort()

    def etags(self) -> tuple[str, str]:
        """(the ETag of what we sent, the ETag S3 computed of what it stored), for
        ``--verify``, once every part was sent and before :meth:`complete`: a multipart
        object's is the MD5 of its parts' MD5s and ``-N``. A single PutObject is sent with
        its MD5 (``Content-MD5``), which S3 checks before it stores anything."""
        if not self._started:
            self._single_md5 = hashlib.md5(self._buf.getbuffer()).digest()
            ours = self._single_md5.hex()
            return ours, ours
        numbers = sorted(self._md5s)
        ours = hashlib.md5(b"".join(self._md5s[n] for n in numbers)).hexdigest()
        try:
            stored = b"".join(bytes.fromhex(self._multipart.etags[n].strip('"'))
                              for n in numbers)
            theirs = hashlib.md5(stored).hexdigest()
        except (KeyError, ValueError):
            theirs = "unknown"  # an ETag that is no MD5 (SSE-KMS): nothing to compare
        return f"{ours}-{len(numbers)}", f"{theirs}-{len(numbers)}"


async def abort_stale_uploads(client: Any, url: S3Url) -> int:
    """Abort pending multipart uploads a killed earlier write left for ``url``'s key(s).

    For a key URL: uploads of exactly that key; for a prefix: uploads of ``part-NNNNN.*``
    keys directly below it. Returns how many were aborted.
    """
    bucket, key = url.bucket, url.key
    describe = str(url)
    aborted = 0
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
    while True:
        with aws.map_errors(CONNECTOR, "list-multipart-uploads", describe):
            page = await client.list_multipart_uploads(**kwargs)
        for upload in page.get("Uploads", []):
            name = upload["Key"][len(key):]
            ours = (upload["Key"] == key) if not url.is_prefix else (
                "/" not in name and bool(PART_RE.match(name)))
            if ours:
                with aws.map_errors(CONNECTOR, "abort-multipart-upload", describe):
                    await client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                                        UploadId=upload["UploadId"])
                aborted += 1
        if not page.get("IsTruncated"):
            return aborted
        kwargs["KeyMarker"] = page.get("NextKeyMarker")
        kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker")


async def remove_stale_parts(client: Any, url: S3Url, keep: set[str]) -> None:
    """Delete the ``part-NNNNN.*`` objects directly below prefix ``url`` not in ``keep``."""
    stale = [obj.key async for obj in iter_objects(client, url.bucket, url.key)
             if "/" not in obj.key[len(url.key):]
             and PART_RE.match(obj.key[len(url.key):]) and obj.key not in keep]
    for i in range(0, len(stale), 1000):
        with aws.map_errors(CONNECTOR, "delete", str(url)):
            await client.delete_objects(
                Bucket=url.bucket,
                Delete={"Objects": [{"Key": k} for k in stale[i:i + 1000]], "Quiet": True})


async def upload_ranges(client: Any, url: S3Url, reader: RangeReader, progress: Progress, *,
                        part_size: int, parallel: int) -> None:
    """Upload ``reader``'s bytes as the object ``url``: one PutObject up to ``part_size``,
    else parts read at their offsets and sent ``parallel`` at a time (at most ``parallel``
    parts are read and held at once)."""
    size = reader.size
    if size <= part_size:
        body = await reader.read_at(0, size)
        async with output_fence_held():
            with aws.map_errors(CONNECTOR, "put", str(url)), \
                    aws.sending(body, CONNECTOR, "PutObject", str(url)):
                resp = await client.put_object(Bucket=url.bucket, Key=url.key, Body=body)
        note_retries(resp, progress, "s3-put")
        progress.add(nbytes=size)
        return
    part_size = max(part_size, -(-size // MAX_PARTS))
    upload = Multipart(client, url.bucket, url.key, progress)
    await upload.create()

    async def part(numbered: tuple[int, int]) -> None:
        number, start = numbered
        end = min(start + part_size, size)
        await upload.send_part(number, await reader.read_at(start, end - start))
        progress.add(nbytes=end - start)

    try:
        await each_at_most(parallel, enumerate(range(0, size, part_size), start=1), part)
        await upload.complete()
    except BaseException:
        await upload.abort_quietly()
        raise
