"""``kill -9`` of ``headrace copy`` in the middle of a write, then the same command again
(RELIABILITY.md cases 3 and 5).

The copy is slowed by a bandwidth cap in a TCP fault proxy in front of SeaweedFS, so the test
can kill it at a known point: an S3 multipart upload with some parts uploaded (case 3), a local
temp file holding part of the download (case 5). The rerun goes straight to the server.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from connectors import aws
from connectors.errors import NotFoundError
from connectors.local import TEMP_MARK
from connectors.testing import FaultProxy

pytestmark = pytest.mark.anyio

HEADRACE = str(Path(sys.executable).with_name("headrace"))
MiB = 1024 * 1024


def records(n: int) -> bytes:
    """``n`` CSV records of ~100 bytes with ids 0..n-1."""
    return b"".join(b"%d,%s\n" % (i, b"%08d" % i * 11) for i in range(n))


def checker(data: bytes, n: int) -> None:
    ids = Counter(int(line.split(b",", 1)[0]) for line in data.splitlines())
    assert set(range(n)) - set(ids) == set()  # lost
    assert {i for i, c in ids.items() if c > 1} == set()  # duplicated
    assert set(ids) - set(range(n)) == set()  # unexpected


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def headrace_copy(args: list[str], endpoint: str, cwd: Path) -> None:
    result = await anyio.run_process([HEADRACE, "copy", *args], cwd=cwd, check=False,
                                     env={**os.environ, "AWS_ENDPOINT_URL_S3": endpoint})
    assert result.returncode == 0, result.stderr.decode()


async def killed_when(args: list[str], endpoint: str, cwd: Path,
                      ready: Callable[[], Awaitable[bool]]) -> None:
    """Start ``headrace copy``; SIGKILL it once ``ready()`` holds (polled, at most 60 s)."""
    proc = await anyio.open_process([HEADRACE, "copy", *args], cwd=cwd,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, "AWS_ENDPOINT_URL_S3": endpoint})
    try:
        with anyio.fail_after(60):
            while not await ready():
                assert proc.returncode is None, "the copy ended before it could be killed"
                await anyio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)  # no cleanup runs in the copying process
        with anyio.fail_after(30):
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def pending_uploads(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    page = await client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return list(page.get("Uploads", []))


@pytest.mark.parametrize("name", ["data.csv", "data.bin"], ids=["records", "direct"])
async def test_kill_mid_multipart_upload_then_rerun(s3_bucket: str, s3_endpoint: str,
                                                    tmp_path: Path, name: str) -> None:
    """Case 3. ``data.csv`` streams records into parts; ``data.bin`` (no format) is uploaded
    by parts read at their offsets. Several parts of the default size (5 MiB), one at a
    time."""
    n = 200_000
    data = records(n)
    assert len(data) > 3 * 5 * MiB
    (tmp_path / name).write_bytes(data)
    url = f"s3://{s3_bucket}/out/{name}"
    args = [name, url, "--parallel", "1"]
    port = urlsplit(s3_endpoint).port
    assert port is not None
    async with aws.client("s3", endpoint_url=s3_endpoint) as client:
        async def some_parts_uploaded() -> bool:
            for upload in await pending_uploads(client, s3_bucket, "out/"):
                parts = await client.list_parts(Bucket=s3_bucket, Key=upload["Key"],
                                                UploadId=upload["UploadId"])
                if parts.get("Parts"):
                    return True
            return False

        async with FaultProxy("127.0.0.1", port) as proxy:
            proxy.bandwidth(16 * MiB, direction="up")
            await killed_when(args, f"http://127.0.0.1:{proxy.port}", tmp_path,
                              some_parts_uploaded)
        # torn: an upload is pending, the object does not exist
        assert [u["Key"] for u in await pending_uploads(client, s3_bucket, "out/")] == [
            f"out/{name}"]
        with pytest.raises(NotFoundError), aws.map_errors("s3", "head"):
            await client.head_object(Bucket=s3_bucket, Key=f"out/{name}")

        await headrace_copy(args, s3_endpoint, tmp_path)
        got = await client.get_object(Bucket=s3_bucket, Key=f"out/{name}")
        async with got["Body"] as body:
            stored = await body.read()
        assert sha256(stored) == sha256(data)
        checker(stored, n)
        assert await pending_uploads(client, s3_bucket, "out/") == []


async def test_kill_mid_local_write_keeps_the_previous_version(
        s3_bucket: str, s3_endpoint: str, tmp_path: Path) -> None:
    """Case 5: the download of one object into a file that already exists."""
    n = 60_000
    data = records(n)
    previous = records(10)
    async with aws.client("s3", endpoint_url=s3_endpoint) as client:
        await client.put_object(Bucket=s3_bucket, Key="in/data", Body=data)
    out = tmp_path / "out"
    out.mkdir()
    (out / "data").write_bytes(previous)
    args = [f"s3://{s3_bucket}/in/data", "out/data", "--parallel", "1"]

    def temps() -> list[Path]:
        return [p for p in out.iterdir() if TEMP_MARK in p.name]

    async def partly_written() -> bool:
        found = temps()
        return bool(found) and found[0].stat().st_size > 0

    port = urlsplit(s3_endpoint).port
    assert port is not None
    async with FaultProxy("127.0.0.1", port) as proxy:
        proxy.bandwidth(2 * MiB, direction="down")
        await killed_when(args, f"http://127.0.0.1:{proxy.port}", tmp_path, partly_written)
    # the final name still holds the previous complete version; the partial data is in a temp
    assert (out / "data").read_bytes() == previous
    [temp] = temps()
    assert temp.stat().st_size > 0

    await headrace_copy(args, s3_endpoint, tmp_path)
    assert sha256((out / "data").read_bytes()) == sha256(data)
    checker((out / "data").read_bytes(), n)
    assert temps() == []  # the next write removed the killed writer's temp
    assert sorted(p.name for p in out.iterdir()) == ["data"]
