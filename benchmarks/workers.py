"""``python -m benchmarks.workers``: no-op instances through 1, 2 and 4 ``headrace worker``
processes on one PostgreSQL store, and a scheduler-only engine planning and queueing them
(issue 14).

Workers, for each worker count: a fresh database; one pipeline whose activity is a no-op
(``ShellCommandActivity`` ``true``: exec'd without a shell, so one process spawn each);
``--instances`` instances written straight into the store, ready and queued; then the
workers are started and the clock runs until every instance is FINISHED. Reported:

- instances per second;
- store statements per instance: ``pg_stat_statements`` calls in the benchmark database
  (BEGIN and COMMIT count; the benchmark's own polls, marked, do not), when the server loads
  it (the test servers do where the module is installed); else ``-``; and transactions per
  instance from PostgreSQL's commit and rollback counters (the polls subtracted);
- claim latency p50/p99 measured from this process with every instance still queued
  (single-instance claims, each released again), before the workers start;
- CPU per instance: the workers' (user + system, their children included: the spawned
  ``true``) and PostgreSQL's (every backend of the server), from ``/proc``;
- the peak memory (RSS high-water mark) of one worker.

Scheduler: a definition whose schedule makes ``--instances`` instances due at once (a
backfill, ``maxActiveInstances`` as large), activated; then the seconds a
``headrace engine --scheduler-only`` takes from its start until every instance is queued for
workers (no worker runs), and its peak memory.

Timing only: what the workers and the scheduler do is tested in ``tests/e2e/test_workers.py``.
Run it inside the test servers' environment, e.g.
``/work/bin/ns NAME run .venv/bin/python -m benchmarks.workers``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HEADRACE = str(Path(sys.executable).with_name("headrace"))
#: marks the benchmark's own statements, left out of the statement counts
MARK = "/* bench */"


#: statements this process sent, per database (left out of the transaction counts)
_SENT: Counter[str] = Counter()


async def _sql(dsn: str, statement: str, *args: Any) -> list[Any]:
    import asyncpg

    _SENT[dsn] += 1
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


async def _fresh_database(admin_dsn: str, name: str) -> str:
    await _sql(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _sql(admin_dsn, f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def fill_queue(dsn: str, instances: int, command: str = "true") -> str:
    """A pipeline of one ShellCommandActivity running ``command``, with ``instances``
    instances in the store, ready and queued for the default group. Its id."""
    from engine.service import PipelineService
    from engine.store import InstanceRecord, Status, open_store
    from engine.store.queue import DEFAULT_GROUP

    async with open_store(dsn) as store:
        record = await PipelineService(store).create("bench", f"bench-{instances}")
        body = {"objects": [
            {"id": "Default", "name": "Default", "scheduleType": "cron",
             "schedule": {"ref": "S"}},
            {"id": "S", "name": "S", "type": "Schedule", "period": "15 minutes",
             "startDateTime": "2020-01-01T00:00:00"},
            {"id": "A", "name": "A", "type": "ShellCommandActivity", "command": command,
             "maximumRetries": "0"}]}
        version = await store.put_definition(record.id, body)
        await store.update_pipeline(record.id, active_version=version,
                                    first_activated_at=datetime(2020, 1, 1, tzinfo=UTC))
        t0 = datetime(2020, 1, 1, tzinfo=UTC)
        batch = []
        for i in range(instances):
            start = t0 + timedelta(minutes=15 * i)
            batch.append(InstanceRecord(
                pipeline_id=record.id, id=f"@A_{start.strftime('%Y-%m-%dT%H:%M:%S')}",
                object_id="A", type="ShellCommandActivity", category="activity",
                scheduled_start=start, scheduled_end=start + timedelta(minutes=15),
                eligible_at=start, status=Status.WAITING_FOR_RUNNER, version=version,
                worker_group=DEFAULT_GROUP, queued_at=0.0))
        await store.add_instances(batch)
        return record.id


def scheduled_definition(instances: int, command: str = "true") -> dict[str, Any]:
    """A definition whose cron schedule makes ``instances`` instances of one
    ShellCommandActivity running ``command``, all due at once (a backfill), with
    ``maxActiveInstances`` high enough that the scheduler may queue every one of them."""
    start = datetime(2020, 1, 1)
    end = start + timedelta(minutes=15 * instances)
    return {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "cron",
         "schedule": {"ref": "S"}},
        {"id": "S", "name": "S", "type": "Schedule", "period": "15 minutes",
         "startDateTime": start.isoformat(), "endDateTime": end.isoformat()},
        {"id": "A", "name": "A", "type": "ShellCommandActivity", "command": command,
         "maximumRetries": "0", "maxActiveInstances": str(instances)}]}


async def activate_scheduled(dsn: str, instances: int, command: str = "true") -> str:
    """Create and activate (with backfill) a pipeline of :func:`scheduled_definition`: its
    instances are planned in the store, WAITING_ON_DEPENDENCIES, for a scheduler. Its id."""
    import json

    from engine.service import PipelineService
    from engine.store import open_store

    async with open_store(dsn) as store:
        service = PipelineService(store)
        record = await service.create("bench-scheduled", f"bench-scheduled-{instances}")
        check = service.check_definition(
            "bench.json", text=json.dumps(scheduled_definition(instances, command)))
        await service.put_definition(record.id, check)
        await service.activate(record.id, allow_backfill=True, max_instances=instances)
        return record.id


async def _queued(dsn: str, pid: str) -> int:
    """Instances of ``pid`` handed to workers (queued, held or already ended by one)."""
    rows = await _sql(dsn, f"{MARK} SELECT count(*) FROM hr_instances WHERE pipeline_id = $1 "
                           "AND (queued_at IS NOT NULL OR worker_id IS NOT NULL OR status IN "
                           "('FINISHED', 'FAILED'))", pid)
    return int(rows[0][0])


async def _scheduler_half(admin_dsn: str, instances: int) -> dict[str, Any]:
    """Seconds for a ``headrace engine --scheduler-only`` to take a pipeline whose
    ``instances`` instances are all due and queue every one of them (no worker running)."""
    dsn = await _fresh_database(admin_dsn, "bench_scheduler")
    pid = await activate_scheduled(dsn, instances)
    root = Path(tempfile.mkdtemp(prefix="bench-scheduler-"))
    env = {**os.environ, "XDG_DATA_HOME": str(root)}
    started = time.perf_counter()
    proc = subprocess.Popen([HEADRACE, "engine", "--store", dsn, "--scheduler-only",  # noqa: ASYNC220
                             "--poll-interval", "0.2", "-q"], env=env)
    peak = 0
    try:
        while (done := await _queued(dsn, pid)) < instances:
            peak = max(peak, _peak_rss_kib(proc.pid))
            if proc.poll() is not None:
                raise SystemExit(f"the scheduler exited ({proc.returncode})")
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        peak = max(peak, _peak_rss_kib(proc.pid))
    finally:
        proc.terminate()
        proc.wait(60)
    await _sql(admin_dsn, 'DROP DATABASE IF EXISTS "bench_scheduler" WITH (FORCE)')
    return {"instances": done, "seconds": round(elapsed, 2),
            "instances_per_s": round(done / elapsed, 1),
            "scheduler_peak_rss_mib": round(peak / 1024, 1)}


async def _claim_latency(dsn: str, samples: int) -> tuple[float, float]:
    """p50 and p99 of one-instance claims with everything still queued (each released)."""
    from engine.store import open_store
    from engine.store.queue import DEFAULT_GROUP, claim_one, release
    from engine.store.records import Fence

    times: list[float] = []
    async with open_store(dsn) as store:
        for _ in range(samples):
            started = time.perf_counter()
            rec = await claim_one(store, "bench-claimer", DEFAULT_GROUP, 60.0)
            times.append(time.perf_counter() - started)
            assert rec is not None
            await release(store, rec.pipeline_id, rec.id, Fence("bench-claimer",
                                                                rec.lease_version),
                          requeue_in=0.0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


async def _counters(dsn: str) -> int:
    rows = await _sql(dsn, f"{MARK} SELECT xact_commit + xact_rollback FROM pg_stat_database "
                           "WHERE datname = current_database()")
    return int(rows[0][0])


async def _statements_on(dsn: str) -> bool:
    """Whether the server counts statements (pg_stat_statements loaded); resets the counts."""
    loaded = await _sql(dsn, f"{MARK} SELECT current_setting('shared_preload_libraries')")
    if "pg_stat_statements" not in str(loaded[0][0]):
        return False
    await _sql(dsn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    await _sql(dsn, f"{MARK} SELECT pg_stat_statements_reset()")
    return True


async def _statements(dsn: str) -> int:
    """Statements run in this database since the reset, the benchmark's own left out."""
    rows = await _sql(dsn, f"{MARK} SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                           "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = "
                           f"current_database()) AND query NOT LIKE '%{MARK}%'")
    return int(rows[0][0])


