"""A DynamoDB backup directory in the EMR tools' layout, as a copy's sink and source.

:class:`BackupSink` takes DynamoDB export lines (what the DynamoDB source produces) and writes
the directory the way the tools did (:mod:`connectors.formats.emr_dynamodb`):

* ``tools`` layout (``DynamoDBExport``): data files named by a random UUID, at most 100,000
  items each, a ``manifest`` listing them and an empty ``_SUCCESS``;
* ``hive`` layout (the ``exportDynamoDBTableToS3`` Hive script): ``000000_0``, ``000001_0``...
  of Hive map lines, no manifest.

The files are written to a local staging directory first. A local destination is then swapped
in whole (a rename); an ``s3://`` one is published in an order that never shows a torn backup:
an old ``_SUCCESS`` is deleted, the data files are uploaded (each object appears whole), then
the manifest, then ``_SUCCESS``, then the files of an earlier backup at that place that this
one did not write are deleted. A failure or cancellation removes the staging directory and
publishes nothing new.

:class:`BackupSource` reads any variant the published tools wrote: with a ``manifest`` its
entries (resolved by file name inside the directory when the backup was moved), else every file
not starting with ``_`` or ``.`` (as Hadoop lists input); ``.gz`` files are gunzipped.
"""

from __future__ import annotations

import gzip
import json
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import anyio

from connectors.base import DYNAMODB_JSONL, BytesIn, BytesOut, Progress, RowsIn, Schema, TextFormat
from connectors.errors import BadDataError, ConfigError, NotFoundError
from connectors.formats import (
    EMR_ITEMS_PER_FILE,
    EMR_MANIFEST_NAME,
    EMR_SUCCESS_NAME,
    ConversionError,
    EmrNullKey,
    emr_hive_line,
    emr_manifest_entries,
    emr_manifest_text,
    emr_tools_line,
    item_json,
    parse_emr_line,
    row_to_item,
)

_IO = anyio.CapacityLimiter(4)
_BLOCK = 1 << 20


def _is_s3(url: str) -> bool:
    return url.startswith("s3://")


def _local_dir(url: str) -> Path:
    from connectors.local import path_from_url

    return Path(path_from_url(url))


def _join(url: str, name: str) -> str:
    return url.rstrip("/") + "/" + name


def _display_url(url: str) -> str:
    """The directory as the manifest names it: s3:// as given, local paths as file:// URLs."""
    if _is_s3(url):
        return url.rstrip("/")
    return _local_dir(url).resolve().as_uri()


class _Lines:
    """DynamoDB export lines, iterated as their items (parsed where they are iterated)."""

    def __init__(self, lines: list[bytes], first: int, where: str) -> None:
        self.lines, self.first, self.where = lines, first, where

    def __iter__(self) -> Iterator[Any]:
        for offset, line in enumerate(self.lines, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)["Item"]
            except (ValueError, KeyError, TypeError) as exc:
                raise BadDataError(f"not a DynamoDB export line: {exc}", location=self.where,
                                   line=self.first + offset) from None


