"""Copying S3 objects server-side: CopyObject, or parallel UploadPartCopy for big objects.

No data passes through this process, so requests are cheap here and many run at once; each
carries ``CopySourceIfMatch`` so an object that changes mid-copy fails the copy. A failed
part copy aborts its multipart upload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from connectors import aws
from connectors.base import Progress, output_fence_held

from ._parallel import each_at_most
from ._upload import Multipart
from ._url import CONNECTOR, MAX_PARTS, S3Object, note_retries


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

        async def one(obj: S3Object) -> None:
            nonlocal total
            dest = dest_key(obj)
            total += obj.size
            await self.copy_one(client, source_bucket, obj, dest, requests, progress)

        await each_at_most(self.parallel, objects, one)
        return total

    async def copy_one(self, client: Any, bucket: str, obj: S3Object, dest: str,
                       limiter: anyio.CapacityLimiter, progress: Progress) -> None:
        source = {"Bucket": bucket, "Key": obj.key}
        target = f"s3://{self.bucket}/{dest}"
        if obj.size <= self.threshold:
            async with limiter:
                with aws.map_errors(CONNECTOR, "copy-object", target):
                    kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": dest,
                                              "CopySource": source}
                    if obj.etag:
                        kwargs["CopySourceIfMatch"] = obj.etag
                    async with output_fence_held():  # a stale worker copies nothing
                        resp = await client.copy_object(**kwargs)
                note_retries(resp, progress, "s3-copy")
            return
        upload = Multipart(client, self.bucket, dest, progress)
        await upload.create()

        async def part(number: int, start: int, end: int) -> None:
            async with limiter:
                await upload.copy_part(number, source, start, end, obj.etag)

        part_size = max(self.part_size, -(-obj.size // MAX_PARTS))
        try:
            async with anyio.create_task_group() as tg:
                for i, start in enumerate(range(0, obj.size, part_size)):
                    tg.start_soon(part, i + 1, start, min(start + part_size, obj.size))
            await upload.complete(retry_cause=None)
        except BaseException:
            await upload.abort_quietly()
            raise
