"""Local files: atomic writes, temp cleanup, directories in and out, gzip, ENOSPC."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import anyio
import pytest

from connectors.base import CSV, EndpointOptions, Progress, Schema
from connectors.copy import CopyOptions, copy
from connectors.errors import DiskFull, NotFoundError
from connectors.local import (
    TEMP_MARK,
    AtomicFile,
    LocalSink,
    LocalSource,
    path_from_url,
    sink_from_url,
    source_from_url,
    write_file_atomic,
)
from connectors.testing import MemorySink, MemorySource

pytestmark = pytest.mark.anyio

DATA = b"".join(b'%d,"name %d"\n' % (i, i) for i in range(2000))


def files_in(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_file_to_file_is_byte_identical_with_gzip_in_between(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(DATA)
    packed = tmp_path / "out" / "data.csv.gz"
    result = await copy(LocalSource(str(src)), LocalSink(str(packed)))
    assert result.lane == "bytes" and result.rows == 2000
    assert gzip.decompress(packed.read_bytes()) == DATA
    back = tmp_path / "back.csv"
    await copy(LocalSource(str(packed)), LocalSink(str(back)))
    assert back.read_bytes() == DATA
    assert (back.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_failed_write_keeps_previous_version_and_leaves_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "data.csv"
    dest.write_bytes(b"old,version\n")

    class Broken(MemorySource):
        async def produce_bytes(self, fmt, out, progress) -> None:
            await out.send(b"new,partial\n")
            raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        await copy(Broken(Schema(()), data=b"", fmt=CSV), LocalSink(str(dest)))
    assert dest.read_bytes() == b"old,version\n"
    assert files_in(tmp_path) == ["data.csv"]


async def test_stale_temps_of_a_killed_writer_are_removed_by_the_next_write(
        tmp_path: Path) -> None:
    stale = tmp_path / f".data.csv{TEMP_MARK}abc123"
    stale.write_bytes(b"half a file")
    other = tmp_path / f".other.csv{TEMP_MARK}zzz"
    other.write_bytes(b"someone else's")
    await write_file_atomic(tmp_path / "data.csv", b"complete\n")
    assert files_in(tmp_path) == [f".other.csv{TEMP_MARK}zzz", "data.csv"]
    assert (tmp_path / "data.csv").read_bytes() == b"complete\n"


async def test_temp_is_invisible_until_commit(tmp_path: Path) -> None:
    af = AtomicFile(tmp_path / "x.csv")
    await af.open()
    await af.write(b"abc\n")
    assert not (tmp_path / "x.csv").exists()
    await af.commit()
    assert (tmp_path / "x.csv").read_bytes() == b"abc\n"


async def test_positioned_writes_of_many_pieces_land_in_place(tmp_path: Path) -> None:
    """write_at(offset, *pieces) writes the pieces one after the other from offset, in any
    order and several at once; more pieces than one pwritev takes are all written."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    af = AtomicFile(tmp_path / "x.bin")
    await af.open()
    half = len(data) // 2
    tail = [data[i:i + 1000] for i in range(half, len(data), 1000)]  # > 1024 pieces
    head = [data[:5], b"", data[5:half]]
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: af.write_at(half, *tail))
        tg.start_soon(lambda: af.write_at(0, *head))
    assert af.written == len(data)
    await af.commit()
    assert (tmp_path / "x.bin").read_bytes() == data


async def test_directory_source_reads_files_in_name_order(tmp_path: Path) -> None:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "b.csv").write_bytes(b"h\n3\n4")  # no final newline: one is added between files
    (d / "a.csv").write_bytes(b"h\n1\n2\n")
    (d / "sub" / "c.csv").write_bytes(b"h\n5\n")
    (d / ".hidden.csv").write_bytes(b"h\nnever\n")
    fmt = CSV.replace(header=True)
    sink = MemorySink()
    await copy(LocalSource(str(d), fmt), sink)
    assert sink.rows == [("1",), ("2",), ("3",), ("4",), ("5",)]
    raw = MemorySink(fmt)
    await copy(LocalSource(str(d), fmt), raw)
    assert raw.committed_bytes == b"h\n1\n2\n3\n4\n5\n"