class BackupSink:
    """Writes a backup directory (see the module docstring); commits at end of stream."""

    counts_rows = True
    native_format: TextFormat | None = DYNAMODB_JSONL

    def __init__(self, url: str, staging_root: Path, *, layout: str = "tools",
                 null_key: EmrNullKey = "nULL") -> None:
        if layout not in ("tools", "hive"):
            raise ConfigError(f"unknown backup layout {layout!r}")
        self.url = url
        self.describe = url
        self.layout = layout
        self.null_key = null_key
        self.staging_root = staging_root
        self.files: list[str] = []
        self.items = 0

    def can_consume(self, f: TextFormat) -> bool:
        return f.kind == "dynamodb-jsonl"

    async def schema(self) -> Schema | None:
        return None

    # -- writing ---------------------------------------------------------------------------

    def _staging(self) -> Path:
        if _is_s3(self.url):
            base = self.staging_root
        else:
            target = _local_dir(self.url)
            base = target.parent
        path = base / f".headrace-backup-{secrets.token_hex(6)}"
        path.mkdir(parents=True, exist_ok=False)
        return path

    def _next_name(self) -> str:
        if self.layout == "hive":
            return f"{len(self.files):06d}_0"
        return str(uuid.uuid4())

    def _line(self, item: Any) -> str:
        if self.layout == "hive":
            return emr_hive_line(item, self.null_key)
        return emr_tools_line(item, self.null_key)

    async def _write_items(self, staging: Path, items: Iterator[Any], state: dict[str, Any],
                           ) -> None:
        """Append items to the current file, rotating every ITEMS_PER_FILE (in a thread)."""

        def write() -> None:
            for item in items:
                handle: IO[str] | None = state.get("handle")
                if handle is None or state["in_file"] >= EMR_ITEMS_PER_FILE:
                    if handle is not None:
                        handle.close()
                    name = self._next_name()
                    self.files.append(name)
                    handle = state["handle"] = (staging / name).open(
                        "w", encoding="utf-8", newline="\n")
                    state["in_file"] = 0
                handle.write(self._line(item))
                handle.write("\n")
                state["in_file"] += 1
                self.items += 1

        await anyio.to_thread.run_sync(write, limiter=_IO)

    async def _load(self, batches: Any, progress: Progress) -> None:
        staging = await anyio.to_thread.run_sync(self._staging, limiter=_IO)
        state: dict[str, Any] = {"in_file": 0}
        published = False
        try:
            async for items in batches:
                before = self.items
                await self._write_items(staging, iter(items), state)
                progress.add(rows=self.items - before)
            if state.get("handle") is not None:
                state["handle"].close()
            await self._publish(staging)
            published = True
        finally:
            if state.get("handle") is not None:
                state["handle"].close()
            if not published or _is_s3(self.url):
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(
                        lambda: shutil.rmtree(staging, ignore_errors=True), limiter=_IO)

    async def consume_bytes(self, f: TextFormat, inp: BytesIn, progress: Progress) -> None:
        if not self.can_consume(f):
            raise ConfigError(f"a backup directory takes DynamoDB export lines, not {f.kind}")

        async def batches() -> Any:
            # lines are parsed in the writer's thread (_write_items), not on the event loop
            pending = b""
            line_no = 0
            async for chunk in inp:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield _Lines(lines, line_no, self.describe)
                line_no += len(lines)
            if pending.strip():
                yield _Lines([pending], line_no, self.describe)

        await self._load(batches(), progress)

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        async def batches() -> Any:
            async for batch in inp:
                try:
                    yield [row_to_item(batch.schema.names, row) for row in batch.rows]
                except ConversionError as exc:
                    raise BadDataError(f"{exc}", location=self.describe) from None

        await self._load(batches(), progress)

    # -- publishing ------------------------------------------------------------------------

    def _finish_layout(self, staging: Path) -> list[str]:
        """Write the manifest and _SUCCESS (tools layout); the names to publish last."""
        if self.layout == "hive":
            return []
        base = _display_url(self.url)
        (staging / EMR_MANIFEST_NAME).write_text(
            emr_manifest_text([_join(base, name) for name in self.files]), encoding="utf-8")
        (staging / EMR_SUCCESS_NAME).write_bytes(b"")
        return [EMR_MANIFEST_NAME, EMR_SUCCESS_NAME]

    async def _publish(self, staging: Path) -> None:
        last = await anyio.to_thread.run_sync(self._finish_layout, staging, limiter=_IO)
        if _is_s3(self.url):
            await self._publish_s3(staging, last)
        else:
            await anyio.to_thread.run_sync(self._swap_local, staging, limiter=_IO)

    def _swap_local(self, staging: Path) -> None:
        target = _local_dir(self.url)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.headrace-old-{secrets.token_hex(4)}")
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    async def _publish_s3(self, staging: Path, last: list[str]) -> None:
        from connectors import s3

        existing = set(await s3.list_names(self.url))
        if EMR_SUCCESS_NAME in existing:
            await s3.delete_names(self.url, [EMR_SUCCESS_NAME])
        limiter = anyio.CapacityLimiter(4)

        async def upload(name: str) -> None:
            async with limiter:
                await s3.upload_file(staging / name, _join(self.url, name))

        async with anyio.create_task_group() as tg:
            for name in self.files:
                tg.start_soon(upload, name)
        for name in last:
            await s3.upload_file(staging / name, _join(self.url, name))
        written = set(self.files) | set(last)
        stale = sorted(n for n in existing - written if "/" not in n)
        if stale:
            await s3.delete_names(self.url, stale)


