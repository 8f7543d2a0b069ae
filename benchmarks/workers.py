"""``python -m benchmarks.workers``: no-op instances through 1, 2 and 4 ``headrace worker``
processes on one PostgreSQL store (issue 14).

For each worker count: a fresh database; one pipeline whose activity is a no-op
(``ShellCommandActivity`` ``true``: exec'd without a shell); ``--instances`` instances
written straight into the store, ready and queued (the scheduler's part is not measured
here); then the workers are started and the clock runs until every instance is FINISHED.

Reported: instances per second; store transactions per instance (PostgreSQL's own commit
and rollback counters for the database, so every statement a worker sends is inside one of
them: the figure is a lower bound on statements); claim latency p50/p99 measured from this
process with every instance still queued (single-instance claims, each released again);
and the peak memory (RSS high-water mark) of one worker. Timing only: what the workers do is
tested in ``tests/e2e/test_workers.py``.

Run it inside the test servers' environment, e.g.
``/work/bin/ns NAME run .venv/bin/python -m benchmarks.workers --dsn postgresql://...``.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HEADRACE = str(Path(sys.executable).with_name("headrace"))


async def _sql(dsn: str, statement: str, *args: Any) -> list[Any]:
    import asyncpg

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
    rows = await _sql(dsn, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE "
                           "datname = current_database()")
    return int(rows[0][0])


async def _finished(dsn: str, pid: str) -> int:
    rows = await _sql(dsn, "SELECT count(*) FROM hr_instances WHERE pipeline_id = $1 AND "
                           "status = 'FINISHED'", pid)
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
    await asyncio.sleep(1.0)  # the statistics collector catches up
    before = await _counters(dsn)
    root = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    env = {**os.environ, "XDG_DATA_HOME": str(root)}
    started = time.perf_counter()
    # started and left running (the loop below polls the store meanwhile)
    procs = [subprocess.Popen([HEADRACE, "worker", "--store", dsn,  # noqa: ASYNC220
                               "--worker-id", f"b{n}",
                               "--slots", str(slots), "--poll-interval", "0.05", "-q"],
                              env=env) for n in range(workers)]
    peak = 0
    try:
        while (done := await _finished(dsn, pid)) < instances:
            peak = max([peak, *(_peak_rss_kib(p.pid) for p in procs)])
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        peak = max([peak, *(_peak_rss_kib(p.pid) for p in procs)])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    await asyncio.sleep(1.0)
    transactions = await _counters(dsn) - before
    await _sql(admin_dsn, f'DROP DATABASE IF EXISTS "bench_workers_{workers}" WITH (FORCE)')
    return {"workers": workers, "instances": done, "seconds": round(elapsed, 2),
            "instances_per_s": round(done / elapsed, 1),
            "transactions_per_instance": round(transactions / done, 2),
            "claim_p50_ms": round(p50 * 1000, 2), "claim_p99_ms": round(p99 * 1000, 2),
            "worker_peak_rss_mib": round(peak / 1024, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get(
        "HEADRACE_BENCH_PG", "postgresql://postgres@127.0.0.1:55432/postgres"),
        help="a PostgreSQL database to create the benchmark databases from")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--slots", type=int, default=8, help="slots per worker")
    parser.add_argument("--claim-samples", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"{'workers':>7} {'instances':>9} {'s':>8} {'inst/s':>8} {'tx/inst':>8} "
          f"{'claim p50 ms':>12} {'claim p99 ms':>12} {'worker RSS MiB':>14}")
    for count in (int(n) for n in args.workers.split(",")):
        r = asyncio.run(_one(args.dsn, count, args.instances, args.slots, args.claim_samples))
        print(f"{r['workers']:>7} {r['instances']:>9} {r['seconds']:>8} "
              f"{r['instances_per_s']:>8} {r['transactions_per_instance']:>8} "
              f"{r['claim_p50_ms']:>12} {r['claim_p99_ms']:>12} "
              f"{r['worker_peak_rss_mib']:>14}", flush=True)


if __name__ == "__main__":
    main()
