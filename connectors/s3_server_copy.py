"""Copying S3 objects server-side: CopyObject, or parallel UploadPartCopy for big objects.

No data passes through this process, so requests are cheap here and many run at once; each
carries ``CopySourceIfMatch`` so an object that changes mid-copy fails the copy. A failed
part copy aborts its multipart upload.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from connectors import aws
from connectors.base import Progress
from connectors.s3_endpoint import CONNECTOR, MAX_PARTS, S3Object, note_retries, root_cause


@dataclass(frozen=True)
class ServerCopy:
    """Copies into ``bucket``: objects above ``threshold`` go as parts of ``part_size``;
    ``parallel`` requests run at once."""

    bucket: str
    threshold: int
    part_size: int
    parallel: int

    async def copy_all(self, client: Any, source_bucket: str, objects: AsyncIterator[S3Object],
                       dest_key: Callable[[S3Object], str], progress: Progress) -> int:
        """Copy every object to ``dest_key(obj)``, reading the listing lazily with at most
        ``parallel`` object copies pending; returns the bytes copied."""
        total = 0
        requests = anyio.CapacityLimiter(self.parallel)
        pending = anyio.Semaphore(self.parallel)

        async def one(obj: S3Object, dest: str) -> None:
            try:
                await self.copy_one(client, source_bucket, obj, dest, requests, progress)
            finally:
                pending.release()

        try:
            async with anyio.create_task_group() as tg:
                async for obj in objects:
                    dest = dest_key(obj)
                    await pending.acquire()
                    tg.start_soon(one, obj, dest)
                    total += obj.size
        except BaseExceptionGroup as group:
            raise root_cause(group) from None
        return total

    async def copy_one(self, client: Any, bucket: str, obj: S3Object, dest: str,
                       limiter: anyio.CapacityLimiter, progress: Progress) -> None:
        source = {"Bucket": bucket, "Key": obj.key}
        target = f"s3://{self.bucket}/{dest}"
        if obj.size <= self.threshold:
            async with limiter:
                with aws.map_aws_errors(CONNECTOR, "copy-object", target):
                    kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": dest,
                                              "CopySource": source}
                    if obj.etag:
                        kwargs["CopySourceIfMatch"] = obj.etag
                    resp = await client.copy_object(**kwargs)
                note_retries(resp, progress, "s3-copy")
            return
        with aws.map_aws_errors(CONNECTOR, "create-multipart-upload", target):
            created = await client.create_multipart_upload(Bucket=self.bucket, Key=dest)
        upload_id = created["UploadId"]
        etags: dict[int, str] = {}

        async def part(number: int, start: int, end: int) -> None:
            async with limiter:
                with aws.map_aws_errors(CONNECTOR, "upload-part-copy", target):
                    kwargs: dict[str, Any] = {
                        "Bucket": self.bucket, "Key": dest, "UploadId": upload_id,
                        "PartNumber": number, "CopySource": source,
                        "CopySourceRange": f"bytes={start}-{end - 1}"}
                    if obj.etag:
                        kwargs["CopySourceIfMatch"] = obj.etag
                    resp = await client.upload_part_copy(**kwargs)
                note_retries(resp, progress, "s3-copy")
                etags[number] = resp["CopyPartResult"]["ETag"]

        part_size = max(self.part_size, -(-obj.size // MAX_PARTS))
        try:
            async with anyio.create_task_group() as tg:
                for i, start in enumerate(range(0, obj.size, part_size)):
                    tg.start_soon(part, i + 1, start, min(start + part_size, obj.size))
            with aws.map_aws_errors(CONNECTOR, "complete-multipart-upload", target):
                await client.complete_multipart_upload(
                    Bucket=self.bucket, Key=dest, UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                               for n, e in sorted(etags.items())]})
        except BaseException:
            with anyio.move_on_after(30, shield=True):
                with contextlib.suppress(Exception):
                    await client.abort_multipart_upload(Bucket=self.bucket, Key=dest,
                                                        UploadId=upload_id)
            raise