async def test_directory_sink_writes_parts_and_removes_stale_ones(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(DATA)
    out = tmp_path / "out"
    await copy(LocalSource(str(src), chunk_size=4096), LocalSink(str(out) + "/", part_bytes=8000))
    parts = files_in(out)
    assert len(parts) > 3 and parts[0] == "part-00000.csv"
    assert b"".join((out / p).read_bytes() for p in parts) == DATA
    for p in parts:  # every part ends at a record boundary
        assert (out / p).read_bytes().endswith(b"\n")
    small = tmp_path / "small.csv"
    small.write_bytes(b"1,x\n")
    await copy(LocalSource(str(small)), LocalSink(str(out) + "/", part_bytes=8000))
    assert files_in(out) == ["part-00000.csv"]
    back = MemorySink()
    await copy(LocalSource(str(out) + "/"), back)
    assert back.rows == [("1", "x")]


async def test_missing_source_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        await copy(LocalSource(str(tmp_path / "nope.csv")), MemorySink(CSV))


def test_urls_and_format_inference(tmp_path: Path) -> None:
    assert path_from_url("file:///tmp/a.csv") == "/tmp/a.csv"
    assert path_from_url("file://rel/a.csv") == "rel/a.csv"
    assert path_from_url("/plain/a%20b.csv") == "/plain/a%20b.csv"
    assert path_from_url("file:///a%20b.csv") == "/a b.csv"
    assert source_from_url("x.jsonl", EndpointOptions()).native_format.kind == "jsonl"
    assert sink_from_url("x.tsv.gz", EndpointOptions()).native_format.kind == "tsv"
    assert sink_from_url("x.dat", EndpointOptions()).native_format == CSV


async def test_disk_full_names_path_and_bytes_and_cleans_up(tiny_fs: Path) -> None:
    dest = tiny_fs / "full.csv"
    (tiny_fs / "keep.csv").write_bytes(b"previous\n")
    data = b"x" * 1000 + b"\n"
    source = MemorySource(Schema(()), data=data * 200, fmt=CSV, chunk_size=8192)
    with pytest.raises(DiskFull) as err:
        await copy(source, LocalSink(str(dest)), CopyOptions(), Progress())
    message = str(err.value)
    assert str(dest) in message and "bytes written" in message
    assert not err.value.transient
    assert files_in(tiny_fs) == ["keep.csv"]


async def test_cancellation_removes_the_temp(tmp_path: Path) -> None:
    gate = anyio.Event()
    source = MemorySource(Schema(()), data=DATA, fmt=CSV, chunk_size=1000, gate=gate,
                          gate_after=3)
    with anyio.move_on_after(0.3):
        await copy(source, LocalSink(str(tmp_path / "x.csv")))
    assert files_in(tmp_path) == []


async def test_produce_rows_decodes_every_file(tmp_path: Path) -> None:
    d = tmp_path / "rows"
    d.mkdir()
    (d / "1.csv.gz").write_bytes(gzip.compress(b"1,a\n2,"))  # no final newline
    (d / "2.csv").write_bytes(b'3,""\n')
    send, recv = anyio.create_memory_object_stream[object](10)
    async with send, recv:
        await LocalSource(str(d), CSV).produce_rows(send, Progress())
        got = [row for _ in range(send.statistics().current_buffer_used)
               for row in (await recv.receive()).rows]
    assert got == [("1", "a"), ("2", None), ("3", "")]


def test_write_target_follows_what_the_path_is(tmp_path: Path) -> None:
    import socket

    from connectors.errors import TerminalFault
    from connectors.local import WriteTarget, write_target

    regular = tmp_path / "f.csv"
    regular.write_text("x")
    (tmp_path / "link").symlink_to(regular)
    (tmp_path / "dangling").symlink_to(tmp_path / "sub" / "new.csv")
    os.mkfifo(tmp_path / "fifo")
    assert write_target("-") == WriteTarget(Path("-"), in_place=True)
    assert write_target(str(regular)) == WriteTarget(regular, in_place=False)
    assert write_target(str(tmp_path / "link")) == WriteTarget(regular, in_place=False)
    assert write_target(str(tmp_path / "dangling")) == WriteTarget(
        tmp_path / "sub" / "new.csv", in_place=False)
    assert write_target(str(tmp_path / "fifo")) == WriteTarget(tmp_path / "fifo", in_place=True)
    assert write_target(str(tmp_path / "absent")) == WriteTarget(tmp_path / "absent", False)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(TerminalFault, match="not a file, a FIFO or a device"):
            write_target(str(tmp_path / "sock"))
