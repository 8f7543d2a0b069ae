"""The crash test: ``kill -9`` of ``headrace run`` while an activity runs; the same command
again resumes from the store, does not repeat finished work (side effects counted in files),
stops the command the dead process left behind, and finishes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.e2e.cli_kit import Cli, alive, by_object, ref, shell, wait_for, write_definition


def test_kill_9_then_the_same_command_resumes_and_finishes(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    resumed = tmp_path / "resumed"
    definition = write_definition(
        tmp_path / "p.json",
        shell("First", f"echo run >> {tmp_path}/first_runs"),
        shell("Second", f"echo $$ >> {tmp_path}/second_pids; echo run >> {tmp_path}/"
                        f"second_runs; if [ -f {resumed} ]; then exit 0; fi; sleep 60",
              dependsOn=ref("First")),
        shell("Third", f"echo run >> {tmp_path}/third_runs", dependsOn=ref("Second")),
        shell("Other", f"echo run >> {tmp_path}/other_runs"),
        end="2024-01-01T00:30:00")
    pids = tmp_path / "second_pids"
    proc = cli.spawn("run", str(definition), "--output", "json")
    # both intervals' Second are running (maxActiveInstances defaults to 5)
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, what="Second")
    orphans = [int(p) for p in pids.read_text().split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    assert all(alive(p) for p in orphans)  # the dead engine could not stop them

    listed = cli.json("list-runs", "--pipeline-id", _pipeline_id(cli, tmp_path))
    statuses = {r["instanceId"]: r["status"] for r in listed["runs"]}
    assert list(statuses.values()).count("RUNNING") == 2

    resumed.touch()
    out = cli.run(definition)
    assert all(i["status"] == "FINISHED" for i in out["instances"]), out
    assert not any(alive(p) for p in orphans)  # recovery killed the orphaned commands
    # finished work was not repeated; the interrupted attempt was retried and counts
    assert (tmp_path / "first_runs").read_text().split() == ["run"] * 2
    assert (tmp_path / "other_runs").read_text().split() == ["run"] * 2
    assert (tmp_path / "second_runs").read_text().split() == ["run"] * 4
    assert (tmp_path / "third_runs").read_text().split() == ["run"] * 2
    for second in (i for i in out["instances"] if i["objectId"] == "Second"):
        assert second["attempts"] == 2
        described = cli.json("describe-objects", "--pipeline-id", out["pipelineId"],
                             "--object-ids", second["instanceId"])
        assert [a["status"] for a in described["pipelineObjects"][0]["attemptList"]] == [
            "INTERRUPTED", "FINISHED"]
    # and a third run has nothing left to do
    again = cli.run(definition)
    assert by_object(again)["First"]["attempts"] == 1
    assert (tmp_path / "first_runs").read_text().split() == ["run"] * 2


def _pipeline_id(cli: Cli, tmp_path: Path) -> str:
    listed = json.loads(cli("list-pipelines", "--output", "json").stdout)
    [entry] = listed["pipelineIdList"]
    return str(entry["id"])