def _cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of a process (with its waited-for children's)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2:].split()[1])


def _family(parent: int) -> list[int]:
    """``parent`` and every process whose parent it is."""
    return [parent, *(int(e.name) for e in Path("/proc").glob("[0-9]*")
                      if _parent(int(e.name)) == parent)]


async def _server_pids(dsn: str) -> list[int]:
    """The PostgreSQL server's processes: the postmaster (the parent of this connection's
    backend, read while the connection is open) and all its children."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        backend = int(await conn.fetchval(f"{MARK} SELECT pg_backend_pid()"))
        return _family(_parent(backend))
    finally:
        _SENT[dsn] += 1
        await conn.close()


async def _registered(dsn: str) -> int:
    rows = await _sql(dsn, f"{MARK} SELECT count(*) FROM hr_workers")
    return int(rows[0][0])


async def _finished(dsn: str, pid: str) -> int:
    rows = await _sql(dsn, f"{MARK} SELECT count(*) FROM hr_instances WHERE pipeline_id = $1 "
                           "AND status = 'FINISHED'", pid)
    return int(rows[0][0])


def _peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def _one(admin_dsn: str, workers: int, instances: int, slots: int,
               samples: int) -> dict[str, Any]:
    dsn = await _fresh_database(admin_dsn, f"bench_workers_{workers}")
    pid = await fill_queue(dsn, instances)
    p50, p99 = await _claim_latency(dsn, samples)
    counting = await _statements_on(dsn)
    await asyncio.sleep(1.0)  # the statistics collector catches up
    before = await _counters(dsn)
    sent = _SENT[dsn]
    root = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    env = {**os.environ, "XDG_DATA_HOME": str(root)}
    started = time.perf_counter()
    # started and left running (the loop below polls the store meanwhile)
    procs = [subprocess.Popen([HEADRACE, "worker", "--store", dsn,  # noqa: ASYNC220
                               "--worker-id", f"b{n}",
                               "--slots", str(slots), "--poll-interval", "0.05", "-q"],
                              env=env) for n in range(workers)]
    peak = 0
    worker_cpu = 0.0
    try:
        # the clock and the CPU counts start once every worker is up (imports and store
        # opened): the figures are the sustained rate, not the processes' start-up
        for _ in range(2400):  # at most two minutes
            if await _registered(dsn) >= workers:
                break
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        early = await _finished(dsn, pid)  # run before the last worker was up
        startup_cpu = sum(_cpu_seconds(p.pid, children=True) for p in procs)
        server_before = {p: _cpu_seconds(p) for p in await _server_pids(dsn)}
        while (done := await _finished(dsn, pid)) < instances:
            peak = max([peak, *(_peak_rss_kib(p.pid) for p in procs)])
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        peak = max([peak, *(_peak_rss_kib(p.pid) for p in procs)])
        worker_cpu = sum(_cpu_seconds(p.pid, children=True) for p in procs) - startup_cpu
        server_cpu = sum(_cpu_seconds(p) - server_before.get(p, 0.0)
                         for p in await _server_pids(dsn))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    statements = await _statements(dsn) if counting else None
    await asyncio.sleep(1.0)
    transactions = await _counters(dsn) - before - (_SENT[dsn] - sent)
    await _sql(admin_dsn, f'DROP DATABASE IF EXISTS "bench_workers_{workers}" WITH (FORCE)')
    return {"workers": workers, "instances": done, "seconds": round(elapsed, 2),
            "instances_per_s": round((done - early) / elapsed, 1),
            "statements_per_instance": None if statements is None else round(
                statements / done, 2),
            "transactions_per_instance": round(transactions / done, 2),
            "claim_p50_ms": round(p50 * 1000, 2), "claim_p99_ms": round(p99 * 1000, 2),
            "worker_cpu_ms_per_instance": round(worker_cpu / (done - early) * 1000, 2),
            "postgres_cpu_ms_per_instance": round(server_cpu / (done - early) * 1000, 2),
            "worker_peak_rss_mib": round(peak / 1024, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get(
        "HEADRACE_BENCH_PG", os.environ.get("HEADRACE_TEST_PG_DSN",
                                            "postgresql://postgres@127.0.0.1:55432/postgres")),
        help="a PostgreSQL database to create the benchmark databases from")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--slots", type=int, default=8, help="slots per worker")
    parser.add_argument("--claim-samples", type=int, default=200)
    parser.add_argument("--no-scheduler", action="store_true",
                        help="leave out the scheduler's half")
    args = parser.parse_args(argv)
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs",
          flush=True)
    print(f"{'workers':>7} {'instances':>9} {'s':>7} {'inst/s':>7} {'stmt/inst':>9} "
          f"{'tx/inst':>7} {'claim p50 ms':>12} {'claim p99 ms':>12} {'worker ms':>9} "
          f"{'pg ms':>6} {'RSS MiB':>7}", flush=True)
    for count in (int(n) for n in args.workers.split(",") if n):
        r = asyncio.run(_one(args.dsn, count, args.instances, args.slots, args.claim_samples))
        stmts = r["statements_per_instance"]
        print(f"{r['workers']:>7} {r['instances']:>9} {r['seconds']:>7} "
              f"{r['instances_per_s']:>7} {'-' if stmts is None else stmts:>9} "
              f"{r['transactions_per_instance']:>7} {r['claim_p50_ms']:>12} "
              f"{r['claim_p99_ms']:>12} {r['worker_cpu_ms_per_instance']:>9} "
              f"{r['postgres_cpu_ms_per_instance']:>6} {r['worker_peak_rss_mib']:>7}",
              flush=True)
    if not args.no_scheduler:
        r = asyncio.run(_scheduler_half(args.dsn, args.instances))
        print(f"scheduler-only engine: {r['instances']} instances due at once planned and "
              f"queued in {r['seconds']} s ({r['instances_per_s']}/s), peak RSS "
              f"{r['scheduler_peak_rss_mib']} MiB", flush=True)
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)


if __name__ == "__main__":
    main()
