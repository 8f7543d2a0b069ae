"""Reading S3 objects and prefixes: listing, ranged parallel GETs delivered in order, manifests;
one object fetched into a writer by ranges at their offsets (a direct copy)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from connectors import aws
from connectors.base import (
    BytesOut,
    EndpointOptions,
    Progress,
    RangeWriter,
    RowsOut,
    Schema,
    TextFormat,
    Total,
)
from connectors.errors import NotFoundError
from connectors.formats import (
    NamedFormatSource,
    ParquetInput,
    RangeFile,
    decoder_for,
    produce_parquet_rows,
    read_parquet_schema,
)

from ._download import DIRECT_RANGE, Ranges
from ._listing import any_object, head, iter_objects, read_manifest
from ._url import CONNECTOR, DEFAULT_CHUNK, S3Object, is_gzip, parse_s3_url

#: A prefix of more objects than this has no total on the progress line.
TOTAL_MAX_OBJECTS = 10_000


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
        # the direct lane holds WRITE_BATCH per range whatever its size: bigger ranges by
        # default (fewer requests), the chunk size when one was chosen
        direct = DIRECT_RANGE if self.chunk_size == DEFAULT_CHUNK else self.chunk_size
        return Ranges(self.url.bucket, self.chunk_size, self.parallel, self.max_range_attempts,
                      direct_range=direct)

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

    async def total(self) -> Total | None:
        """The bytes to read: the object's size, or the sizes of the first
        ``TOTAL_MAX_OBJECTS`` objects of a prefix (more: unknown, rather than listing a big
        prefix twice). None for a manifest or when an object is decompressed."""
        if self.manifest_url:
            return None
        async with self.client() as client:
            _, objects = await self.resolve(client)
            nbytes = 0
            for count, obj in enumerate([o async for o in _first(objects, TOTAL_MAX_OBJECTS)]):
                if self.is_gzip(obj.key) or count >= TOTAL_MAX_OBJECTS:
                    return None
                nbytes += obj.size
            return Total(bytes=nbytes)

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        async with self.client() as client:
            _, objects = await self.resolve(client)
            await self._ranges.stream(client, objects, fmt, out, progress, self.is_gzip)

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

            async def write(offset: int, *pieces: bytes) -> None:
                await writer.write_at(offset, *pieces)
                progress.add(nbytes=sum(len(p) for p in pieces))

            await self._ranges.fetch_into(client, obj, progress, write)
            return obj.size

    async def schema(self) -> Schema | None:
        if self._fmt.kind == "parquet" and not self._fmt.columns:
            async with self.client() as client:
                _, objects = await self.resolve(client)
                async for obj in objects:
                    opener = self._parquet_opener(client, obj, Progress())
                    return await read_parquet_schema(self._ranges_location(obj), opener)
            return None
        return await super().schema()

    def _ranges_location(self, obj: S3Object) -> str:
        return f"s3://{obj.bucket or self.url.bucket}/{obj.key}"

    def _parquet_opener(self, client: Any, obj: S3Object,
                        progress: Progress) -> Callable[[], RangeFile]:
        """A file over ``obj`` for pyarrow (in a worker thread): each read a ranged GET."""
        ranges = self._ranges

        async def read_at(offset: int, length: int) -> bytes:
            pieces: list[bytes] = []

            async def take(_offset: int, piece: bytes) -> None:
                pieces.append(piece)

            await ranges.read(client, obj, offset, offset + length, progress, take)
            data = b"".join(pieces)
            progress.add(nbytes=len(data))
            return data

        # pyarrow reads from threads of its own, not only the worker thread it was called
        # in, so the way back to this event loop is named explicitly
        token = anyio.lowlevel.current_token()

        def sync_read(offset: int, length: int) -> bytes:
            return anyio.from_thread.run(read_at, offset, length, token=token)

        return lambda: RangeFile(obj.size, sync_read)

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        if self._fmt.kind == "parquet":
            async with self.client() as client:
                _, objects = await self.resolve(client)

                async def files() -> AsyncIterator[ParquetInput]:
                    async for obj in objects:
                        yield (self._ranges_location(obj),
                               self._parquet_opener(client, obj, progress))

                await produce_parquet_rows(files(), out, progress)
            return
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


async def _first(objects: AsyncIterator[S3Object], limit: int) -> AsyncIterator[S3Object]:
    """The first ``limit + 1`` objects (one more says there are more than ``limit``)."""
    count = 0
    async for obj in objects:
        yield obj
        count += 1
        if count > limit:
            return


def source_from_url(url: str, options: EndpointOptions) -> S3Source:
    """The format is ``options.format``, else the name's (``.csv``...), else CSV."""
    return S3Source(url, options.format, compression=options.compression,
                    parallel=options.parallel, chunk_size=options.chunk_size)
