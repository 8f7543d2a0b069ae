"""Worker processes under faults (issue 14), on a real PostgreSQL and the TCP fault proxy:
a worker paused past its lease mid-load (into PostgreSQL or MySQL) is fenced off, clocks ten
minutes off take nothing early, a store connection reset under a worker runs nothing twice, a
scheduler-only engine's work is carried on by a second one, and kill -9 mid PostgreSQL ->
PostgreSQL copy loads once. The checker (nothing lost, duplicated or unexpected) runs on every
data case."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import pytest

from connectors.testing import FaultProxy
from engine.cli.worker_cmds import CLOCK_OFFSET_ENV as ENV_OFFSET
from engine.runtime.crashpoints import ENV
from engine.runtime.runner import LEASE_SECONDS
from tests.e2e.cli_kit import ref
from tests.e2e.test_faults_pipeline import (  # noqa: F401 (mysql_user: a fixture)
    my_connection,
    my_sql,
    mysql_user,
    pg_connection,
    pg_sql,
    wait_until,
)
from tests.e2e.worker_kit import PgCli, definition, shell_step
from tests.services import aws

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

N = 20_000
T = TypeVar("T")


@pytest.fixture
async def cli(tmp_path: Path, pg_database: str) -> AsyncIterator[PgCli]:
    kit = PgCli(tmp_path, dsn=pg_database)
    yield kit
    for out, err in await anyio.to_thread.run_sync(kit.close):
        print(out, err)  # shown when a test fails


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """A blocking CLI call in a thread: the fault proxy runs on this test's event loop."""
    return await anyio.to_thread.run_sync(lambda: fn(*args))


def checker(ids: list[int], n: int = N) -> None:
    seen = Counter(ids)
    assert set(range(n)) - set(seen) == set()  # lost
    assert {i for i, c in seen.items() if c > 1} == set()  # duplicated
    assert set(seen) - set(range(n)) == set()  # unexpected


async def copy_setup(dsn: str, tmp_path: Path, target_port: int,
                     target: dict[str, Any] | None = None) -> Path:
    """src (N rows) -> t through the database at ``target_port`` (the slow proxy); ``target``:
    that database's object when it is not the PostgreSQL one (it must have id ``Slow``)."""
    await pg_sql(dsn, "CREATE TABLE src AS SELECT g AS id, 'name ' || g AS name "
                      f"FROM generate_series(0, {N - 1}) g")
    if target is None:
        await pg_sql(dsn, "CREATE TABLE t (id bigint, name text)")
    port = urlsplit(dsn).port or 5432
    return definition(
        tmp_path / "p.json",
        {"id": "Direct", "name": "Direct", "type": "JdbcDatabase",
         "connectionString": pg_connection(dsn, port), "username": "postgres",
         "*password": "unused"},
        target or {"id": "Slow", "name": "Slow", "type": "JdbcDatabase",
                   "connectionString": pg_connection(dsn, target_port),
                   "username": "postgres", "*password": "unused"},
        {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Direct"),
         "table": "src"},
        {"id": "Out", "name": "Out", "type": "SqlDataNode", "database": ref("Slow"),
         "table": "t"},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "maximumRetries": "2", "retryDelay": "1 seconds"})


async def loaded_ids(dsn: str) -> list[int]:
    return [int(r[0]) for r in await pg_sql(dsn, "SELECT id FROM t")]


@dataclass
class Target:
    """The database a paused worker's load writes to: its server's port, the pipeline object
    for a port (None: the store's PostgreSQL), and how to read back ``t`` and the checkpoint."""

    port: int
    node: Callable[[int], dict[str, Any] | None]
    ids: Callable[[], Awaitable[list[int]]]
    checkpoint: Callable[[], Awaitable[list[tuple[Any, ...]]]]


@pytest.fixture(params=["postgres", "mysql"])
def target(request: pytest.FixtureRequest, pg_database: str) -> Target:
    if request.param == "postgres":
        return Target(urlsplit(pg_database).port or 5432, lambda port: None,
                      partial(loaded_ids, pg_database),
                      partial(pg_sql, pg_database,
                              "SELECT fence, finished FROM headrace_checkpoints"))
    mysql: str = request.getfixturevalue("mysql_database")
    user, password = request.getfixturevalue("mysql_user")
    my_sql(mysql, "CREATE TABLE t (id bigint, name text)")

    async def ids() -> list[int]:
        return [int(r[0]) for r in await off_loop(my_sql, mysql, "SELECT id FROM t")]

    async def checkpoint() -> list[tuple[Any, ...]]:
        return await off_loop(my_sql, mysql, "SELECT fence, finished = 1 FROM "
                                             "headrace_checkpoints")

    return Target(urlsplit(mysql).port or 3306,
                  lambda port: {"id": "Slow", "name": "Slow", "type": "JdbcDatabase",
                                "connectionString": my_connection(mysql, port),
                                "username": user, "*password": password},
                  ids, checkpoint)


