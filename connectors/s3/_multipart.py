"""One S3 multipart upload: created, its parts sent (or copied server-side) by number,
completed, or aborted. Every multipart write of the connector goes through :class:`Multipart`
(the streaming writer, parallel file parts, server-side part copies)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import anyio

from connectors import aws
from connectors.base import Progress

from ._url import CONNECTOR, note_retries

#: How long an abort may take in shielded cleanup.
ABORT_TIMEOUT = 30


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
        with aws.map_errors(CONNECTOR, "upload-part", self.target):
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
        with anyio.move_on_after(ABORT_TIMEOUT, shield=True), contextlib.suppress(Exception):
            await self.abort()
