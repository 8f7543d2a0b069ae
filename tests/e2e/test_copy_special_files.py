"""``headrace copy`` and special files (issue 11, defect 2): ``-`` is stdin and stdout, so
copies pipe; a FIFO, a character device and a symlink are written through and stay what they
are; only a regular file is written to a temp and renamed over, and nothing outside the
destination is replaced. The device is made in the test's own folder (``os.mknod``, the null
device's numbers): the machine's ``/dev/null`` is never touched."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e.cli_kit import HEADRACE, Cli

DATA = b"name,qty\ntea,3\ncake,5\n"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_bytes(DATA)
    return path


def copy(cli: Cli, *args: str, stdin: bytes | None = None,
         check: int = 0) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run([HEADRACE, "copy", *args], input=stdin, capture_output=True,
                            timeout=60, env=cli.env(), cwd=cli.root, check=False)
    assert result.returncode == check, result
    return result


def test_dash_is_stdout_and_stdin(cli: Cli, tmp_path: Path, source: Path) -> None:
    out = copy(cli, str(source), "-")
    assert out.stdout == DATA  # the data alone: the summary went to stderr
    assert out.stderr.decode().startswith(f"copied 3 rows, 22 bytes from {source} to -")
    assert not (tmp_path / "-").exists()
    body = copy(cli, str(source), "-", "--output", "json")
    assert body.stdout == DATA and json.loads(body.stderr)["bytes"] == len(DATA)
    copy(cli, "-", str(tmp_path / "out.tsv"), stdin=DATA)
    assert (tmp_path / "out.tsv").read_bytes() == DATA.replace(b",", b"\t")
    piped = copy(cli, "-", "-", "--to-format", "jsonl", "--header", stdin=DATA)
    assert piped.stdout.decode().splitlines() == ['{"name":"tea","qty":"3"}',
                                                  '{"name":"cake","qty":"5"}']
    assert not (tmp_path / "-").exists()


def test_a_fifo_is_written_through_and_read_from(cli: Cli, tmp_path: Path,
                                                 source: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    copy(cli, str(source), str(fifo))
    reader.join(timeout=30)
    assert got == [DATA] and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir() if "headrace-tmp" in p.name] == []
    writer = threading.Thread(target=lambda: fifo.write_bytes(DATA))
    writer.start()
    copy(cli, str(fifo), str(tmp_path / "from-fifo.csv"))
    writer.join(timeout=30)
    assert (tmp_path / "from-fifo.csv").read_bytes() == DATA


def test_a_character_device_stays_a_device(cli: Cli, tmp_path: Path, source: Path) -> None:
    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    before = device.lstat()
    copy(cli, str(source), str(device))
    after = device.lstat()
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino  # the same node, not a file renamed over it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "null"]
    empty = copy(cli, str(device), str(tmp_path / "nothing.csv"))  # reads as empty
    assert (tmp_path / "nothing.csv").read_bytes() == b"" and b"0 rows" in empty.stdout


def test_a_symlink_is_written_through(cli: Cli, tmp_path: Path, source: Path) -> None:
    target = tmp_path / "data" / "real.csv"
    target.parent.mkdir()
    target.write_bytes(b"old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    copy(cli, str(source), str(link))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == DATA
    dangling = tmp_path / "later.csv"
    dangling.symlink_to(tmp_path / "data" / "new.csv")
    copy(cli, str(source), str(dangling))
    assert dangling.is_symlink() and (tmp_path / "data" / "new.csv").read_bytes() == DATA
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["new.csv", "real.csv"]


def test_a_regular_file_is_still_replaced_atomically(cli: Cli, tmp_path: Path,
                                                     source: Path) -> None:
    dest = tmp_path / "out.csv"
    dest.write_bytes(b"old\n")
    inode = dest.stat().st_ino
    copy(cli, str(source), str(dest))
    assert dest.read_bytes() == DATA and dest.stat().st_ino != inode  # renamed over
    copy(cli, str(tmp_path / "absent.csv"), str(dest), check=1)
    assert dest.read_bytes() == DATA  # a failed copy leaves the destination as it was
