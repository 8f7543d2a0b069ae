"""Worker processes on a shared PostgreSQL store (issue 14): a scheduler-only engine queues the
attempts, ``headrace worker`` processes claim and run them under leases with fencing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.worker_kit import PgCli, definition, shell_step

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(tmp_path: Path, pg_database: str) -> Iterator[PgCli]:
    kit = PgCli(tmp_path, dsn=pg_database)
    yield kit
    kit.close()


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
