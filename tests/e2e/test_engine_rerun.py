"""A rerun of a pipeline whose schedule ended, under ``headrace engine`` (issue 11, defect 1):
``set-status --status RERUN`` used to leave the instance WAITING_ON_DEPENDENCIES for good, also
after restarting the engine. The engine carries it out, and the pipeline is SCHEDULED until
the rerun instances end, then FINISHED again."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli_kit import Cli, ref, shell, stop, wait_for, write_definition


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def start_engine(cli: Cli) -> subprocess.Popen[str]:
    return cli.spawn("engine", "--store", cli.store, "--poll-interval", "0.2")


@pytest.fixture
def engine(cli: Cli) -> Iterator[subprocess.Popen[str]]:
    proc = start_engine(cli)
    yield proc
    stop(proc)


def state(cli: Cli, pid: str) -> str:
    described = cli.json("describe-pipelines", "--pipeline-ids", pid)
    return str(described["pipelineDescriptionList"][0]["fields"]["@pipelineState"])


def runs(cli: Cli, pid: str) -> dict[str, dict[str, Any]]:
    return {r["objectId"]: r for r in cli.json("list-runs", "--pipeline-id", pid)["runs"]}


def finished_pipeline(cli: Cli, tmp_path: Path) -> str:
    """A one-interval pipeline of the past, run to its end by an engine: FINISHED."""
    log = tmp_path / "ran.txt"
    definition = write_definition(
        tmp_path / "p.json",
        shell("Extract", f"echo extract >> {log}"),
        shell("Load", f"echo load >> {log}; if [ -f {tmp_path}/broken ]; then "
                      f"while [ ! -f {tmp_path}/go ]; do sleep 0.1; done; exit 3; fi",
              dependsOn=ref("Extract"), maximumRetries="0"))
    pid = str(cli.json("create-pipeline", "--name", "nightly", "--unique-id", "n1")[
        "pipelineId"])
    cli("put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition",
        str(definition))
    cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    return pid


def test_a_rerun_of_a_finished_pipeline_runs_under_the_engine(
        cli: Cli, tmp_path: Path, engine: subprocess.Popen[str]) -> None:
    pid = finished_pipeline(cli, tmp_path)
    wait_for(lambda: state(cli, pid) == "FINISHED", timeout=60, what="the schedule to end")
    assert (tmp_path / "ran.txt").read_text() == "extract\nload\n"
    (tmp_path / "broken").touch()  # the rerun of Load waits for "go", then fails
    out = cli.json("set-status", "--pipeline-id", pid, "--object-ids",
                   "@Load_2024-01-01T00:00:00", "--status", "RERUN")
    assert out["results"] == ["RERUN @Load_2024-01-01T00:00:00"]
    wait_for(lambda: runs(cli, pid)["Load"]["status"] == "RUNNING", timeout=60,
             what="the engine to carry the rerun out")
    assert state(cli, pid) == "SCHEDULED"  # until the rerun instance ends
    (tmp_path / "go").touch()
    wait_for(lambda: runs(cli, pid)["Load"]["status"] == "FAILED", timeout=60,
             what="the rerun to end")
    wait_for(lambda: state(cli, pid) == "FINISHED", timeout=30, what="FINISHED again")
    load = runs(cli, pid)["Load"]
    assert load["attempts"] == 2 and "exited with code 3" in load["error"]
    assert runs(cli, pid)["Extract"]["attempts"] == 1  # only what was rerun ran again
    assert (tmp_path / "ran.txt").read_text() == "extract\nload\nload\n"


def test_a_rerun_asked_while_no_engine_runs_is_carried_out_by_the_next_one(
        cli: Cli, tmp_path: Path) -> None:
    pid = finished_pipeline(cli, tmp_path)
    first = start_engine(cli)
    try:
        wait_for(lambda: state(cli, pid) == "FINISHED", timeout=60, what="the schedule's end")
    finally:
        stop(first)
    cli("set-status", "--pipeline-id", pid, "--object-ids", "@Extract_2024-01-01T00:00:00",
        "--status", "RERUN")
    assert runs(cli, pid)["Extract"]["status"] == "WAITING_ON_DEPENDENCIES"
    assert state(cli, pid) == "SCHEDULED"
    second = start_engine(cli)
    try:
        wait_for(lambda: state(cli, pid) == "FINISHED"
                 and runs(cli, pid)["Extract"]["status"] == "FINISHED", timeout=60,
                 what="the restarted engine to run the rerun")
    finally:
        stop(second)
    assert runs(cli, pid)["Extract"]["attempts"] == 2
    assert (tmp_path / "ran.txt").read_text() == "extract\nload\nextract\n"