class BackupSource:
    """Reads a backup directory in any published variant as DynamoDB export lines."""

    counts_rows = True
    native_format: TextFormat | None = DYNAMODB_JSONL

    def __init__(self, url: str, staging_root: Path) -> None:
        self.url = url
        self.describe = url
        self.staging_root = staging_root
        self.items = 0
        self.files: list[str] = []

    def can_produce(self, f: TextFormat) -> bool:
        return f.kind == "dynamodb-jsonl"

    async def schema(self) -> Schema | None:
        return None

    async def _local_copy(self) -> tuple[Path, bool]:
        """(directory, is_temporary): the backup on local disk (s3:// is downloaded)."""
        if not _is_s3(self.url):
            directory = _local_dir(self.url)
            if not await anyio.to_thread.run_sync(directory.is_dir):
                raise NotFoundError(f"{self.url}: no backup directory here")
            return directory, False
        from connectors import s3

        directory = self.staging_root / f"backup-in-{secrets.token_hex(4)}"
        paths = await s3.download_prefix(self.url, directory)
        if not paths:
            raise NotFoundError(f"{self.url}: no objects below this prefix")
        return directory, True

    def _data_files(self, directory: Path) -> list[Path]:
        manifest = directory / EMR_MANIFEST_NAME
        if manifest.is_file():
            try:
                entries = emr_manifest_entries(manifest.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise BadDataError(f"{exc}", location=_join(self.url, EMR_MANIFEST_NAME)) \
                    from None
            files = []
            for url, mandatory in entries:
                path = directory / url.rstrip("/").rsplit("/", 1)[-1]
                if path.is_file():
                    files.append(path)
                elif mandatory:
                    raise NotFoundError(f"{_join(self.url, EMR_MANIFEST_NAME)} lists {url}, "
                                        f"which is not in {self.url}")
            return files
        return sorted(p for p in directory.iterdir()
                      if p.is_file() and not p.name.startswith(("_", ".")))

    async def produce_bytes(self, f: TextFormat, out: BytesOut, progress: Progress) -> None:
        if not self.can_produce(f):
            raise ConfigError(f"a backup directory renders DynamoDB export lines, not {f.kind}")
        directory, temporary = await self._local_copy()
        try:
            files = await anyio.to_thread.run_sync(self._data_files, directory, limiter=_IO)
            self.files = [p.name for p in files]
            for path in files:
                await self._send_file(path, out, progress)
        finally:
            if temporary:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(
                        lambda: shutil.rmtree(directory, ignore_errors=True), limiter=_IO)

    async def _send_file(self, path: Path, out: BytesOut, progress: Progress) -> None:
        where = _join(self.url, path.name)
        opener = gzip.open if path.name.endswith(".gz") else open
        handle = await anyio.to_thread.run_sync(lambda: opener(path, "rb"), limiter=_IO)
        try:
            pending = b""
            line_no = 0
            while True:
                block: bytes = await anyio.to_thread.run_sync(handle.read, _BLOCK, limiter=_IO)
                if not block:
                    break
                pending += block
                *lines, pending = pending.split(b"\n")
                chunk, line_no = await anyio.to_thread.run_sync(
                    self._convert, lines, line_no, where, limiter=_IO)
                if chunk:
                    await out.send(chunk)
                    progress.add(nbytes=len(chunk))
            if pending:
                chunk, line_no = self._convert([pending], line_no, where)
                if chunk:
                    await out.send(chunk)
        finally:
            await anyio.to_thread.run_sync(handle.close, limiter=_IO)

    def _convert(self, lines: list[bytes], line_no: int, where: str) -> tuple[bytes, int]:
        parts = []
        for raw in lines:
            line_no += 1
            try:
                item = parse_emr_line(raw.decode("utf-8"))
            except (ConversionError, UnicodeDecodeError) as exc:
                raise BadDataError(f"not an EMR DynamoDB backup line: {exc}", location=where,
                                   line=line_no) from None
            if item is not None:
                parts.append(item_json(item) + "\n")
                self.items += 1
        return "".join(parts).encode("utf-8"), line_no

    async def produce_rows(self, out: Any, progress: Progress) -> None:
        raise ConfigError("a backup directory is read as DynamoDB export lines only")
