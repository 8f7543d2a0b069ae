"""Progress with totals (issue 17): ``headrace copy --progress`` shows done/total, percent and
ETA where the source knows its size (files, S3 objects: exact) or its rows (tables: marked as
estimates), the MB figure counts what the sink wrote, and ``--output json`` carries the same
figures (JSON progress lines on stderr, the totals in the summary)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import pytest

from connectors.base import Progress, Total
from connectors.copy import copy
from connectors.urls import open_sink, open_source
from engine.cli.copy_progress import figures, line

HEADRACE = str(Path(sys.executable).with_name("headrace"))
ROWS = 20_000


def _data() -> bytes:
    return b"".join(b'%d,"name %d",%d.5\n' % (i, i, i) for i in range(ROWS))


def run(*args: str, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([HEADRACE, "copy", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=120, check=False, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result


def progress_events(stderr: str) -> list[dict[str, Any]]:
    events = [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]
    assert events and all(e["event"] == "progress" for e in events)
    return events


def test_file_copy_reports_its_size_as_total_in_json(tmp_path: Path) -> None:
    data = _data()
    (tmp_path / "in.csv").write_bytes(data)
    result = run("in.csv", "out.csv", "--progress", "json", "--output", "json", cwd=tmp_path)
    last = progress_events(result.stderr)[-1]
    assert last["done"] is True
    assert last["total"] == {"rows": None, "bytes": len(data), "estimated": False}
    assert last["percent"] == 100.0 and last["etaSeconds"] == 0.0
    assert last["bytesRead"] == len(data) and last["bytesWritten"] == len(data)
    summary = json.loads(result.stdout)
    assert summary["total"]["bytes"] == len(data) and summary["percent"] == 100.0
    assert summary["bytesWritten"] == len(data)
    assert (tmp_path / "out.csv").read_bytes() == data


def test_text_progress_to_a_pipe_is_one_line_per_refresh(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(_data())
    result = run("in.csv", "out.tsv", "--progress", "text", cwd=tmp_path)
    last = result.stderr.splitlines()[-1]
    assert last.startswith("100% ") and "MB read" in last and "MB written" in last
    assert "20.0k rows" in last


def test_no_progress_without_a_terminal_by_default(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(_data())
    assert run("in.csv", "out.csv", cwd=tmp_path).stderr == ""


@pytest.fixture
def pg_table(pg_database: str) -> str:
    async def make() -> None:
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text, v numeric)")
            await conn.execute("INSERT INTO t SELECT i, 'name ' || i, i + 0.5 "
                               "FROM generate_series(0, $1 - 1) i", ROWS)
            await conn.execute("ANALYZE t")
        finally:
            await conn.close()

    anyio.run(make)
    return f"{pg_database}?table=t"


def test_table_rows_are_an_estimated_total(pg_table: str, tmp_path: Path) -> None:
    result = run(pg_table, "out.csv", "--progress", "json", "--output", "json", cwd=tmp_path)
    last = progress_events(result.stderr)[-1]
    total = last["total"]
    assert total["estimated"] is True and total["bytes"] is None
    assert 0.5 * ROWS <= total["rows"] <= 1.5 * ROWS  # the planner's figure, after ANALYZE
    assert last["rows"] == ROWS and last["percent"] == 100.0
    assert json.loads(result.stdout)["total"]["estimated"] is True


def test_mysql_table_rows_are_an_estimated_total(mysql_database: str, tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    import pymysql

    parts = urlsplit(mysql_database)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                           user=parts.username or "root", database=parts.path.lstrip("/"),
                           autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            cur.executemany("INSERT INTO t VALUES (%s, %s)",
                            [(i, f"n{i}") for i in range(2000)])
            cur.execute("ANALYZE TABLE t")
    finally:
        conn.close()
    result = run(f"{mysql_database}?table=t", "out.csv", "--progress", "json", cwd=tmp_path)
    last = progress_events(result.stderr)[-1]
    assert last["total"]["estimated"] is True and last["total"]["rows"] > 0
    assert last["rows"] == 2000


def test_s3_total_and_written_bytes(s3_bucket: str, tmp_path: Path) -> None:
    """An object's size is the total of a download; an upload's ``written`` is what reached
    S3 (compressed bytes for a .gz key), not what was handed to the part buffers."""
    data = _data() * 20  # ~9 MB: two 5 MiB parts
    (tmp_path / "in.csv").write_bytes(data)

    async def both() -> tuple[Progress, Progress, Progress]:
        up, gz, down = Progress(), Progress(), Progress()
        await copy(open_source(str(tmp_path / "in.csv")),
                   open_sink(f"s3://{s3_bucket}/p/in.csv"), progress=up)
        await copy(open_source(str(tmp_path / "in.csv")),
                   open_sink(f"s3://{s3_bucket}/p/in.csv.gz"), progress=gz)
        await copy(open_source(f"s3://{s3_bucket}/p/in.csv"),
                   open_sink(str(tmp_path / "back.csv")), progress=down)
        return up, gz, down

    up, gz, down = anyio.run(both)
    assert up.total == Total(bytes=len(data)) and up.read == len(data)
    assert up.written == len(data)
    assert 0 < gz.written < len(data) // 2  # gzip of repetitive CSV
    assert down.total == Total(bytes=len(data)) and down.fraction() == 1.0
    assert (tmp_path / "back.csv").read_bytes() == data


# --- the figures and the line, from a Progress ------------------------------------------------


def test_figures_give_percent_and_eta_from_rows_or_bytes() -> None:
    rows = Progress(rows=250, total=Total(rows=1000, estimated=True), written=5_000_000)
    fig = figures(rows, elapsed=10.0)
    assert fig["percent"] == 25.0 and fig["etaSeconds"] == 30.0
    assert line(fig).startswith("25% 250/~1.0k rows, 5.0 MB written")
    assert line(fig).endswith("0:30 left")

    size = Progress(rows=10, read=3_000_000, total=Total(bytes=4_000_000))
    fig = figures(size, elapsed=3.0)
    assert fig["percent"] == 75.0 and fig["etaSeconds"] == 1.0
    assert line(fig).startswith("75% 3.0/4.0 MB read, 10 rows")

    none = figures(Progress(rows=5), elapsed=61.0)
    assert none["percent"] is None and none["etaSeconds"] is None
    assert line(none).endswith("1:01 elapsed")


def test_an_estimate_passed_is_capped_and_parts_are_listed() -> None:
    progress = Progress(rows=1500, total=Total(rows=1000, estimated=True))
    first = progress.open_part(Total(rows=500, estimated=True))
    first.add(rows=250)
    progress.open_part()
    fig = figures(progress, elapsed=1.0)
    assert fig["percent"] == 100.0
    assert fig["partitions"] == [
        {"partition": 0, "rows": 250, "bytesRead": 0,
         "total": {"rows": 500, "bytes": None, "estimated": True}, "percent": 50.0},
        {"partition": 1, "rows": 0, "bytesRead": 0, "total": None, "percent": None}]
    assert line(fig).endswith("[p0 50% p1 0]")


# --- CopyActivity's partitions (a headrace extension) ----------------------------------------


def test_copy_activity_partitions_validated_and_run(pg_table: str, tmp_path: Path) -> None:
    from tests.e2e.cli_kit import Cli, by_object, ref, write_definition

    parts = urlsplit(pg_table.split("?")[0])
    out = tmp_path / "out"

    def definition(partitions: str) -> Path:
        return write_definition(
            tmp_path / f"p{partitions}.json",
            {"id": "Db", "name": "Db", "type": "JdbcDatabase",
             "connectionString": f"jdbc:postgresql://{parts.netloc}{parts.path}",
             "jdbcDriverClass": "org.postgresql.Driver", "username": "postgres",
             "*password": "unused"},
            {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Db"),
             "table": "t"},
            {"id": "Out", "name": "Out", "type": "S3DataNode",
             "directoryPath": f"file://{out}"},
            {"id": "Copy", "name": "Copy", "type": "CopyActivity", "input": ref("In"),
             "output": ref("Out"), "partitions": partitions})

    cli = Cli(tmp_path)
    bad = cli.json("validate", str(definition("0")), check=None)
    assert "partitions" in json.dumps(bad) and "minimum" in json.dumps(bad)
    good = cli.json("validate", str(definition("3")), check=None)
    assert "headrace extension" in json.dumps(good)

    result = cli.run(definition("3"))
    assert by_object(result)["Copy"]["status"] == "FINISHED", result
    ids = [line.split(",")[0] for f in sorted(out.rglob("*")) if f.is_file()
           for line in f.read_text().splitlines()]
    assert sorted(map(int, ids)) == list(range(ROWS))  # nothing lost or duplicated
