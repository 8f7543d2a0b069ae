"""``s3://`` arguments of a Spark application run in local mode, staged through headrace's S3
connector.

An argument that is an ``s3://`` (or ``s3a://``, ``s3n://``) URL and names an existing object
or a non-empty prefix is an input: it is downloaded into a fresh local directory and the
argument becomes the local path. One that names nothing is an output: the argument becomes a
path inside a fresh local directory that does not exist yet (Spark's writers refuse an existing
one); after the application succeeded, what it wrote there is uploaded to the URL, Hadoop's
``_SUCCESS`` marker last, so a reader that waits for it never sees a partial output. A failed
or cancelled application uploads nothing. On a cluster (a non-local master) arguments pass
through unchanged: the cluster reads S3 itself (``s3a://`` with its own configuration).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import anyio

_SCHEMES = ("s3://", "s3a://", "s3n://")
_IO = anyio.CapacityLimiter(4)


def _as_s3(url: str) -> str:
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            return "s3://" + url[len(scheme):]
    return url


@dataclass
class Staged:
    """The arguments as the application sees them, and what to upload after it succeeded."""

    args: list[str]
    outputs: list[tuple[Path, str]] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    root: Path | None = None

    async def upload_outputs(self) -> list[str]:
        """Upload each output directory (or file) to its URL; the URLs written."""
        from connectors import s3

        done = []
        for local, url in self.outputs:
            if not await anyio.to_thread.run_sync(local.exists):
                continue
            if await anyio.to_thread.run_sync(local.is_file):
                await s3.upload_file(local, url)
                done.append(url)
                continue
            files = await anyio.to_thread.run_sync(_files_below, local)
            markers = [p for p in files if p.name == "_SUCCESS"]
            prefix = url.rstrip("/") + "/"
            for path in [p for p in files if p.name != "_SUCCESS"] + markers:
                await s3.upload_file(path, prefix + path.relative_to(local).as_posix())
            done.append(url)
        return done

    async def cleanup(self) -> None:
        if self.root is not None:
            root = self.root
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(
                    lambda: shutil.rmtree(root, ignore_errors=True), limiter=_IO)


async def stage_arguments(args: list[str], root: Path) -> Staged:
    """Inputs downloaded, outputs given fresh local paths (see the module docstring)."""
    from connectors import s3

    staged = Staged(list(args), root=root)
    for index, arg in enumerate(args):
        if not arg.startswith(_SCHEMES):
            continue
        url = _as_s3(arg)
        name = url.rstrip("/").rsplit("/", 1)[-1] or "data"
        slot = root / f"arg{index}"
        await anyio.to_thread.run_sync(_make_dir, slot)
        if not url.endswith("/") and await s3.key_exists(url):
            local = slot / name
            await _download_object(url, local)
            staged.inputs.append(url)
        elif await s3.prefix_not_empty(url.rstrip("/") + "/"):
            local = slot / name
            await s3.download_prefix(url.rstrip("/") + "/", local)
            staged.inputs.append(url)
        else:
            local = slot / name
            staged.outputs.append((local, url))
        staged.args[index] = str(local)
    return staged


def _files_below(directory: Path) -> list[Path]:
    """The files an application wrote below ``directory`` (Hadoop's .crc checksums left out)."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.endswith(".crc"))


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


async def _download_object(url: str, dest: Path) -> None:
    from connectors import local, s3
    from connectors.base import CSV
    from connectors.copy import copy

    source = s3.S3Source(url, CSV, compression="none")
    sink = local.LocalSink(str(dest), CSV, compression="none")
    source.opaque = sink.opaque = True  # raw bytes, whatever the name says
    await copy(source, sink)
