"""Worker processes on a shared PostgreSQL store (issue 14): a scheduler-only engine queues the
attempts, ``headrace worker`` processes claim and run them under leases with fencing."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.runtime.crashpoints import ENV
from tests.e2e.cli_kit import wait_for
from tests.e2e.worker_kit import PgCli, definition, shell_step

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(tmp_path: Path, pg_database: str) -> Iterator[PgCli]:
    kit = PgCli(tmp_path, dsn=pg_database)
    yield kit
    for out, err in kit.close():  # shown when a test fails
        print(out, err)


def test_two_workers_share_the_work_each_instance_runs_once(cli: PgCli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = definition(tmp_path / "p.json", shell_step(
        "Step", f"echo $HEADRACE_WORKER_ID >> {out}/#{{@scheduledStartTime}}.txt",
        maxActiveInstances="40"), instances=40)
    pid = cli.new_pipeline(path)
    cli.scheduler()
    cli.worker("w1", "--slots", "3")
    cli.worker("w2", "--slots", "3")
    runs = cli.wait_finished(pid, 40)
    assert Counter(r["status"] for r in runs) == {"FINISHED": 40}
    files = sorted(out.iterdir())
    assert len(files) == 40
    workers = Counter(f.read_text().strip() for f in files)
    assert all(len(f.read_text().splitlines()) == 1 for f in files)  # each ran once
    assert set(workers) == {"w1", "w2"}, workers
    # the worker that ran each instance is on the instance and its attempts
    assert {r["workerId"] for r in runs} == {"w1", "w2"}
    first = min(runs, key=lambda r: r["instanceId"])
    [described] = cli.json("describe-objects", "--store", cli.dsn, "--pipeline-id", pid,
                           "--object-ids", first["instanceId"])["pipelineObjects"]
    assert described["workerId"] == first["workerId"]
    assert [a["workerId"] for a in described["attemptList"]] == [first["workerId"]]


def _attempts(cli: PgCli, pid: str, instance_id: str) -> list[dict[str, Any]]:
    [described] = cli.json("describe-objects", "--store", cli.dsn, "--pipeline-id", pid,
                           "--object-ids", instance_id)["pipelineObjects"]
    return list(described["attemptList"])


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running_on(cli: PgCli, pid: str, worker_id: str) -> str:
    """Wait until ``worker_id`` runs an instance of ``pid``; its id."""
    found: list[str] = []

    def running() -> bool:
        found[:] = [r["instanceId"] for r in cli.runs(pid)
                    if r["status"] == "RUNNING" and r["workerId"] == worker_id]
        return bool(found)

    wait_for(running, 60, f"{worker_id} to run an instance")
    return found[0]


def test_kill_9_mid_shell_step_is_reaped_and_retried_elsewhere_once(cli: PgCli,
                                                                    tmp_path: Path) -> None:
    """The worker dies with its command running; the reaper puts the instance back once its
    lease lapses; the other worker kills the orphaned command (same host) and runs it again:
    the step's effect is there once, from the second worker."""
    out = tmp_path / "out.txt"
    path = definition(tmp_path / "p.json", shell_step(
        "Step", f'if [ "$HEADRACE_WORKER_ID" = w1 ]; then sleep 30.7; fi; '
                f"echo $HEADRACE_WORKER_ID >> {out}", maximumRetries="0"))
    pid = cli.new_pipeline(path)
    cli.scheduler()
    first = cli.worker("w1")
    instance = _running_on(cli, pid, "w1")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    cli.worker("w2")
    [run] = cli.wait_finished(pid, 1, timeout=90)
    assert run["status"] == "FINISHED" and run["workerId"] == "w2"
    attempts = _attempts(cli, pid, instance)
    assert [(a["status"], a["workerId"]) for a in attempts] == [
        ("INTERRUPTED", "w1"), ("FINISHED", "w2")]
    assert "lease of its worker lapsed" in attempts[0]["error"]
    assert out.read_text().splitlines() == ["w2"]
    wait_for(lambda: not any("sleep 30.7" in _cmdline(p) for p in Path("/proc").glob("[0-9]*")),
             10, "the orphaned command to be gone")


