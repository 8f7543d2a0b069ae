"""Staging for ShellCommandActivity: data nodes to local directories and back.

With ``stage: true``, input number *n* (an S3DataNode) is copied into a fresh local directory
exported as ``INPUTn_STAGING_DIR`` before the command runs; after the command succeeds, the
contents of ``OUTPUTn_STAGING_DIR`` are copied to output *n*'s ``directoryPath``. Paths may be
``file://`` URIs or plain paths (local files stand in for S3) or ``s3://`` URIs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio

from engine.activities.base import ActivityFailed
from engine.activities.sql_nodes import file_location

_IO = anyio.CapacityLimiter(4)


def local_path(uri: str) -> Path | None:
    """The local path of a ``file://`` URI or a plain path (read by the connectors' one
    ``file://`` parser); None for remote URIs."""
    from connectors.local import path_from_url
    from connectors.urls import scheme_of

    return Path(path_from_url(uri)) if scheme_of(uri) == "file" else None


def node_location(fields: dict[str, Any]) -> tuple[str, bool]:
    """(uri, is_directory) of an S3DataNode's evaluated fields."""
    location = file_location(fields)
    if location is None:
        raise ActivityFailed("the data node has neither directoryPath nor filePath")
    return location


async def stage_in(fields: dict[str, Any], dest: Path) -> None:
    uri, is_dir = node_location(fields)
    path = local_path(uri)
    if path is None:
        if uri.startswith("s3://"):
            if is_dir:
                from connectors import s3

                await s3.download_prefix(uri, dest)
            else:
                await _download_object(uri, dest / (uri.rstrip("/").rsplit("/", 1)[-1]
                                                    or "input"))
            return
        raise ActivityFailed(f"cannot stage {uri}: only file:// paths and s3:// are supported")

    def copy() -> None:
        dest.mkdir(parents=True, exist_ok=True)
        if is_dir:
            if not path.is_dir():
                raise ActivityFailed(f"input directory {uri} does not exist")
            for item in sorted(path.iterdir()):
                target = dest / item.name
                if item.is_dir():
                    shutil.copytree(item, target, dirs_exist_ok=True)
                else:
                    shutil.copy2(item, target)
        else:
            if not path.is_file():
                raise ActivityFailed(f"input file {uri} does not exist")
            shutil.copy2(path, dest / path.name)

    await anyio.to_thread.run_sync(copy, limiter=_IO)


async def stage_out(source: Path, fields: dict[str, Any]) -> None:
    uri, is_dir = node_location(fields)
    if not is_dir:
        raise ActivityFailed("an output to stage needs a directoryPath")
    path = local_path(uri)
    if path is None:
        if uri.startswith("s3://"):
            from connectors import s3

            await s3.upload_directory(source, uri)
            return
        raise ActivityFailed(f"cannot stage to {uri}: only file:// paths and s3:// are supported")

    def copy() -> None:
        path.mkdir(parents=True, exist_ok=True)
        for item in sorted(source.iterdir()):
            target = path / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                tmp = target.with_name(f".{target.name}.headrace-tmp")
                shutil.copy2(item, tmp)
                tmp.replace(target)

    await anyio.to_thread.run_sync(copy, limiter=_IO)


async def fetch_script(uri: str, dest: Path) -> Path:
    """Bring a ``scriptUri`` to a local executable file."""
    path = local_path(uri)
    target = dest / (Path(uri).name or "script")
    if path is None:
        if uri.startswith("s3://"):
            await _download_object(uri, target)
        else:
            raise ActivityFailed(f"cannot fetch scriptUri {uri}")
    else:
        def copy() -> None:
            if not path.is_file():
                raise ActivityFailed(f"scriptUri {uri} does not exist")
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)

        await anyio.to_thread.run_sync(copy, limiter=_IO)
    target.chmod(0o755)
    return target


async def copy_to_target(source: Path, uri: str) -> None:
    """Copy a log file to a ``stdout``/``stderr`` target (a path, file:// or s3:// URI)."""
    path = local_path(uri)
    if path is None:
        if uri.startswith("s3://"):
            from connectors import s3

            await s3.upload_file(source, uri)
            return
        raise ActivityFailed(f"cannot write output to {uri}")

    def copy() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if source.exists():
            shutil.copyfile(source, path)
        else:
            path.write_bytes(b"")

    await anyio.to_thread.run_sync(copy, limiter=_IO)


async def _download_object(uri: str, target: Path) -> None:
    """One S3 object to a local file, byte for byte (atomically, through the copy engine)."""
    from connectors.base import CSV
    from connectors.copy import copy
    from connectors.local import LocalSink
    from connectors.s3 import S3Source

    await copy(S3Source(uri, CSV, compression="none"),
               LocalSink(str(target), CSV, compression="none"))