async def test_a_worker_paused_past_its_lease_mid_load_is_fenced_off(
        cli: PgCli, pg_database: str, target: Target, tmp_path: Path) -> None:
    """SIGSTOP w1 during its load (into PostgreSQL, then MySQL), past its lease: w2 takes over
    and finishes; SIGCONT w1: its commit is refused by the fencing token, it logs that it lost
    the lease and cancels itself; the table holds each row once."""
    async with FaultProxy("127.0.0.1", target.port) as proxy:
        path = await copy_setup(pg_database, tmp_path, proxy.port, target.node(proxy.port))
        proxy.bandwidth(256 * 1024, direction="up")
        pid = await off_loop(cli.new_pipeline, path)
        cli.scheduler()
        first = cli.worker("w1", lease=3.0)
        await wait_until(lambda: proxy.bytes_up > 100_000, "w1's load under way")
        first.send_signal(signal.SIGSTOP)
        try:
            cli.worker("w2", lease=3.0)
            [run] = await off_loop(cli.wait_finished, pid, 1, 120)
            assert run["status"] == "FINISHED" and run["workerId"] == "w2", run
        finally:
            first.send_signal(signal.SIGCONT)
        checker(await target.ids())
        await lost_the_lease(first)  # w1 resumed: it must notice, and commit nothing
        checker(await target.ids())
        assert await target.checkpoint() == [(2, True)]
    attempts = (await off_loop(cli.json, "describe-objects", "--store", cli.dsn,
                               "--pipeline-id", pid, "--object-ids",
                               "@Load_2024-01-01T00:00:00"))["pipelineObjects"][0][
        "attemptList"]
    assert [(a["status"], a["workerId"]) for a in attempts] == [
        ("INTERRUPTED", "w1"), ("FINISHED", "w2")]


#: rows of the S3 output's source: over 5 MiB of CSV, so the object is a multipart upload
S3_ROWS = 400_000
LOAD = "@Load_2024-01-01T00:00:00"


async def s3_copy_setup(dsn: str, tmp_path: Path, bucket: str) -> Path:
    """src (S3_ROWS rows) -> s3://bucket/out.csv."""
    await pg_sql(dsn, "CREATE TABLE src AS SELECT g AS id, 'name ' || g AS name "
                      f"FROM generate_series(0, {S3_ROWS - 1}) g")
    port = urlsplit(dsn).port or 5432
    return definition(
        tmp_path / "p.json",
        {"id": "Direct", "name": "Direct", "type": "JdbcDatabase",
         "connectionString": pg_connection(dsn, port), "username": "postgres",
         "*password": "unused"},
        {"id": "In", "name": "In", "type": "SqlDataNode", "database": ref("Direct"),
         "table": "src"},
        {"id": "Out", "name": "Out", "type": "S3DataNode",
         "filePath": f"s3://{bucket}/out.csv"},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "maximumRetries": "2", "retryDelay": "1 seconds"})


async def lost_the_lease(w1: subprocess.Popen[str]) -> None:
    """w1, resumed (SIGCONT), has a few seconds to notice; stopped (SIGTERM), it has logged
    that it lost the lease."""
    await anyio.sleep(4)
    w1.send_signal(signal.SIGTERM)
    _, err = await off_loop(w1.communicate, None, 60)
    assert f"w1 lost the lease on {LOAD}" in err, err


def is_stopped(proc: subprocess.Popen[str]) -> bool:
    """The process is stopped (SIGSTOP): its state in /proc is T."""
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def s3_output(s3_endpoint: str, bucket: str) -> tuple[list[str], list[Any]]:
    """The lines of out.csv and the bucket's pending multipart uploads."""
    client = aws.client("s3", s3_endpoint)
    try:
        body = client.get_object(Bucket=bucket, Key="out.csv")["Body"].read().decode()
        pending = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    finally:
        client.close()
    return body.splitlines(), pending


def lines_checker(lines: list[str], name: str) -> None:
    """Each source row once, every name as ``name`` (the source's content when it was read)."""
    rows = [line.split(",", 1) for line in lines if not line.startswith("id")]
    checker([int(i) for i, _ in rows], S3_ROWS)
    assert {n.rsplit(" ", 1)[0] for _, n in rows} == {name}


