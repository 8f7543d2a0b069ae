"""S3 connector against SeaweedFS on loopback: multipart, ranges, resume, server-side copy."""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from connectors import aws
from connectors.base import CSV, Progress, Schema
from connectors.copy import copy
from connectors.errors import AuthenticationFailed, NotFoundError
from connectors.local import LocalSink, LocalSource
from connectors.s3 import (
    MIN_PART,
    S3Sink,
    S3Source,
    download_prefix,
    key_exists,
    prefix_not_empty,
    upload_directory,
    upload_file,
)
from connectors.testing import (
    MemorySink,
    MemorySource,
    check_abort_leaves_nothing,
    check_clogged_sink,
)

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def lines(n: int, width: int = 100) -> bytes:
    """n CSV records of about ``width`` bytes, each unique."""
    return b"".join(b"%d,%s\n" % (i, (b"%07d" % i) * (width // 7)) for i in range(n))


async def get_bytes(bucket: str, key: str) -> bytes:
    async with aws.client("s3") as c:
        resp = await c.get_object(Bucket=bucket, Key=key)
        async with resp["Body"] as body:
            return await body.read()


async def keys(bucket: str, prefix: str = "") -> list[str]:
    async with aws.client("s3") as c:
        page = await c.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for o in page.get("Contents", [])]


async def test_file_to_s3_to_file_multipart_byte_identical(s3_bucket: str,
                                                           tmp_path: Path) -> None:
    data = lines(110_000)  # ~11.7 MB: three 5 MiB parts, the last one short
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    url = f"s3://{s3_bucket}/dir/data.csv"
    up = await copy(LocalSource(str(src)), S3Sink(url, part_size=MIN_PART, parallel=3))
    assert (up.lane, up.bytes, up.rows) == ("bytes", len(data), 110_000)
    async with aws.client("s3") as c:
        head = await c.head_object(Bucket=s3_bucket, Key="dir/data.csv")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # it really was a 3-part upload

    back = tmp_path / "back.csv"
    progress = Progress()
    down = await copy(S3Source(url, chunk_size=MiB, parallel=4), LocalSink(str(back)),
                      progress=progress)
    assert down.bytes == len(data)
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_prefix_with_many_objects_pages_lazily(s3_bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "many"
    local.mkdir()
    for i in range(12):
        (local / f"f{i:03d}.csv").write_bytes(b"%d,a\n%d,b\n" % (i, i))
    urls = await upload_directory(local, f"s3://{s3_bucket}/many/", parallel=8)
    assert len(urls) == 12
    sink = MemorySink(CSV)
    result = await copy(S3Source(f"s3://{s3_bucket}/many/", page_size=5, parallel=4), sink)
    expected = b"".join(b"%d,a\n%d,b\n" % (i, i) for i in range(12))
    assert sink.committed_bytes == expected and result.rows == 24
    paths = await download_prefix(f"s3://{s3_bucket}/many/", tmp_path / "down")
    assert sorted(p.name for p in paths) == sorted(p.name for p in local.iterdir())
    for p in paths:
        assert p.read_bytes() == (local / p.name).read_bytes()


async def test_s3_to_s3_is_server_side(s3_bucket: str, tmp_path: Path) -> None:
    big = lines(100_000)  # ~10.7 MB: copied with UploadPartCopy above the threshold
    small = b"1,x\n2,y\n"
    async with aws.client("s3") as c:
        await c.put_object(Bucket=s3_bucket, Key="src/big.csv", Body=big)
        await c.put_object(Bucket=s3_bucket, Key="src/sub/small.csv", Body=small)
    sink = S3Sink(f"s3://{s3_bucket}/dst/big.csv", copy_threshold=6 * MiB,
                  copy_part_size=MIN_PART)
    result = await copy(S3Source(f"s3://{s3_bucket}/src/big.csv"), sink)
    assert (result.lane, result.bytes) == ("server-side", len(big))
    assert await get_bytes(s3_bucket, "dst/big.csv") == big

    result = await copy(S3Source(f"s3://{s3_bucket}/src/"), S3Sink(f"s3://{s3_bucket}/all/"))
    assert result.lane == "server-side"
    assert sorted(await keys(s3_bucket, "all/")) == ["all/big.csv", "all/sub/small.csv"]
    assert await get_bytes(s3_bucket, "all/sub/small.csv") == small

    # Different formats cannot be copied server-side: the rows lane converts.
    result = await copy(S3Source(f"s3://{s3_bucket}/src/sub/small.csv"),
                        S3Sink(f"s3://{s3_bucket}/conv/small.jsonl"))
    assert result.lane == "rows"
    assert await get_bytes(s3_bucket, "conv/small.jsonl") == (
        b'{"col1":"1","col2":"x"}\n{"col1":"2","col2":"y"}\n')


async def test_gzip_round_trip(s3_bucket: str, tmp_path: Path) -> None:
    data = lines(5000)
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    url = f"s3://{s3_bucket}/z/data.csv.gz"
    await copy(LocalSource(str(src)), S3Sink(url))
    stored = await get_bytes(s3_bucket, "z/data.csv.gz")
    assert gzip.decompress(stored) == data and len(stored) < len(data)
    back = tmp_path / "back.csv"
    await copy(S3Source(url, chunk_size=64 * 1024), LocalSink(str(back)))
    assert back.read_bytes() == data


async def test_aborted_upload_leaves_no_object_and_no_pending_upload(s3_bucket: str) -> None:
    data = lines(120_000)  # the first 5 MiB part is uploaded before the copy is cancelled
    url = f"s3://{s3_bucket}/aborted/data.csv"

    async def visible() -> list[str]:
        async with aws.client("s3") as c:
            uploads = await c.list_multipart_uploads(Bucket=s3_bucket, Prefix="aborted/")
        return [u["Key"] for u in uploads.get("Uploads", [])] + await keys(s3_bucket, "aborted/")

    await check_abort_leaves_nothing(lambda: S3Sink(url, part_size=MIN_PART), visible, [],
                                     Schema(()), data=data, fmt=CSV)


async def test_next_write_aborts_uploads_left_by_a_killed_writer(s3_bucket: str) -> None:
    async with aws.client("s3") as c:
        await c.create_multipart_upload(Bucket=s3_bucket, Key="k/data.csv")
        await c.create_multipart_upload(Bucket=s3_bucket, Key="k/data.csv.other")
    data = b"1,a\n2,b\n"
    await copy(MemorySource(Schema(()), data=data, fmt=CSV), S3Sink(f"s3://{s3_bucket}/k/data.csv"))
    assert await get_bytes(s3_bucket, "k/data.csv") == data
    async with aws.client("s3") as c:
        pending = await c.list_multipart_uploads(Bucket=s3_bucket, Prefix="k/")
    assert [u["Key"] for u in pending.get("Uploads", [])] == ["k/data.csv.other"]


async def test_prefix_sink_writes_parts_and_removes_stale_ones(s3_bucket: str,
                                                               tmp_path: Path) -> None:
    data = lines(3000)
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    prefix = f"s3://{s3_bucket}/parts/"
    sink = S3Sink(prefix, file_bytes=60_000)
    await copy(LocalSource(str(src), chunk_size=16 * 1024), sink)
    names = await keys(s3_bucket, "parts/")
    assert len(names) >= 4 and names[0] == "parts/part-00000.csv"
    assert b"".join([await get_bytes(s3_bucket, k) for k in names]) == data
    small = tmp_path / "small.csv"
    small.write_bytes(b"1,x\n")
    await copy(LocalSource(str(small)), S3Sink(prefix, file_bytes=60_000))
    assert await keys(s3_bucket, "parts/") == ["parts/part-00000.csv"]


async def test_manifest_lists_the_objects_to_read(s3_bucket: str) -> None:
    async with aws.client("s3") as c:
        await c.put_object(Bucket=s3_bucket, Key="m/b.csv", Body=b"2,b\n")
        await c.put_object(Bucket=s3_bucket, Key="m/a.csv", Body=b"1,a\n")
        manifest = (f'{{"entries": [{{"url": "s3://{s3_bucket}/m/b.csv", "mandatory": true}},'
                    f'{{"url": "s3://{s3_bucket}/m/a.csv"}},'
                    f'{{"url": "s3://{s3_bucket}/m/gone.csv", "mandatory": false}}]}}')
        await c.put_object(Bucket=s3_bucket, Key="m/manifest", Body=manifest.encode())
        await c.put_object(Bucket=s3_bucket, Key="m/bad-manifest",
                           Body=manifest.replace("false", "true").encode())
    sink = MemorySink(CSV)
    await copy(S3Source(f"s3://{s3_bucket}/m/", manifest_url=f"s3://{s3_bucket}/m/manifest"),
               sink)
    assert sink.committed_bytes == b"2,b\n1,a\n"
    with pytest.raises(NotFoundError, match=r"gone\.csv: listed as mandatory"):
        await copy(S3Source(f"s3://{s3_bucket}/m/",
                            manifest_url=f"s3://{s3_bucket}/m/bad-manifest"), MemorySink(CSV))


async def test_existence_helpers(s3_bucket: str, tmp_path: Path) -> None:
    f = tmp_path / "marker"
    f.write_bytes(b"")
    assert not await key_exists(f"s3://{s3_bucket}/ready/_SUCCESS")
    assert not await prefix_not_empty(f"s3://{s3_bucket}/ready/")
    await upload_file(f, f"s3://{s3_bucket}/ready/_SUCCESS")
    assert await key_exists(f"s3://{s3_bucket}/ready/_SUCCESS")
    assert await prefix_not_empty(f"s3://{s3_bucket}/ready/")
    with pytest.raises(NotFoundError, match="no such object"):
        await copy(S3Source(f"s3://{s3_bucket}/nothing-here.csv"), MemorySink(CSV))


async def test_clogged_consumer_bounds_parallel_reads(s3_bucket: str) -> None:
    data = lines(40_000)  # ~4.3 MB in 256 KiB ranges
    async with aws.client("s3") as c:
        await c.put_object(Bucket=s3_bucket, Key="clog.csv", Body=data)
    chunk, parallel, depth = 256 * 1024, 3, 2
    await check_clogged_sink(
        lambda: S3Source(f"s3://{s3_bucket}/clog.csv", chunk_size=chunk, parallel=parallel),
        fmt=CSV, depth=depth, hold=0.5, expected=data,
        # the reorder window (parallel ranges + the one being delivered) plus the stream slots
        max_read_ahead_bytes=(parallel + 1 + depth + 1) * chunk)


async def test_wrong_secret_fails_fast_without_leaking_it(s3_bucket: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "wrong-secret-do-not-print-42"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with pytest.raises(AuthenticationFailed) as err:
        await copy(S3Source(f"s3://{s3_bucket}/x.csv"), MemorySink(CSV))
    message = str(err.value)
    assert not err.value.transient
    assert secret not in message and "AWS_ACCESS_KEY_ID" in message
    assert "credentials were refused" in message


async def test_missing_credentials_name_the_sources_tried(
        s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AuthenticationFailed, match="no usable AWS credentials found; tried"):
        await copy(S3Source(f"s3://{s3_bucket}/x.csv"), MemorySink(CSV))
    assert os.environ.get("AWS_EC2_METADATA_DISABLED") == "true"


# -- a truncated GET is resumed -------------------------------------------------------------------

class TruncatingProxy:
    """An HTTP proxy on loopback that cuts the first ``count`` ranged GET bodies in half.

    One request per connection (it asks upstream for ``Connection: close``); the client sees
    the full Content-Length promised and the connection closing early, as in RELIABILITY case 7.
    """

    def __init__(self, upstream_port: int, count: int) -> None:
        self.upstream_port = upstream_port
        self.remaining = count
        self.truncated = 0

    @staticmethod
    async def _read_message(stream: SocketStream) -> bytes:
        buf = b""
        while b"\r\n\r\n" not in buf:
            piece = await stream.receive()
            buf += piece
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            rest += await stream.receive()
        return head + b"\r\n\r\n" + rest

    async def handle(self, client: SocketStream) -> None:
        async with client:
            request = await self._read_message(client)
            head, _, body = request.partition(b"\r\n\r\n")
            head_lines = [ln for ln in head.split(b"\r\n")
                          if not ln.lower().startswith(b"connection:")]
            forwarded = b"\r\n".join([*head_lines, b"Connection: close"]) + b"\r\n\r\n" + body
            async with await anyio.connect_tcp("127.0.0.1", self.upstream_port) as upstream:
                await upstream.send(forwarded)
                is_head = head.startswith(b"HEAD ")
                response = await (self._read_head_only(upstream) if is_head
                                  else self._read_message(upstream))
            ranged_get = head.startswith(b"GET ") and b"\r\nrange:" in head.lower()
            if ranged_get and self.remaining > 0:
                self.remaining -= 1
                self.truncated += 1
                rhead, _, rbody = response.partition(b"\r\n\r\n")
                response = rhead + b"\r\n\r\n" + rbody[: len(rbody) // 2]
            await client.send(response)

    @staticmethod
    async def _read_head_only(stream: SocketStream) -> bytes:
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive()
        return buf


@pytest.fixture
async def truncating_proxy(s3_endpoint: str) -> AsyncIterator[tuple[str, TruncatingProxy]]:
    upstream_port = int(s3_endpoint.rsplit(":", 1)[1])
    proxy = TruncatingProxy(upstream_port, count=2)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy.handle)
        yield f"http://127.0.0.1:{port}", proxy
        tg.cancel_scope.cancel()


async def test_truncated_get_is_resumed_and_never_short(
        s3_bucket: str, tmp_path: Path,
        truncating_proxy: tuple[str, TruncatingProxy]) -> None:
    endpoint, proxy = truncating_proxy
    data = lines(30_000)  # ~3.2 MB in 1 MiB ranges
    async with aws.client("s3") as c:
        await c.put_object(Bucket=s3_bucket, Key="cut.csv", Body=data)
    progress = Progress()
    dest = tmp_path / "cut.csv"
    await copy(S3Source(f"s3://{s3_bucket}/cut.csv", chunk_size=MiB, parallel=2,
                        endpoint_url=endpoint), LocalSink(str(dest)), progress=progress)
    assert proxy.truncated == 2
    assert progress.retry_causes.get("s3-get-resume", 0) >= 2
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()


# -- direct lane: one opaque file <-> one object by positioned parallel I/O --------------------

async def test_opaque_file_and_object_copy_directly_byte_identical(s3_bucket: str,
                                                                   tmp_path: Path) -> None:
    data = os.urandom(12 * MiB + 12345)  # three 5 MiB parts, the last one short
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    url = f"s3://{s3_bucket}/direct/blob.bin"
    progress = Progress()
    up = await copy(LocalSource(str(src)), S3Sink(url, part_size=MIN_PART, parallel=3),
                    progress=progress)
    assert (up.lane, up.bytes, up.rows) == ("direct", len(data), 0)
    assert progress.bytes == len(data)
    async with aws.client("s3") as c:
        head = await c.head_object(Bucket=s3_bucket, Key="direct/blob.bin")
    assert head["ETag"].strip('"').endswith("-3")  # parts read at their offsets, in parallel
    assert await get_bytes(s3_bucket, "direct/blob.bin") == data

    out = tmp_path / "out"
    out.mkdir()
    down = await copy(S3Source(url, chunk_size=MiB, parallel=4), LocalSink(str(out / "b.bin")))
    assert (down.lane, down.bytes) == ("direct", len(data))
    assert (out / "b.bin").read_bytes() == data
    assert [p.name for p in out.iterdir()] == ["b.bin"]  # no temp left behind

    # compressed on both ends: still the same bytes, directly
    packed = tmp_path / "blob.bin.gz"
    packed.write_bytes(gzip.compress(data[:MiB]))
    gz_url = f"s3://{s3_bucket}/direct/blob.bin.gz"
    assert (await copy(LocalSource(str(packed)), S3Sink(gz_url))).lane == "direct"
    assert await get_bytes(s3_bucket, "direct/blob.bin.gz") == packed.read_bytes()
    # ... and decompressing on the way is a stream, not a direct copy
    plain = await copy(S3Source(gz_url), LocalSink(str(out / "plain.bin"), compression="none"))
    assert plain.lane == "bytes" and (out / "plain.bin").read_bytes() == data[:MiB]


async def test_records_stream_and_are_counted_rather_than_copied_directly(
        s3_bucket: str, tmp_path: Path) -> None:
    data = lines(1000)
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    up = await copy(LocalSource(str(src)), S3Sink(f"s3://{s3_bucket}/rec/in.csv"))
    assert (up.lane, up.rows) == ("bytes", 1000)
    blob = tmp_path / "in.bin"
    blob.write_bytes(data)
    declared = await copy(LocalSource(str(blob), CSV), S3Sink(f"s3://{s3_bucket}/rec/in.bin"))
    assert (declared.lane, declared.rows) == ("bytes", 1000)  # a format was given


async def test_direct_download_resumes_truncated_ranges(
        s3_bucket: str, tmp_path: Path,
        truncating_proxy: tuple[str, TruncatingProxy]) -> None:
    endpoint, proxy = truncating_proxy
    data = os.urandom(3 * MiB + 777)
    async with aws.client("s3") as c:
        await c.put_object(Bucket=s3_bucket, Key="cut.bin", Body=data)
    progress = Progress()
    dest = tmp_path / "cut.bin"
    result = await copy(S3Source(f"s3://{s3_bucket}/cut.bin", chunk_size=MiB, parallel=2,
                                 endpoint_url=endpoint), LocalSink(str(dest)), progress=progress)
    assert result.lane == "direct" and proxy.truncated == 2
    assert progress.retry_causes.get("s3-get-resume", 0) >= 2
    assert dest.read_bytes() == data


class _Watermark(Progress):
    """Progress that sets ``reached`` once ``mark`` bytes went through."""

    def __init__(self, mark: int) -> None:
        super().__init__()
        self.mark = mark
        self.reached = anyio.Event()

    def add(self, *, rows: int = 0, nbytes: int = 0) -> None:
        super().add(rows=rows, nbytes=nbytes)
        if self.bytes >= self.mark:
            self.reached.set()


@pytest.mark.parametrize("direction", ["upload", "download"])
async def test_cancelled_direct_copy_leaves_nothing(s3_bucket: str, s3_endpoint: str,
                                                    tmp_path: Path, direction: str) -> None:
    from connectors.testing import FaultProxy

    data = os.urandom(16 * MiB)
    out = tmp_path / "out"
    out.mkdir()
    key = f"cancel/{direction}.bin"
    if direction == "download":
        async with aws.client("s3") as c:
            await c.put_object(Bucket=s3_bucket, Key=key, Body=data)
    else:
        (tmp_path / "big.bin").write_bytes(data)
    host, port = s3_endpoint.rsplit("//", 1)[1].split(":")
    async with FaultProxy(host, int(port)) as proxy:
        proxy.bandwidth(4 * MiB, direction="up" if direction == "upload" else "down")
        endpoint = f"http://127.0.0.1:{proxy.port}"
        if direction == "upload":
            source: LocalSource | S3Source = LocalSource(str(tmp_path / "big.bin"))
            sink: S3Sink | LocalSink = S3Sink(f"s3://{s3_bucket}/{key}", part_size=MIN_PART,
                                              parallel=2, endpoint_url=endpoint)
        else:
            source = S3Source(f"s3://{s3_bucket}/{key}", chunk_size=MiB, parallel=2,
                              endpoint_url=endpoint)
            sink = LocalSink(str(out / "down.bin"))
        progress = _Watermark(6 * MiB if direction == "upload" else 2 * MiB)
        async with anyio.create_task_group() as tg:
            tg.start_soon(copy, source, sink, None, progress)
            with anyio.fail_after(60):
                await progress.reached.wait()  # a part is up / ranges are on the disk
            tg.cancel_scope.cancel()
    assert list(out.iterdir()) == []  # no file, no temp
    async with aws.client("s3") as c:
        pending = await c.list_multipart_uploads(Bucket=s3_bucket, Prefix="cancel/")
    assert pending.get("Uploads", []) == []
    if direction == "upload":
        assert await keys(s3_bucket, "cancel/") == []


async def test_response_timestamps_are_left_as_text(s3_bucket: str) -> None:
    """headrace reads no timestamp from AWS responses, so botocore does not parse them."""
    async with aws.client("s3") as c:
        await c.put_object(Bucket=s3_bucket, Key="ts.txt", Body=b"x")
        head = await c.head_object(Bucket=s3_bucket, Key="ts.txt")
    assert isinstance(head["LastModified"], str) and head["LastModified"]
