"""``headrace copy --incremental`` (issue 18 part 1), driven as a user does, in subprocesses.

Checker: the sources are written and the targets read with the plain drivers (asyncpg,
pymysql, botocore); after each run the target must hold every source row past the watermark
exactly once (append) or at its latest version (merge), and nothing else. The boundary cases
of the issue each have a test: rows sharing the watermark value, rows committed late with an
older value (``--lookback``), NULLs in the column, a column with no order, a look-back without
a key; and the 20-increments run with concurrent writers and a copy killed mid-load.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import pytest

from connectors.sql import IncrementSpec
from connectors.urls import open_sink, open_source, redact_url
from engine.activities.incremental import copy_key, run_incremental
from tests.e2e.cli_kit import Cli
from tests.integration.test_sql_copy import my_connect, my_exec
from tests.services import aws


def pg(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            if ";" in sql and not args:  # a script: several statements, no rows back
                await conn.execute(sql)
                return []
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def my(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    conn = my_connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def pg_database_object(dsn: str) -> dict[str, Any]:
    """The JdbcDatabase object ``Db`` of a definition, for the test database ``dsn``."""
    parts = urlsplit(dsn)
    return {"id": "Db", "name": "Db", "type": "JdbcDatabase",
            "connectionString": f"jdbc:postgresql://127.0.0.1:{parts.port}{parts.path}",
            "jdbcDriverClass": "org.postgresql.Driver", "username": "postgres",
            "*password": "unused"}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def inc(cli: Cli, src: str, dest: str, *flags: str, check: int = 0) -> dict[str, Any]:
    out = cli("copy", src, dest, "--incremental", "ts", *flags, "--output", "json",
              check=check)
    return json.loads(out.stdout) if check == 0 else {"stderr": out.stderr}


SOURCE = ("CREATE TABLE s (id bigint PRIMARY KEY, ts timestamptz, v text); "
          "INSERT INTO s SELECT g, timestamptz '2024-01-01 00:00+00' + g * interval '1 minute', "
          "'v' || g FROM generate_series(1, 50) g")


def ids(dsn: str, table: str) -> Counter[int]:
    return Counter(r[0] for r in pg(dsn, f"SELECT id FROM {table}"))


def test_append_at_the_boundary(cli: Cli, pg_database: str) -> None:
    """Two copies of one table: ``d`` without a look-back until late in the test, ``w``
    with ``--lookback 5m`` from its first run."""
    pg(pg_database, SOURCE)
    pg(pg_database, "CREATE TABLE d (id bigint, ts timestamptz, v text); "
       "CREATE TABLE w (id bigint, ts timestamptz, v text)")
    src, dst, win = f"{pg_database}?table=s", f"{pg_database}?table=d", \
        f"{pg_database}?table=w"
    first = inc(cli, src, dst)["incremental"]
    assert (first["previousWatermark"], first["watermark"], first["rowsMoved"]) == \
        (None, "2024-01-01T00:50:00+00:00", 50)
    assert inc(cli, src, win, "--lookback", "5m")["incremental"]["rowsMoved"] == 50

    # rows sharing the watermark value, committed after the run read it, and newer ones
    pg(pg_database, "INSERT INTO s VALUES (51, '2024-01-01 00:50+00', 'same'), "
       "(52, '2024-01-01 00:50+00', 'same'), (53, '2024-01-01 01:30+00', 'later')")
    second = inc(cli, src, dst)["incremental"]
    assert second["rowsMoved"] == 3 and second["rereadSkipped"] == 1  # row 50, by key
    assert second["watermark"] == "2024-01-01T01:30:00+00:00"
    windowed = inc(cli, src, win, "--lookback", "5m")["incremental"]
    assert windowed["rowsMoved"] == 3 and windowed["rereadSkipped"] == 6  # 45-50 again

    # a row committed late with an older value: without a look-back it is not read ...
    pg(pg_database, "INSERT INTO s VALUES (54, '2024-01-01 01:27+00', 'late')")
    assert inc(cli, src, dst)["incremental"]["rowsMoved"] == 0
    # ... with one, it is, and nothing inside the window twice
    looked = inc(cli, src, win, "--lookback", "5m")["incremental"]
    assert looked["rowsMoved"] == 1 and looked["rereadSkipped"] == 1  # 53 again, skipped
    # a look-back given only now cannot reach over rows whose keys the copy did not keep
    # (it would load them again): it starts at the watermark, and reaches back from then on
    late = inc(cli, src, dst, "--lookback", "5m")["incremental"]
    assert late["rowsMoved"] == 0 and late["rereadSkipped"] == 1

    # time zones: the same instant written in another offset is the same watermark
    pg(pg_database, "INSERT INTO s VALUES (55, '2024-01-01 07:00+05:30', 'tz')")  # 01:30 UTC
    assert inc(cli, src, dst, "--lookback", "5 minutes")["incremental"]["rowsMoved"] == 1
    # NULL in the column: never read (no place in the order)
    pg(pg_database, "INSERT INTO s VALUES (56, NULL, 'no time')")
    assert inc(cli, src, dst)["incremental"]["rowsMoved"] == 0

    assert ids(pg_database, "d") == Counter([*range(1, 54), 55])
    assert ids(pg_database, "w") == Counter(range(1, 55))
    stored = pg(pg_database, "SELECT watermark FROM headrace_checkpoints WHERE key LIKE "
                "'copy:%'")
    assert [json.loads(r[0])["value"] for r in stored] == ["2024-01-01T01:30:00+00:00"] * 2
    shown = [c for c in cli.json("describe-copy")["copies"] if c["dest"].endswith("=d")]
    assert [(c["column"], c["watermark"], c["rowsMoved"], c["runs"]) for c in shown] == \
        [("ts", "2024-01-01T01:30:00+00:00", 54, 6)]
    history = cli.json("describe-copy", shown[0]["copyKey"])["copies"][0]["history"]
    assert [r["rowsMoved"] for r in history] == [50, 3, 0, 0, 1, 0]


def test_a_look_back_never_reloads_rows_whose_keys_were_not_kept(cli: Cli,
                                                                 pg_database: str) -> None:
    """A look-back larger than the last run's, and a table that gained a primary key since
    the last run (keyless: nothing kept): the next read starts where the kept keys reach,
    so nothing loaded before is loaded again; the larger window holds once the watermark
    has moved on by it."""
    pg(pg_database, SOURCE)
    pg(pg_database, "CREATE TABLE d (id bigint, ts timestamptz, v text)")
    src, dst = f"{pg_database}?table=s", f"{pg_database}?table=d"
    assert inc(cli, src, dst, "--lookback", "2m")["incremental"]["rowsMoved"] == 50
    grown = inc(cli, src, dst, "--lookback", "30m")["incremental"]  # 00:20-00:48 not kept
    assert grown["rowsMoved"] == 0 and grown["rereadSkipped"] == 3  # 48-50, kept
    pg(pg_database, "INSERT INTO s VALUES (51, '2024-01-01 01:00+00', 'n'), "
       "(52, '2024-01-01 00:40+00', 'late')")  # 52 is older than what the keys reach
    assert inc(cli, src, dst, "--lookback", "30m")["incremental"]["rowsMoved"] == 1
    pg(pg_database, "INSERT INTO s VALUES (53, '2024-01-01 01:30+00', 'n')")
    moved = inc(cli, src, dst, "--lookback", "30m")["incremental"]  # still from 00:48
    assert moved["rowsMoved"] == 1 and moved["rereadSkipped"] == 4  # 48-51 again
    pg(pg_database, "INSERT INTO s VALUES (54, '2024-01-01 01:05+00', 'late')")
    caught = inc(cli, src, dst, "--lookback", "30m")["incremental"]  # from 01:00 now
    assert caught["rowsMoved"] == 1 and caught["rereadSkipped"] == 2  # 54; 51, 53 again
    assert ids(pg_database, "d") == Counter([*range(1, 52), 53, 54])

    pg(pg_database, "CREATE TABLE k (id bigint, ts timestamptz, v text); "
       "INSERT INTO k SELECT * FROM s WHERE id <= 50; "
       "CREATE TABLE kd (id bigint, ts timestamptz, v text)")
    ksrc, kdst = f"{pg_database}?table=k", f"{pg_database}?table=kd"
    assert inc(cli, ksrc, kdst)["incremental"]["rowsMoved"] == 50  # no key: none kept
    pg(pg_database, "ALTER TABLE k ADD PRIMARY KEY (id); "
       "INSERT INTO k VALUES (51, '2024-01-01 00:50+00', 'same')")
    # the first keyed read starts after the watermark: row 50 is not read again (51, which
    # shares its value and came later, is the cost, as for any keyless copy)
    assert inc(cli, ksrc, kdst, "--lookback", "5m")["incremental"]["rowsMoved"] == 0
    pg(pg_database, "INSERT INTO k VALUES (52, '2024-01-01 01:00+00', 'n'), "
       "(53, '2024-01-01 00:58+00', 'late')")
    assert inc(cli, ksrc, kdst, "--lookback", "5m")["incremental"]["rowsMoved"] == 2
    assert ids(pg_database, "kd") == Counter([*range(1, 51), 52, 53])


def test_clear_errors(cli: Cli, pg_database: str, tmp_path: Path) -> None:
    pg(pg_database, "CREATE TABLE k (id bigint, ts timestamptz, flag boolean, doc json)")
    pg(pg_database, "CREATE TABLE d (id bigint, ts timestamptz, flag boolean, doc json)")
    src, dst = f"{pg_database}?table=k", f"{pg_database}?table=d"
    refused = cli("copy", src, dst, "--incremental", "flag", check=2)
    assert "column 'flag' is boolean, which has no order" in refused.stderr
    refused = cli("copy", src, dst, "--incremental", "ts", "--lookback", "5m", check=2)
    assert "no primary key and no --key" in refused.stderr
    refused = cli("copy", src, dst, "--incremental", "nope", check=2)
    assert "no column 'nope'" in refused.stderr
    refused = cli("copy", src, dst, "--key", "id", check=2)
    assert "--key and --lookback go with --incremental" in refused.stderr
    refused = cli("copy", src, dst, "--incremental", "ts", "--lookback", "soon", check=2)
    assert "--lookback 'soon' is not a period" in refused.stderr
    (tmp_path / "in.csv").write_text("1,2024-01-01\n")
    refused = cli("copy", "in.csv", dst, "--incremental", "ts", check=2)
    assert "an incremental copy reads a PostgreSQL or MySQL table" in refused.stderr
    refused = cli("copy", src, "out.csv", "--incremental", "ts", check=2)
    assert "give a directory or prefix (ending in /)" in refused.stderr


def test_merge_keeps_the_latest_version(cli: Cli, pg_database: str, mysql_database: str,
                                        dynamodb_endpoint: str) -> None:
    pg(pg_database, SOURCE)
    pg(pg_database, "CREATE TABLE d (id bigint, ts timestamptz, v text)")
    my_exec(mysql_database, "CREATE TABLE d (id bigint PRIMARY KEY, ts datetime(6), v text)")
    my_exec(mysql_database, "CREATE TABLE nokey (id bigint, ts datetime(6), v text)")
    ddb = aws.client("dynamodb", dynamodb_endpoint)
    table = f"incr-{secrets.token_hex(4)}"  # the DynamoDB server outlives the test
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}])
    src = f"{pg_database}?table=s"
    dests = [f"{pg_database}?table=d", f"{mysql_database}?table=d", f"dynamodb://{table}"]
    for dest in dests:
        assert inc(cli, src, dest, "--key", "id")["incremental"]["rowsMoved"] == 50
    pg(pg_database, "UPDATE s SET v = v || ' new', ts = ts + interval '2 hours' "
       "WHERE id % 10 = 0")
    pg(pg_database, "INSERT INTO s VALUES (51, '2024-01-01 05:00+00', 'v51')")
    for dest in dests:
        assert inc(cli, src, dest, "--key", "id")["incremental"]["rowsMoved"] == 6
    want = dict(pg(pg_database, "SELECT id, v FROM s"))
    assert dict(pg(pg_database, "SELECT id, v FROM d")) == want
    assert len(pg(pg_database, "SELECT id FROM d")) == 51
    assert dict(my(mysql_database, "SELECT id, v FROM d")) == want
    items = ddb.scan(TableName=table)["Items"]
    ddb.delete_table(TableName=table)
    assert {int(i["id"]["N"]): i["v"]["S"] for i in items} == want
    refused = cli("copy", src, f"{mysql_database}?table=nokey", "--incremental", "ts",
                  "--key", "id", check=2)
    assert "unique key on (id)" in refused.stderr
    refused = cli("copy", src, "out/", "--incremental", "ts", "--key", "id", check=2)
    assert "--key merges rows (upsert)" in refused.stderr


def s3_rows(s3_endpoint: str, bucket: str) -> tuple[list[str], Counter[int]]:
    client = aws.client("s3", s3_endpoint)
    try:
        keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
        found: Counter[int] = Counter()
        for key in keys:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            found.update(int(r[0]) for r in csv.reader(io.StringIO(body)))
        return keys, found
    finally:
        client.close()


def test_s3_increments_and_a_crash_before_the_watermark(cli: Cli, pg_database: str,
                                                       s3_endpoint: str,
                                                       s3_bucket: str) -> None:
    """Files and S3: a folder per increment; the watermark goes to the store only after the
    output completed, so a crash in between repeats the increment into the same folder."""
    pg(pg_database, SOURCE)
    src, dest = f"{pg_database}?table=s", f"s3://{s3_bucket}/orders/"
    assert inc(cli, src, dest)["incremental"]["run"] == 1
    pg(pg_database, "INSERT INTO s SELECT g, timestamptz '2024-01-02 00:00+00' + g * "
       "interval '1 second', 'b' FROM generate_series(51, 60) g")
    killer = subprocess_env_run(cli, "incremental-output-complete", "copy", src, dest,
                                "--incremental", "ts")
    assert killer == -signal.SIGKILL
    keys, _ = s3_rows(s3_endpoint, s3_bucket)
    assert "orders/increment-000002/part-00000.csv" in keys  # written, not yet noted
    again = inc(cli, src, dest)["incremental"]
    assert (again["run"], again["rowsMoved"]) == (2, 10)  # the same increment, again
    keys, found = s3_rows(s3_endpoint, s3_bucket)
    assert keys == ["orders/increment-000001/part-00000.csv",
                    "orders/increment-000002/part-00000.csv"]
    assert found == Counter(range(1, 61))


def subprocess_env_run(cli: Cli, point: str, *args: str) -> int:
    import subprocess

    from tests.e2e.cli_kit import HEADRACE

    env = cli.env()
    env["HEADRACE_CRASH_POINT"] = point
    return subprocess.run([HEADRACE, *args], env=env, cwd=cli.root, capture_output=True,
                          timeout=60, check=False).returncode


class Writers:
    """Concurrent writers to the sources while the increments run: one inserting rows now,
    one inserting rows whose transaction commits late (its time is older than rows committed
    meanwhile), one updating rows of the merge source."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(fn,), daemon=True)
                        for fn in (self._insert, self._late, self._update)]
        self.errors: list[BaseException] = []

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not self.errors, self.errors

    def _run(self, fn: Any) -> None:
        try:
            asyncio.run(fn())
        except BaseException as exc:  # reported by __exit__
            self.errors.append(exc)

    async def _insert(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self.stop.is_set():
                await conn.execute("INSERT INTO a (ts, v) SELECT clock_timestamp(), 'w' "
                                   "FROM generate_series(1, 20)")
                await conn.execute("INSERT INTO m (ts, v) VALUES (clock_timestamp(), 'w')")
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    async def _late(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self.stop.is_set():
                async with conn.transaction():
                    await conn.execute("INSERT INTO a (ts, v) VALUES (clock_timestamp(), "
                                       "'late')")
                    await asyncio.sleep(0.3)  # others commit newer times meanwhile
        finally:
            await conn.close()

    async def _update(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                await conn.execute("UPDATE m SET v = $1, ts = clock_timestamp() WHERE id IN "
                                   "(SELECT id FROM m ORDER BY random() LIMIT 5)", f"u{n}")
                await asyncio.sleep(0.05)
        finally:
            await conn.close()


@pytest.fixture
def sources(pg_database: str) -> Iterator[str]:
    pg(pg_database, "CREATE TABLE a (id bigserial PRIMARY KEY, ts timestamptz NOT NULL, "
       "v text); CREATE TABLE m (id bigserial PRIMARY KEY, ts timestamptz NOT NULL, v text); "
       "CREATE TABLE a_copy (id bigint, ts timestamptz, v text); "
       "CREATE TABLE m_copy (id bigint, ts timestamptz, v text)")
    yield pg_database


def increment(src: str, dest: str, key: tuple[str, ...] = (),
              lookback: timedelta | None = None) -> int:
    """One increment in this process (what ``headrace copy --incremental ts`` runs, under
    the same copy key, so it continues from the CLI's runs and they from it)."""
    spec = IncrementSpec("ts", key, lookback)
    name = copy_key(redact_url(src), redact_url(dest), "ts")

    async def run() -> int:
        done = await run_incremental(open_source(src), open_sink(dest), spec, name,
                                     stored=None)
        return done.result.rows

    return anyio.run(run)


def wait_for_load(dsn: str, table: str, timeout: float = 30) -> bool:
    """True once another session is running a COPY into ``table`` (the load is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pg(dsn, "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
              "state = 'active' AND query ILIKE $1", f"COPY%{table}%"):
            time.sleep(0.2)  # some rows in
            return True
        time.sleep(0.05)
    return False


def test_twenty_increments_with_writers_and_a_kill(cli: Cli, sources: str,
                                                   mysql_database: str) -> None:
    """20 increments while three writers run (inserts, late commits, updates); the 11th is
    a big one, and a ``headrace copy`` of it is killed with SIGKILL while it loads; the
    increment run after it continues from the last committed watermark."""
    dsn = sources
    my_exec(mysql_database, "CREATE TABLE m_copy (id bigint PRIMARY KEY, ts datetime(6), "
            "v text)")
    append = (f"{dsn}?table=a", f"{dsn}?table=a_copy")
    window = timedelta(seconds=5)
    merges = [(f"{dsn}?table=m", f"{dsn}?table=m_copy"),
              (f"{dsn}?table=m", f"{mysql_database}?table=m_copy")]
    killed = 0
    with Writers(dsn):
        for n in range(20):
            if n == 10:  # a big increment, killed while it loads
                pg(dsn, "INSERT INTO a (ts, v) SELECT clock_timestamp(), repeat('x', 200) "
                   "FROM generate_series(1, 200000)")
                before = len(ids(dsn, "a_copy"))
                proc = cli.spawn("copy", *append, "--incremental", "ts", "--lookback", "5s")
                assert wait_for_load(dsn, "a_copy"), "the copy never started loading"
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                killed = proc.returncode
                assert len(ids(dsn, "a_copy")) == before  # killed before its commit
            increment(*append, lookback=window)
            increment(*merges[n % 2], key=("id",))  # PostgreSQL and MySQL by turns
            time.sleep(0.2)
    assert killed == -signal.SIGKILL
    # writers stopped: one last increment takes what they wrote last
    increment(*append, lookback=window)
    for merge in merges:
        increment(*merge, key=("id",))
    source = ids(dsn, "a")
    assert len(source) > 200000
    assert ids(dsn, "a_copy") == source  # every row exactly once
    want = dict(pg(dsn, "SELECT id, v FROM m"))
    assert dict(pg(dsn, "SELECT id, v FROM m_copy")) == want
    assert len(pg(dsn, "SELECT id FROM m_copy")) == len(want)
    assert dict(my(mysql_database, "SELECT id, v FROM m_copy")) == want


def test_a_copy_activity_copies_incrementally(cli: Cli, pg_database: str,
                                              tmp_path: Path) -> None:
    """``incrementalColumn`` on a CopyActivity: each scheduled run continues from the
    activity's watermark, kept in the target's checkpoint row."""
    from tests.e2e.cli_kit import ref, shell, write_definition

    pg(pg_database, SOURCE)
    pg(pg_database, "CREATE TABLE d (id bigint, ts timestamptz, v text)")
    objects = (
        pg_database_object(pg_database),
        {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Db"),
         "table": "s"},
        {"id": "Out", "name": "Out", "type": "SqlDataNode", "database": ref("Db"),
         "table": "d"},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "incrementalColumn": "ts", "lookback": "10 minutes",
         "workerGroup": "local"},
        shell("Echo", "true", workerGroup="local"))
    first = write_definition(tmp_path / "p.json", *objects)
    ran = cli.run(first)
    assert [i["status"] for i in ran["instances"]] == ["FINISHED", "FINISHED"]
    pg(pg_database, "INSERT INTO s VALUES (51, '2024-01-01 00:45+00', 'late'), "
       "(52, '2024-01-01 02:00+00', 'new')")
    later = write_definition(tmp_path / "p.json", *objects, start="2024-01-01T00:15:00",
                             end="2024-01-01T00:30:00")
    assert [i["status"] for i in cli.run(later)["instances"]] == ["FINISHED", "FINISHED"]
    assert ids(pg_database, "d") == Counter(range(1, 53))
    marks = pg(pg_database, "SELECT key, watermark FROM headrace_checkpoints "
               "WHERE key LIKE 'activity:%'")
    assert len(marks) == 1 and marks[0][0] == f"activity:{ran['pipelineId']}/Load"
    assert json.loads(marks[0][1])["value"] == "2024-01-01T02:00:00+00:00"
    check_runs_shown(cli, ran["pipelineId"], [
        ("2024-01-01T00:00:00", "2024-01-01T00:50:00+00:00", 50),
        ("2024-01-01T00:15:00", "2024-01-01T02:00:00+00:00", 2)])


def check_runs_shown(cli: Cli, pipeline_id: str,
                     want: list[tuple[str, str, int]]) -> None:
    """``list-runs`` shows each incremental run's watermark and rows moved (and no such keys
    on other instances); ``describe-copy`` lists the activity's copy with every run."""
    runs = cli.json("list-runs", "--pipeline-id", pipeline_id)["runs"]
    loads = sorted((r["scheduledStartTime"], r["watermark"], r["rowsMoved"])
                   for r in runs if r["objectId"] == "Load")
    assert loads == want
    others = [r for r in runs if r["objectId"] != "Load"]
    assert others and not any("watermark" in r or "rowsMoved" in r for r in others)
    text = cli("list-runs", "--pipeline-id", pipeline_id).stdout
    assert "Rows Moved" in text.splitlines()[0]
    load_lines = [line for line in text.splitlines() if line.startswith("Load")]
    assert [line.split()[-2:] for line in sorted(load_lines)] == \
        [[f"{moved:,}", mark] for _, mark, moved in want]

    key = f"activity:{pipeline_id}/Load"
    listed = cli.json("describe-copy")["copies"]
    assert [(c["copyKey"], c["column"], c["watermark"], c["rowsMoved"], c["runs"])
            for c in listed] == [(key, "ts", want[-1][1], sum(w[2] for w in want), len(want))]
    history = cli.json("describe-copy", key)["copies"][0]["history"]
    assert [(r["watermark"], r["rowsMoved"]) for r in history] == \
        [(mark, moved) for _, mark, moved in want]
    assert key in cli("describe-copy").stdout


def test_a_copy_activity_into_s3_survives_a_crash_before_the_watermark(
        cli: Cli, pg_database: str, s3_endpoint: str, s3_bucket: str,
        tmp_path: Path) -> None:
    """An incremental CopyActivity into an S3DataNode: the store keeps the watermark, written
    only after the output completed. The engine is killed between the two (crash point
    ``incremental-output-complete``); rows are added before it resumes; the resumed attempt
    writes the same increment's folder again, with them. Checker: every source row is in S3
    exactly once, and the increments are the folders expected."""
    import subprocess

    from tests.e2e.cli_kit import HEADRACE, ref, write_definition

    pg(pg_database, SOURCE)
    objects = (
        pg_database_object(pg_database),
        {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Db"),
         "table": "s"},
        {"id": "Out", "name": "Out", "type": "S3DataNode",
         "directoryPath": f"s3://{s3_bucket}/act"},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "incrementalColumn": "ts", "workerGroup": "local"})

    def window(start: str, end: str) -> Path:
        return write_definition(tmp_path / "p.json", *objects, start=start, end=end)

    def more(first: int, last: int, at: str) -> None:
        pg(pg_database, f"INSERT INTO s SELECT g, timestamptz '{at}' + g * interval "
           f"'1 second', 'r' || g FROM generate_series({first}, {last}) g")

    ran = cli.run(window("2024-01-01T00:00:00", "2024-01-01T00:15:00"))
    assert [i["status"] for i in ran["instances"]] == ["FINISHED"]
    more(51, 60, "2024-01-02 00:00+00")
    crashed = subprocess.run([HEADRACE, "run", str(window("2024-01-01T00:15:00",
                                                          "2024-01-01T00:30:00")),
                              "--output", "json"], cwd=cli.root, capture_output=True,
                             timeout=120, check=False,
                             env={**cli.env(), "HEADRACE_CRASH_POINT":
                                  "incremental-output-complete"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    keys, found = s3_rows(s3_endpoint, s3_bucket)
    assert keys == ["act/increment-000001/part-00000.csv",
                    "act/increment-000002/part-00000.csv"]  # written, watermark not kept
    assert found == Counter(range(1, 61))
    more(61, 65, "2024-01-03 00:00+00")  # while the engine is down

    resumed = cli.run(window("2024-01-01T00:15:00", "2024-01-01T00:30:00"))
    assert [i["status"] for i in resumed["instances"]] == ["FINISHED"]
    keys, found = s3_rows(s3_endpoint, s3_bucket)
    assert keys == ["act/increment-000001/part-00000.csv",
                    "act/increment-000002/part-00000.csv"]  # the same increment, rewritten
    assert found == Counter(range(1, 66))

    more(66, 68, "2024-01-04 00:00+00")
    last = cli.run(window("2024-01-01T00:30:00", "2024-01-01T00:45:00"))
    assert [i["status"] for i in last["instances"]] == ["FINISHED"]
    keys, found = s3_rows(s3_endpoint, s3_bucket)
    assert keys[-1] == "act/increment-000003/part-00000.csv" and len(keys) == 3
    assert found == Counter(range(1, 69))  # nothing lost, nothing repeated
    check_runs_shown(cli, ran["pipelineId"], [
        ("2024-01-01T00:00:00", "2024-01-01T00:50:00+00:00", 50),
        ("2024-01-01T00:15:00", "2024-01-03T00:01:05+00:00", 15),
        ("2024-01-01T00:30:00", "2024-01-04T00:01:08+00:00", 3)])
    shown = cli.json("describe-copy")["copies"][0]
    assert shown["dest"] == f"s3://{s3_bucket}/act/"  # the node's folder, not an increment


def test_incremental_from_a_query(cli: Cli, pg_database: str, mysql_database: str) -> None:
    """``--query`` with ``--incremental``: the query is read as a derived table, filtered on
    its result's column; another query over the same URL is another copy; a look-back needs
    ``--key`` (a query has no primary key); a column the result lacks is named."""
    pg(pg_database, SOURCE)
    pg(pg_database, "CREATE TABLE d (id bigint, ts timestamptz, v text)")
    src, dst = f"{pg_database}?table=s", f"{pg_database}?table=d"
    even = "SELECT id, ts, upper(v) AS v FROM s WHERE id % 2 = 0 -- even ids\n;"
    first = inc(cli, src, dst, "--query", even)["incremental"]
    assert (first["watermark"], first["rowsMoved"]) == ("2024-01-01T00:50:00+00:00", 25)
    pg(pg_database, "INSERT INTO s SELECT g, timestamptz '2024-01-02 00:00+00' + g * "
       "interval '1 second', 'n' || g FROM generate_series(51, 55) g")
    second = inc(cli, src, dst, "--query", even)["incremental"]
    assert second["rowsMoved"] == 2 and second["run"] == 2  # 52 and 54
    assert sorted(pg(pg_database, "SELECT id, v FROM d WHERE id > 48")) == \
        [(50, "V50"), (52, "N52"), (54, "N54")]
    odd = inc(cli, src, dst, "--query", "SELECT * FROM s WHERE id % 2 = 1")["incremental"]
    assert (odd["run"], odd["rowsMoved"]) == (1, 28)  # its own watermark
    assert ids(pg_database, "d") == Counter(range(1, 56))

    refused = cli("copy", src, dst, "--query", even, "--incremental", "ts", "--lookback",
                  "5m", check=2)
    assert "a query has no primary key and no --key" in refused.stderr
    refused = cli("copy", src, dst, "--query", "SELECT id, v FROM s", "--incremental", "ts",
                  check=2)
    assert "the query's result has no column 'ts'" in refused.stderr
    assert "(columns: id, v)" in refused.stderr

    # MySQL, merged by --key with a look-back: a late row and an update are both caught
    my_exec(mysql_database, "CREATE TABLE ms (id bigint PRIMARY KEY, ts datetime(6), v text)")
    my_exec(mysql_database, "INSERT INTO ms VALUES (%s, %s, %s)",
            [(i, f"2024-01-01 00:{i:02d}:00", f"m{i}") for i in range(1, 11)])
    pg(pg_database, "CREATE TABLE md (id bigint PRIMARY KEY, ts timestamp, v text)")
    msrc, mdst = f"{mysql_database}?table=ms", f"{pg_database}?table=md"
    query = "SELECT m.id, m.ts, concat(m.v, '!') AS v FROM ms m WHERE m.v <> 'skip'"
    flags = ("--query", query, "--key", "id", "--lookback", "5m")
    assert inc(cli, msrc, mdst, *flags)["incremental"]["rowsMoved"] == 10
    my_exec(mysql_database, "INSERT INTO ms VALUES (11, '2024-01-01 00:08:30', 'late'), "
            "(12, '2024-01-01 00:20:00', 'skip')")
    my_exec(mysql_database, "UPDATE ms SET v = 'again', ts = '2024-01-01 00:21:00' "
            "WHERE id = 3")
    merged = inc(cli, msrc, mdst, *flags)["incremental"]
    assert merged["watermark"] == "2024-01-01T00:21:00"
    assert dict(pg(pg_database, "SELECT id, v FROM md")) == {
        **{i: f"m{i}!" for i in range(1, 11)}, 3: "again!", 11: "late!"}


def test_the_fields_on_the_input_node_with_a_select_query(cli: Cli, pg_database: str,
                                                          tmp_path: Path) -> None:
    """``incrementalColumn``, ``incrementalKey`` and ``lookback`` on the SqlDataNode the
    CopyActivity reads, whose ``selectQuery`` is the source: each run merges what is past
    the watermark (an update, a late row), skipping what the query leaves out."""
    from tests.e2e.cli_kit import ref, write_definition

    pg(pg_database, SOURCE)
    pg(pg_database, "CREATE TABLE d (id bigint, ts timestamptz, v text)")
    objects = (
        pg_database_object(pg_database),
        {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Db"),
         "table": "s", "selectQuery": "SELECT id, ts, v FROM s WHERE v <> 'skip'",
         "incrementalColumn": "ts", "incrementalKey": "id", "lookback": "10m"},
        {"id": "Out", "name": "Out", "type": "SqlDataNode", "database": ref("Db"),
         "table": "d"},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "workerGroup": "local"})
    first = cli.run(write_definition(tmp_path / "p.json", *objects))
    assert [i["status"] for i in first["instances"]] == ["FINISHED"]
    pg(pg_database, "UPDATE s SET v = 'changed', ts = '2024-01-01 01:00+00' WHERE id = 7; "
       "INSERT INTO s VALUES (51, '2024-01-01 00:45+00', 'late'), "
       "(52, '2024-01-01 00:59+00', 'skip')")
    later = cli.run(write_definition(tmp_path / "p.json", *objects,
                                     start="2024-01-01T00:15:00", end="2024-01-01T00:30:00"))
    assert [i["status"] for i in later["instances"]] == ["FINISHED"]
    rows = pg(pg_database, "SELECT id, v FROM d")
    assert len(rows) == 51 and dict(rows) == {
        **{i: f"v{i}" for i in range(1, 51)}, 7: "changed", 51: "late"}
    check_runs_shown(cli, first["pipelineId"], [
        ("2024-01-01T00:00:00", "2024-01-01T00:50:00+00:00", 50),
        # a merge re-reads the window (00:40 on: 40-50) and upserts it, with 7 and 51
        ("2024-01-01T00:15:00", "2024-01-01T01:00:00+00:00", 13)])


def test_a_backfill_runs_the_increments_one_at_a_time(cli: Cli, pg_database: str,
                                                      s3_endpoint: str, s3_bucket: str,
                                                      tmp_path: Path) -> None:
    """Four windows of one run: the instances of an incremental CopyActivity may be started
    together (maxActiveInstances defaults to 5), but take turns under the copy's lease, so
    each reads the watermark the one before committed. Checker: every row once in the table
    and once in S3, the increments numbered 1 to 4."""
    from tests.e2e.cli_kit import ref, write_definition

    pg(pg_database, SOURCE)
    pg(pg_database, "CREATE TABLE d (id bigint, ts timestamptz, v text)")
    objects = (
        pg_database_object(pg_database),
        {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Db"),
         "table": "s", "incrementalColumn": "ts"},
        {"id": "Out", "name": "Out", "type": "SqlDataNode", "database": ref("Db"),
         "table": "d"},
        {"id": "Files", "name": "Files", "type": "S3DataNode",
         "directoryPath": f"s3://{s3_bucket}/bf/"},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "workerGroup": "local"},
        {"id": "Dump", "name": "Dump", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Files"), "workerGroup": "local"})
    ran = cli.run(write_definition(tmp_path / "p.json", *objects, end="2024-01-01T01:00:00"))
    loads = [i for i in ran["instances"] if i["objectId"] in ("Load", "Dump")]
    assert [i["status"] for i in loads] == ["FINISHED"] * 8
    assert ids(pg_database, "d") == Counter(range(1, 51))
    keys, found = s3_rows(s3_endpoint, s3_bucket)
    assert found == Counter(range(1, 51))
    assert {k.split("/")[1] for k in keys} <= {f"increment-{n:06d}" for n in range(1, 5)}
    history = cli.json("describe-copy", f"activity:{ran['pipelineId']}/Dump")
    assert [r["run"] for r in history["copies"][0]["history"]] == [1, 2, 3, 4]
    assert sorted(r["rowsMoved"] for r in history["copies"][0]["history"]) == [0, 0, 0, 50]


def test_a_copy_activity_into_a_local_folder(cli: Cli, pg_database: str,
                                             tmp_path: Path) -> None:
    """A local ``directoryPath`` output gets a folder per increment too; a ``filePath`` one
    is refused, naming the node."""
    from tests.e2e.cli_kit import by_object, ref, write_definition

    pg(pg_database, SOURCE)
    out = tmp_path / "out"
    db = pg_database_object(pg_database)
    source = {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Db"),
              "table": "s", "incrementalColumn": "ts"}
    load = {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
            "output": ref("Out"), "workerGroup": "local", "maximumRetries": "0"}

    def run(output: dict[str, Any], start: str, end: str, check: int = 0) -> dict[str, Any]:
        return cli.run(write_definition(tmp_path / "p.json", db, source, output, load,
                                        start=start, end=end), check=check)

    folder = {"id": "Out", "name": "Out", "type": "S3DataNode", "directoryPath": str(out)}
    assert by_object(run(folder, "2024-01-01T00:00:00", "2024-01-01T00:15:00"))["Load"][
        "status"] == "FINISHED"
    pg(pg_database, "INSERT INTO s VALUES (51, '2024-01-02 00:00+00', 'n')")
    assert by_object(run(folder, "2024-01-01T00:15:00", "2024-01-01T00:30:00"))["Load"][
        "status"] == "FINISHED"
    parts_written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv"))
    assert parts_written == ["increment-000001/part-00000.csv",
                             "increment-000002/part-00000.csv"]
    found = Counter(int(r[0]) for p in out.rglob("*.csv")
                    for r in csv.reader(io.StringIO(p.read_text())))
    assert found == Counter(range(1, 52))

    one_file = {"id": "Out", "name": "Out", "type": "S3DataNode",
                "filePath": str(tmp_path / "one.csv")}
    failed = by_object(run(one_file, "2024-01-01T00:30:00", "2024-01-01T00:45:00",
                           check=None))["Load"]
    assert failed["status"] == "FAILED"
    assert "Out: an incremental copy writes a folder per increment; give the node a " \
        "directoryPath" in failed["error"]
    assert not (tmp_path / "one.csv").exists()


def test_a_copy_activity_merging_into_dynamodb(cli: Cli, pg_database: str,
                                               dynamodb_endpoint: str,
                                               tmp_path: Path) -> None:
    """An incremental CopyActivity with ``incrementalKey`` into a DynamoDBDataNode: items
    are put by their key, the watermark is the store's; each item ends at its latest
    version."""
    from tests.e2e.cli_kit import by_object, ref, write_definition

    pg(pg_database, SOURCE)
    ddb = aws.client("dynamodb", dynamodb_endpoint)
    table = f"incr-act-{secrets.token_hex(4)}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}])
    objects = (
        pg_database_object(pg_database),
        {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Db"),
         "table": "s"},
        {"id": "Items", "name": "Items", "type": "DynamoDBDataNode", "tableName": table},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Items"), "incrementalColumn": "ts", "incrementalKey": "id",
         "workerGroup": "local"})
    try:
        first = cli.run(write_definition(tmp_path / "p.json", *objects))
        assert by_object(first)["Load"]["status"] == "FINISHED"
        pg(pg_database, "UPDATE s SET v = 'new', ts = ts + interval '1 day' "
           "WHERE id % 10 = 0; INSERT INTO s VALUES (51, '2024-01-03 00:00+00', 'v51')")
        later = cli.run(write_definition(tmp_path / "p.json", *objects,
                                         start="2024-01-01T00:15:00",
                                         end="2024-01-01T00:30:00"))
        assert by_object(later)["Load"]["status"] == "FINISHED"
        items = ddb.scan(TableName=table)["Items"]
    finally:
        ddb.delete_table(TableName=table)
    assert {int(i["id"]["N"]): i["v"]["S"] for i in items} == \
        dict(pg(pg_database, "SELECT id, v FROM s"))
    check_runs_shown(cli, first["pipelineId"], [
        ("2024-01-01T00:00:00", "2024-01-01T00:50:00+00:00", 50),
        ("2024-01-01T00:15:00", "2024-01-03T00:00:00+00:00", 6)])