async def test_a_worker_stopped_before_completing_its_s3_output_completes_nothing(
        cli: PgCli, pg_database: str, s3_endpoint: str, s3_bucket: str,
        tmp_path: Path) -> None:
    """w1 stops itself (SIGSTOP) with every part of its S3 upload sent, just before it would
    complete it; its lease lapses, w2 takes over and writes the object from the source as it
    is now; w1, resumed, finds it lost the lease: it completes nothing (the object holds w2's
    rows) and aborts its upload (none left pending)."""
    path = await s3_copy_setup(pg_database, tmp_path, s3_bucket)
    pid = await off_loop(cli.new_pipeline, path)
    cli.scheduler()
    first = cli.worker("w1", lease=3.0, env={ENV: "output-hold"})
    await wait_until(lambda: is_stopped(first), "w1 to stop before completing")
    try:
        await pg_sql(pg_database, "UPDATE src SET name = 'changed ' || id")
        cli.worker("w2", lease=3.0)
        [run] = await off_loop(cli.wait_finished, pid, 1, 120)
        assert run["status"] == "FINISHED" and run["workerId"] == "w2", run
    finally:
        first.send_signal(signal.SIGCONT)
    await lost_the_lease(first)
    lines, pending = await off_loop(s3_output, s3_endpoint, s3_bucket)
    lines_checker(lines, "changed")
    assert pending == []
    attempts = (await off_loop(cli.json, "describe-objects", "--store", cli.dsn,
                               "--pipeline-id", pid, "--object-ids", LOAD))[
        "pipelineObjects"][0]["attemptList"]
    assert [(a["status"], a["workerId"]) for a in attempts] == [
        ("INTERRUPTED", "w1"), ("FINISHED", "w2")]


async def test_a_worker_stopped_while_completing_its_s3_output_keeps_the_instance(
        cli: PgCli, pg_database: str, s3_endpoint: str, s3_bucket: str,
        tmp_path: Path) -> None:
    """w1 stops itself inside the completion, its store row locked under its token: for
    three leases past its own, the reaper and w2 leave the instance alone (no second holder
    can complete the object meanwhile); resumed, w1 goes on, and the instance finishes with
    the object whole and no upload left pending."""
    path = await s3_copy_setup(pg_database, tmp_path, s3_bucket)
    pid = await off_loop(cli.new_pipeline, path)
    cli.scheduler()
    first = cli.worker("w1", lease=3.0, env={ENV: "output-held"})
    await wait_until(lambda: is_stopped(first), "w1 to stop while completing")
    try:
        cli.worker("w2", lease=3.0)
        await anyio.sleep(9.0)  # the reaper runs every 2 s in the scheduler and in w2
        held = await pg_sql(pg_database, "SELECT worker_id, lease_version, lease_until < "
                                         "EXTRACT(EPOCH FROM now()) FROM hr_instances "
                                         f"WHERE id = '{LOAD}'")
        assert held == [("w1", 1, True)]  # lapsed, and still w1's
    finally:
        first.send_signal(signal.SIGCONT)
    [run] = await off_loop(cli.wait_finished, pid, 1, 120)
    assert run["status"] == "FINISHED", run
    lines, pending = await off_loop(s3_output, s3_endpoint, s3_bucket)
    lines_checker(lines, "name")
    assert pending == []


@pytest.mark.parametrize("output", ["s3", "file"])
async def test_a_stale_workers_output_leaves_nothing_behind(
        cli: PgCli, pg_database: str, s3_endpoint: str, s3_bucket: str, tmp_path: Path,
        output: str) -> None:
    """w1 stops itself with its output written but not yet visible (the S3 upload's parts
    sent; the file's temp written); its lease lapses and the reaper queues the instance again,
    which is then canceled. w1, resumed, has lost the lease: its own cleanup runs (shielded):
    no object and no pending upload (S3), no file and no temp file (files)."""
    path = await s3_copy_setup(pg_database, tmp_path, s3_bucket)
    files = tmp_path / "out"
    files.mkdir()
    if output == "file":
        document = json.loads(path.read_text())
        for obj in document["objects"]:
            if obj["id"] == "Out":
                obj["filePath"] = f"file://{files}/out.csv"
        path.write_text(json.dumps(document))
    pid = await off_loop(cli.new_pipeline, path)
    cli.scheduler()
    first = cli.worker("w1", lease=3.0, env={ENV: "output-hold"})
    await wait_until(lambda: is_stopped(first), "w1 to stop before completing")
    try:
        await wait_until(partial(reaped, pg_database), "the reaper to take w1's lease back")
        await off_loop(cli.json, "set-status", "--store", cli.dsn, "--pipeline-id", pid,
                       "--object-ids", LOAD, "--status", "TRY_CANCEL")
        [run] = await off_loop(cli.wait_finished, pid, 1, 60)
        assert run["status"] == "CANCELED", run
    finally:
        first.send_signal(signal.SIGCONT)
    await lost_the_lease(first)
    if output == "file":
        assert list(files.iterdir()) == []
        return
    client = aws.client("s3", s3_endpoint)
    try:
        assert client.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []
        assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    finally:
        client.close()


