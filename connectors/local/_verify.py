"""``--verify`` for local files: the bytes as written, against the bytes read back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from connectors.base import TextFormat
from connectors.formats import Gunzip, RecordCounter, parquet_row_count

from ._atomic import AtomicFile

_READ = 1024 * 1024


class HashingPart:
    """A part (or file) being written, hashing the bytes as they go to it."""

    def __init__(self, part: AtomicFile, sent: Any) -> None:
        self._part = part
        self._sent = sent  # a hashlib object

    async def write(self, data: bytes) -> None:
        self._sent.update(data)
        await self._part.write(data)

    async def finish(self) -> None:
        await self._part.finish()


def stored_figures(paths: list[Path], fmt: TextFormat, gzip: bool) -> tuple[int, str]:
    """(records, SHA-256) of the files as stored, read back from disk in order (blocking)."""
    digest = hashlib.sha256()
    counter = RecordCounter(fmt)
    rows = 0
    for path in paths:
        gunzip = Gunzip(location=str(path)) if gzip else None
        with open(path, "rb") as fh:
            while raw := fh.read(_READ):
                digest.update(raw)
                if fmt.kind != "parquet":
                    counter.feed(gunzip.feed(raw) if gunzip else raw)
        if gunzip is not None:
            counter.feed(gunzip.finish())
        if fmt.kind == "parquet":
            rows += parquet_row_count(str(path))
    return (rows if fmt.kind == "parquet" else counter.records), digest.hexdigest()
