"""Finding S3 objects: lazy paginated listing, HEAD of one key, Redshift-style manifests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from connectors import aws
from connectors.errors import ConfigError, NotFoundError

from ._url import CONNECTOR, S3Object, parse_s3_url


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
        with aws.map_errors(CONNECTOR, "list", f"s3://{bucket}/{prefix}"):
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


async def any_object(client: Any, bucket: str, prefix: str) -> bool:
    """True when at least one object lies below ``prefix``."""
    with aws.map_errors(CONNECTOR, "list", f"s3://{bucket}/{prefix}"):
        page = await client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return bool(page.get("Contents"))


async def head(client: Any, bucket: str, key: str) -> S3Object | None:
    """The object at ``key``, or None when there is none."""
    try:
        with aws.map_errors(CONNECTOR, "head", f"s3://{bucket}/{key}"):
            found = await client.head_object(Bucket=bucket, Key=key)
    except NotFoundError:
        return None
    return S3Object(key, int(found.get("ContentLength", 0)), found.get("ETag", ""), bucket)


async def read_manifest(client: Any, manifest_url: str) -> AsyncIterator[S3Object]:
    """The objects a Redshift-style manifest lists (``{"entries": [{"url", "mandatory"}]}``),
    in manifest order. A missing ``mandatory`` entry is an error; other missing ones are skipped.
    """
    u = parse_s3_url(manifest_url)
    with aws.map_errors(CONNECTOR, "get", manifest_url):
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
        obj = await head(client, entry.bucket, entry.key)
        if obj is None:
            if mandatory:
                raise NotFoundError(f"{url}: listed as mandatory in {manifest_url} but missing",
                                    connector=CONNECTOR, operation="read")
            continue
        yield obj
