"""What every S3 module shares: the URL, the object record, sizes and small rules.

``s3://bucket/key`` parsing, the :class:`S3Object` a listing yields, the part and range size
defaults, whether a key is gzip, and counting the SDK's own retries into a copy's progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from connectors import aws, formats
from connectors.base import DEFAULT_CHUNK_SIZE, Progress
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