async def reaped(dsn: str) -> bool:
    return await pg_sql(dsn, f"SELECT worker_id FROM hr_instances WHERE id = '{LOAD}'") == [
        (None,)]


async def test_kill_9_mid_postgres_to_postgres_copy_loads_once_elsewhere(
        cli: PgCli, pg_database: str, tmp_path: Path) -> None:
    port = urlsplit(pg_database).port or 5432
    async with FaultProxy("127.0.0.1", port) as proxy:
        path = await copy_setup(pg_database, tmp_path, proxy.port)
        proxy.bandwidth(256 * 1024, direction="up")
        pid = await off_loop(cli.new_pipeline, path)
        cli.scheduler()
        first = cli.worker("w1", lease=3.0)
        await wait_until(lambda: proxy.bytes_up > 100_000, "w1's load under way")
        first.kill()
        await off_loop(first.wait, 30)
        proxy.heal()
        cli.worker("w2", lease=3.0)
        [run] = await off_loop(cli.wait_finished, pid, 1, 120)
    assert run["status"] == "FINISHED" and run["workerId"] == "w2"
    checker(await loaded_ids(pg_database))


async def test_clocks_ten_minutes_off_neither_steal_nor_lose_work(
        cli: PgCli, tmp_path: Path) -> None:
    """Two workers whose wall clocks are ten minutes ahead and behind (the injectable offset):
    leases are in database time, so a step that outlives several leases keeps its worker,
    and every instance runs once."""
    out = tmp_path / "out"
    out.mkdir()
    path = definition(tmp_path / "p.json", shell_step(
        "Step", f"sleep 12; echo $HEADRACE_WORKER_ID >> {out}/#{{@scheduledStartTime}}.txt",
        maxActiveInstances="10"), instances=6)
    pid = await off_loop(cli.new_pipeline, path)
    cli.scheduler()
    cli.worker("ahead", "--slots", "3", lease=5.0,
               env={"HEADRACE_CLOCK_OFFSET_SECONDS": "600"})
    cli.worker("behind", "--slots", "3", lease=5.0,
               env={"HEADRACE_CLOCK_OFFSET_SECONDS": "-600"})
    runs = await off_loop(cli.wait_finished, pid, 6, 120)
    assert Counter(r["status"] for r in runs) == {"FINISHED": 6}
    assert all(r["attempts"] == 1 for r in runs), runs  # no takeover, no retry
    files = sorted(out.iterdir())
    assert len(files) == 6 and all(len(f.read_text().splitlines()) == 1 for f in files)
    assert {f.read_text().strip() for f in files} == {"ahead", "behind"}
    # the offsets were in effect: each worker recorded its start by its own (wrong) clock
    now = datetime.now(UTC).replace(tzinfo=None)
    for r in runs:
        started = datetime.fromisoformat(r["actualStartTime"])
        if r["workerId"] == "ahead":
            assert started > now + timedelta(minutes=8), r
        else:
            assert started < now - timedelta(minutes=8), r


async def test_a_store_connection_reset_under_a_worker_runs_nothing_twice(
        cli: PgCli, pg_database: str, tmp_path: Path) -> None:
    """The worker reaches the store through the fault proxy, which resets every connection
    twice while 30 instances run: the worker reconnects and each instance runs once."""
    out = tmp_path / "out"
    out.mkdir()
    path = definition(tmp_path / "p.json", shell_step(
        "Step", f"sleep 0.3; echo ran >> {out}/#{{@scheduledStartTime}}.txt",
        maxActiveInstances="30", maximumRetries="0"), instances=30)
    pid = await off_loop(cli.new_pipeline, path)
    cli.scheduler()
    parts = urlsplit(pg_database)
    async with FaultProxy("127.0.0.1", parts.port or 5432) as proxy:
        proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        cli.child("worker", "--store", proxied, "--worker-id", "w1", "--lease-seconds", "5",
                  "--poll-interval", "0.1", "--slots", "4", "-v")
        for _ in range(2):
            await wait_until(lambda: (out.exists() and len(list(out.iterdir())) >= 5),
                             "some instances to run")
            proxy.disconnect_all()
            await anyio.sleep(1.0)
        runs = await off_loop(cli.wait_finished, pid, 30, 180)
        assert proxy.resets > 0
    assert Counter(r["status"] for r in runs) == {"FINISHED": 30}, runs
    files = list(out.iterdir())
    assert len(files) == 30 and all(f.read_text() == "ran\n" for f in files)


