"""``headrace copy --verify`` and CopyActivity ``verify`` (issue 18): the ``"verify"`` JSON
object with exactly its five keys, a mismatch failing the copy (exit 1) with both figures
and nothing committed, a definition's verified copy, a verified Parquet file, and the
refusal for stdout and a FIFO (nothing there can be read back)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.cli_kit import Cli, ref, write_definition

KEYS = {"sourceRows", "destRows", "sourceChecksum", "destChecksum", "ok"}


def pg(dsn: str, sql: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "in.csv").write_text("".join(f"{i},name {i},{i}.50\n" for i in range(100)))
    return Cli(tmp_path)


def test_verify_in_json_and_a_mismatch(cli: Cli, pg_database: str, tmp_path: Path) -> None:
    pg(pg_database, "CREATE TABLE t (id bigint, name text, amount numeric(8,2))")
    out = cli.json("copy", "in.csv", f"{pg_database}?table=t", "--verify")
    assert set(out["verify"]) == KEYS
    assert out["verify"]["ok"] is True
    assert out["verify"]["sourceRows"] == out["verify"]["destRows"] == 100
    assert out["verify"]["sourceChecksum"] == out["verify"]["destChecksum"]
    plain = cli.json("copy", "in.csv", "copy.csv")
    assert "verify" not in plain

    pg(pg_database, "CREATE TABLE u (id bigint, name text, amount numeric(8,0))")  # rounds
    failed = cli("copy", "in.csv", f"{pg_database}?table=u", "--verify", check=1)
    assert "verify failed: the source sent 100 rows" in failed.stderr
    assert "the destination holds 100" in failed.stderr and "nothing was committed" in \
        failed.stderr
    assert pg(pg_database, "SELECT count(*) FROM u") == [(0,)]


def test_a_copy_activity_that_verifies(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(
        tmp_path / "p.json",
        {"id": "In", "name": "In", "type": "S3DataNode",
         "filePath": str(tmp_path / "in.csv")},
        {"id": "Out", "name": "Out", "type": "S3DataNode",
         "filePath": str(tmp_path / "out.csv")},
        {"id": "Copy", "name": "Copy", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "verify": "true", "workerGroup": "local"})
    out = cli.run(definition)
    assert [i["status"] for i in out["instances"]] == ["FINISHED"]
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "in.csv").read_bytes()
    events = "".join(p.read_text() for p in (tmp_path / "state" / "logs").rglob("events"))
    assert "verified: 100 rows" in events


def test_a_verified_parquet_file(cli: Cli, tmp_path: Path) -> None:
    out = cli.json("copy", "in.csv", "t.parquet", "--verify")
    assert out["verify"]["ok"] is True and out["verify"]["destRows"] == 100
    assert out["verify"]["sourceRows"] == 100


def test_stdout_and_a_fifo_refuse_verify_before_anything_moves(cli: Cli,
                                                               tmp_path: Path) -> None:
    """What went to stdout or into a FIFO cannot be read back, so a verify there would only
    compare the bytes sent with themselves: a usage error (exit 2) naming why, and nothing
    written (a FIFO with no reader would block the open: the refusal comes first)."""
    to_stdout = cli("copy", "in.csv", "-", "--verify", check=2)
    assert to_stdout.stdout == ""
    assert "stdout: --verify needs a regular file or a directory" in to_stdout.stderr
    assert "cannot be read back" in to_stdout.stderr
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    to_fifo = cli("copy", "in.csv", str(fifo), "--verify", check=2, timeout=30)
    assert f"{fifo}: --verify needs a regular file or a directory" in to_fifo.stderr
