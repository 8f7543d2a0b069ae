"""Writing S3 objects: the multipart writer, parallel upload of a local file's ranges, and
cleaning up what an earlier, killed write left (pending uploads, stale part objects).

An object becomes visible only when its upload completes; a failed upload is aborted.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import anyio
from anyio.abc import TaskGroup

from connectors import aws
from connectors.base import Progress, RangeReader
from connectors.errors import ConfigError
from connectors.filesink import PART_RE
from connectors.s3_endpoint import CONNECTOR, MAX_PARTS, S3Url, note_retries, root_cause
from connectors.s3_listing import iter_objects


class Upload:
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
            note_retries(resp, self._progress, "s3-upload-part")
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
        note_retries(resp, self._progress, "s3-complete")
        self.completed = True

    async def abort(self) -> None:
        if self.upload_id is not None and not self.completed:
            upload_id, self.upload_id = self.upload_id, None
            with aws.map_aws_errors(CONNECTOR, "abort-multipart-upload", self.target):
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                         UploadId=upload_id)

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
        with aws.map_aws_errors(CONNECTOR, "list-multipart-uploads", describe):
            page = await client.list_multipart_uploads(**kwargs)
        for upload in page.get("Uploads", []):
            name = upload["Key"][len(key):]
            ours = (upload["Key"] == key) if not url.is_prefix else (
                "/" not in name and bool(PART_RE.match(name)))
            if ours:
                with aws.map_aws_errors(CONNECTOR, "abort-multipart-upload", describe):
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
        with aws.map_aws_errors(CONNECTOR, "delete", str(url)):
            await client.delete_objects(
                Bucket=url.bucket,
                Delete={"Objects": [{"Key": k} for k in stale[i:i + 1000]], "Quiet": True})


async def upload_ranges(client: Any, url: S3Url, reader: RangeReader, progress: Progress, *,
                        part_size: int, parallel: int) -> None:
    """Upload ``reader``'s bytes as the object ``url``: one PutObject up to ``part_size``,
    else parts read at their offsets and sent ``parallel`` at a time."""
    size = reader.size
    target = str(url)
    bucket, key = url.bucket, url.key
    if size <= part_size:
        body = await reader.read_at(0, size)
        with aws.map_aws_errors(CONNECTOR, "put", target):
            resp = await client.put_object(Bucket=bucket, Key=key, Body=body)
        note_retries(resp, progress, "s3-put")
        progress.add(nbytes=size)
        return
    part_size = max(part_size, -(-size // MAX_PARTS))
    with aws.map_aws_errors(CONNECTOR, "create-multipart-upload", target):
        created = await client.create_multipart_upload(Bucket=bucket, Key=key)
    upload_id = created["UploadId"]
    etags: dict[int, str] = {}
    # Taken before a part's task starts and given back when its upload ends: at most
    # `parallel` parts are read and held at once, and no more tasks than that wait.
    slots = anyio.Semaphore(parallel)

    async def part(number: int, start: int, end: int) -> None:
        try:
            body = await reader.read_at(start, end - start)
            with aws.map_aws_errors(CONNECTOR, "upload-part", target):
                resp = await client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                                PartNumber=number, Body=body)
            note_retries(resp, progress, "s3-upload-part")
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
        note_retries(resp, progress, "s3-complete")
    except BaseException as exc:
        with anyio.move_on_after(30, shield=True), contextlib.suppress(Exception):
            await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        if isinstance(exc, BaseExceptionGroup):
            raise root_cause(exc) from None
        raise