def test_a_worker_that_dies_before_its_first_heartbeat_is_reaped(cli: PgCli,
                                                                 tmp_path: Path) -> None:
    """The worker dies the moment its claim commits (crash point ``worker-claimed``: no
    attempt recorded, no renewal ever made); the lease, measured from the claim, lapses and
    the instance goes to the next worker within a lease and a reap interval."""
    path = definition(tmp_path / "p.json", shell_step("Step", "true"))
    pid = cli.new_pipeline(path)
    cli.scheduler()
    first = cli.worker("w1", lease=3.0, env={ENV: "worker-claimed"})
    assert first.wait(60) == -signal.SIGKILL
    died = time.monotonic()
    assert cli.runs(pid)[0]["status"] == "WAITING_FOR_RUNNER"
    cli.worker("w2", lease=3.0)
    [run] = cli.wait_finished(pid, 1, timeout=60)
    assert run["workerId"] == "w2" and run["attempts"] == 1  # w1 made no attempt
    # within the lease, a reap interval and the time this test takes to look (CLI calls)
    assert time.monotonic() - died < 3.0 + 2.0 + 15.0


def test_sigterm_drains_then_hands_back(cli: PgCli, tmp_path: Path) -> None:
    """SIGTERM: no new claims, a running attempt that outlives --drain-seconds is handed back
    (INTERRUPTED) and another worker runs it; exit code 130."""
    path = definition(tmp_path / "p.json", shell_step("Step", "sleep 20"))
    pid = cli.new_pipeline(path)
    cli.scheduler()
    first = cli.worker("w1", "--drain-seconds", "1")
    instance = _running_on(cli, pid, "w1")
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 130
    cli.worker("w2")
    _running_on(cli, pid, "w2")
    attempts = _attempts(cli, pid, instance)
    assert [(a["status"], a["workerId"]) for a in attempts] == [
        ("INTERRUPTED", "w1"), ("RUNNING", "w2")]
    workers = {w["workerId"]: w for w in cli.json("list-workers", "--store", cli.dsn)}
    assert set(workers) == {"w1", "w2"}
    assert set(workers["w1"]) == {"workerId", "host", "workerGroups", "slots", "running",
                                  "lastHeartbeat", "version"}
    assert workers["w2"]["running"] in (0, 1) and workers["w2"]["workerGroups"] == ["default"]


def test_a_worker_refuses_a_sqlite_store(cli: PgCli, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    refused = cli("worker", "--store", store, check=2)
    assert "SQLite store, which serves one process" in refused.stderr
    assert "PostgreSQL" in refused.stderr
    assert not (tmp_path / "s.db").exists()
    refused = cli("engine", "--store", store, "--scheduler-only", check=2)
    assert "headrace engine --scheduler-only needs a store" in refused.stderr


def _state(cli: PgCli, pid: str) -> str:
    described = cli.json("describe-pipelines", "--store", cli.dsn, "--pipeline-ids", pid)
    return str(described["pipelineDescriptionList"][0]["fields"]["@pipelineState"])


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_race_for_1000_instances_a_scheduler_plans_each_runs_once(
        cli: PgCli, tmp_path: Path, workers: int) -> None:
    """The whole path: a definition whose schedule makes 1,000 instances due at once, a
    scheduler-only engine that plans them and queues every one (its writes batched), and
    the workers racing for them (SKIP LOCKED claims). Each activity runs exactly once,
    nothing is lost, every worker got some, and the scheduler sees the end of the schedule
    (the pipeline FINISHED)."""
    out = tmp_path / "out"
    out.mkdir()
    path = definition(tmp_path / "p.json", shell_step(
        "Step", f"echo $HEADRACE_WORKER_ID >> {out}/#{{@scheduledStartTime}}.txt",
        maxActiveInstances="1000", maximumRetries="0"), instances=1000)
    pid = cli.new_pipeline(path)
    cli.scheduler("-q")
    for n in range(workers):
        cli.worker(f"w{n}", "--slots", "4", lease=10.0)
    runs = cli.wait_finished(pid, 1000, timeout=280)
    assert len(runs) == 1000
    assert Counter(r["status"] for r in runs) == {"FINISHED": 1000}
    assert all(r["attempts"] == 1 for r in runs)
    files = list(out.iterdir())
    assert len(files) == 1000  # nothing lost: one file per scheduled time
    lines = [f.read_text().splitlines() for f in files]
    assert all(len(ran) == 1 for ran in lines)  # each instance ran exactly once
    by_worker = Counter(ran[0] for ran in lines)
    assert set(by_worker) == {f"w{n}" for n in range(workers)}, by_worker
    assert {r["workerId"] for r in runs} == set(by_worker)
    wait_for(lambda: _state(cli, pid) == "FINISHED", 60, "the pipeline to finish")
