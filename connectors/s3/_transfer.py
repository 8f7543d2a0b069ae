"""The S3 helpers the engine calls besides copies: whether a key or a prefix has objects
(preconditions), and whole files and directories moved byte for byte (ShellCommandActivity
staging)."""

from __future__ import annotations

from pathlib import Path

import anyio

from connectors import aws
from connectors.base import CSV
from connectors.copy import copy
from connectors.errors import ConfigError
from connectors.local import LocalSink, LocalSource

from ._listing import any_object, head, iter_objects
from ._parallel import each_at_most
from ._sink import S3Sink
from ._source import S3Source
from ._url import CONNECTOR, parse_s3_url


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

    async def one(pair: tuple[Path, str]) -> None:
        await upload_file(pair[0], pair[1], endpoint_url=endpoint_url)

    await each_at_most(parallel, zip(files, urls, strict=True), one)
    return urls


async def download_prefix(url: str, directory: str | Path, *, parallel: int = 4,
                          endpoint_url: str | None = None) -> list[Path]:
    """Download every object below ``url`` into ``directory`` (relative keys kept), raw bytes."""
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

    async def one(pair: tuple[str, Path]) -> None:
        key, dest = pair
        source = S3Source(f"s3://{u.bucket}/{key}", CSV, compression="none",
                          endpoint_url=endpoint_url)
        sink = LocalSink(str(dest), CSV, compression="none")
        source.opaque = sink.opaque = True  # raw bytes: the direct lane, as upload_file
        await copy(source, sink)

    await each_at_most(parallel, zip(keys, paths, strict=True), one)
    return paths


async def list_names(url: str, *, endpoint_url: str | None = None) -> list[str]:
    """The names of the objects below prefix ``url``, relative to it, in key order."""
    u = parse_s3_url(url)
    prefix = u.key if (u.is_prefix or not u.key) else u.key + "/"
    async with aws.client("s3", endpoint_url=endpoint_url) as client:
        return [obj.key[len(prefix):] async for obj in iter_objects(client, u.bucket, prefix)]


async def delete_names(url: str, names: list[str], *, endpoint_url: str | None = None) -> None:
    """Delete the objects ``names`` (relative to prefix ``url``); missing ones are no error."""
    u = parse_s3_url(url)
    prefix = u.key if (u.is_prefix or not u.key) else u.key + "/"
    async with aws.client("s3", endpoint_url=endpoint_url) as client:
        for i in range(0, len(names), 1000):
            with aws.map_errors(CONNECTOR, "delete", url):
                await client.delete_objects(Bucket=u.bucket, Delete={
                    "Objects": [{"Key": prefix + n} for n in names[i:i + 1000]], "Quiet": True})