async def test_a_second_scheduler_carries_on_when_the_first_dies(
        cli: PgCli, tmp_path: Path) -> None:
    """kill -9 the scheduler-only engine while its pipeline's instances are queued and
    running; a second one takes the pipeline over (its lease) and the rest still runs, each
    instance once: work in the workers' hands is not recovered as lost."""
    out = tmp_path / "out"
    out.mkdir()
    path = definition(tmp_path / "p.json", shell_step(
        "Step", f"sleep 1; echo ran >> {out}/#{{@scheduledStartTime}}.txt",
        maxActiveInstances="2"), instances=8)
    pid = await off_loop(cli.new_pipeline, path)
    first = cli.scheduler()
    cli.worker("w1", "--slots", "2", lease=3.0)
    await wait_until(lambda: len(list(out.iterdir())) >= 2, "some instances to run")
    first.kill()
    await off_loop(first.wait, 30)
    died = time.monotonic()
    cli.scheduler()
    runs = await off_loop(cli.wait_finished, pid, 8, 120)
    assert time.monotonic() - died < 90
    assert Counter(r["status"] for r in runs) == {"FINISHED": 8}
    files = list(out.iterdir())
    assert len(files) == 8 and all(f.read_text() == "ran\n" for f in files)


async def lease_owner(dsn: str, pid: str) -> str | None:
    rows = await pg_sql(dsn, f"SELECT owner FROM hr_leases WHERE name = 'pipeline:{pid}'")
    return str(rows[0][0]) if rows else None


@pytest.mark.parametrize("offset", [600, -600], ids=["ahead", "behind"])
async def test_a_scheduler_whose_clock_is_off_takes_over_only_after_a_lapse(
        cli: PgCli, pg_database: str, tmp_path: Path, offset: int) -> None:
    """A second scheduler-only engine whose clock is ten minutes ahead (or behind) of the
    live one's stands by: pipeline leases are in database time, so it takes nothing while
    the first renews (ahead: the first's expiry is not in its past), and once the first is
    paused (SIGSTOP: its process is alive, so only the lapse frees the lease) it takes over
    within a lease (behind: not ten minutes late); the first, resumed, stops, and every
    instance runs once."""
    out = tmp_path / "out"
    out.mkdir()
    path = definition(tmp_path / "p.json", shell_step(
        "Step", f"sleep 1; echo ran >> {out}/#{{@scheduledStartTime}}.txt",
        maxActiveInstances="1"), instances=6)
    pid = await off_loop(cli.new_pipeline, path)
    first = cli.scheduler()
    owner = f"{socket.gethostname()}:{first.pid}"
    await wait_until(partial(owned_by, pg_database, pid, owner), "the first to take the lease")
    second = cli.child("engine", "--store", cli.dsn, "--scheduler-only", "--poll-interval",
                       "0.2", env={ENV_OFFSET: str(offset)})
    cli.worker("w1", lease=3.0)
    await wait_until(lambda: len(list(out.iterdir())) >= 2, "some instances to run")
    assert await lease_owner(pg_database, pid) == owner  # not taken early
    first.send_signal(signal.SIGSTOP)
    paused = time.monotonic()
    try:
        took = f"{socket.gethostname()}:{second.pid}"
        for _ in range(900):
            if await lease_owner(pg_database, pid) == took:
                break
            await anyio.sleep(0.1)
        assert await lease_owner(pg_database, pid) == took
        assert time.monotonic() - paused < LEASE_SECONDS + 10  # a lease, not ten minutes
    finally:
        first.send_signal(signal.SIGCONT)
    runs = await off_loop(cli.wait_finished, pid, 6, 120)
    assert Counter(r["status"] for r in runs) == {"FINISHED": 6}
    files = list(out.iterdir())
    assert len(files) == 6 and all(f.read_text() == "ran\n" for f in files)
    first.send_signal(signal.SIGTERM)
    _, err = await off_loop(first.communicate, None, 60)
    assert f"the lease was taken over by {took}" in err, err


async def owned_by(dsn: str, pid: str, owner: str) -> bool:
    return await lease_owner(dsn, pid) == owner
