"""What every S3 module shares: the URL, the object record, sizes and small rules.

``s3://bucket/key`` parsing, the :class:`S3Object` a listing yields, the part and range size
defaults, whether a key is gzip, and counting the SDK's own retries into a copy's progress.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from connectors import aws, formats
from connectors.base import DEFAULT_CHUNK_SIZE, Progress, TextFormat
from connectors.errors import ConfigError

CONNECTOR = "s3"
MiB = 1024 * 1024
MIN_PART = 5 * MiB
MAX_PARTS = 10_000
DEFAULT_CHUNK = DEFAULT_CHUNK_SIZE  # one default for S3Source/S3Sink and EndpointOptions
DEFAULT_FILE_BYTES = 128 * MiB
#: Objects above this are copied server-side as parallel UploadPartCopy parts of
#: DEFAULT_COPY_PART (one CopyObject of 1 GiB took 8.1 s on SeaweedFS, 16 parts 4.8 s).
DEFAULT_COPY_THRESHOLD = 64 * MiB
DEFAULT_COPY_PART = 64 * MiB
COPY_PARALLEL_FACTOR = 4


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


def is_gzip(key: str, compression: str | None) -> bool:
    """``compression`` when given (gzip or none), else whether ``key`` ends with ``.gz``."""
    return formats.is_gzip(key, compression, connector=CONNECTOR)


def note_retries(response: dict[str, Any], progress: Progress, cause: str) -> None:
    for _ in range(aws.retry_count(response)):
        progress.retried(cause)


@runtime_checkable
class S3Origin(Protocol):
    """A source whose data are S3 objects, as far as an S3 sink needs to know to have S3 copy
    them itself (CopyObject): which store and objects, and how each is compressed and laid
    out. :class:`~._source.S3Source` is one; the sink asks for this, not for that class."""

    url: S3Url
    #: Set when the objects are a manifest's entries (never copied server-side).
    manifest_url: str | None

    @property
    def endpoint(self) -> str: ...

    @property
    def compression(self) -> str | None: ...

    @property
    def native_format(self) -> TextFormat: ...

    def is_gzip(self, key: str) -> bool: ...

    async def resolve(self, client: Any) -> tuple[str | None, AsyncIterator[S3Object]]: ...
