"""The pipeline lifecycle against a store, as the AWS CLI names it: create -> put -> activate
-> ``headrace engine`` runs it -> list-runs / describe-objects / logs show what happened;
deactivate (with and without --cancel-active), re-activate, delete."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli_kit import Cli, alive, ref, shell, stop, wait_for, write_definition


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def engine(cli: Cli) -> Iterator[subprocess.Popen[str]]:
    proc = cli.spawn("engine", "--store", cli.store, "--poll-interval", "0.2")
    yield proc
    _, err = stop(proc)
    print(f"engine stderr (exit {proc.returncode}):\n{err}")  # pytest shows it on a failure


def runs(cli: Cli, pid: str) -> dict[str, dict[str, Any]]:
    return {r["objectId"]: r for r in cli.json("list-runs", "--pipeline-id", pid)["runs"]}


def new_pipeline(cli: Cli, definition: Path, name: str = "demo") -> str:
    pid = cli.json("create-pipeline", "--name", name, "--unique-id", f"token-{name}")[
        "pipelineId"]
    put = cli.json("put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition",
                   str(definition))
    assert put["errored"] is False and put["version"] == 1
    return str(pid)


def test_create_put_activate_engine_inspect(cli: Cli, tmp_path: Path,
                                            engine: subprocess.Popen[str]) -> None:
    definition = write_definition(
        tmp_path / "p.json",
        shell("Hello", "echo hello from #{@scheduledStartTime}"),
        shell("Broken", "echo broken >&2; exit 4", maximumRetries="0", dependsOn=ref("Hello")),
        end="2024-01-01T00:30:00")
    pid = new_pipeline(cli, definition)
    assert cli.json("create-pipeline", "--name", "again", "--unique-id", "token-demo")[
        "pipelineId"] == pid  # idempotent
    stored = json.loads(cli("get-pipeline-definition", "--pipeline-id", pid).stdout)
    assert [o["id"] for o in stored["objects"]] == ["Default", "S", "Hello", "Broken"]

    refused = cli("activate-pipeline", "--pipeline-id", pid, check=2)
    assert "--allow-backfill" in refused.stderr
    activated = cli.json("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    assert activated["instances"] == 4 and activated["windowStart"] == "2024-01-01T00:00:00"

    def settled() -> bool:
        statuses = [r["status"] for r in cli.json("list-runs", "--pipeline-id", pid)["runs"]]
        return statuses.count("FINISHED") == 2 and statuses.count("FAILED") == 2

    wait_for(settled, timeout=60, what="the engine to run the pipeline")
    failed = cli.json("list-runs", "--pipeline-id", pid, "--status", "failed")["runs"]
    assert [r["objectId"] for r in failed] == ["Broken", "Broken"]
    assert all(r["attempts"] == 1 for r in failed)
    scheduled = cli.json("list-runs", "--pipeline-id", pid, "--schedule-interval",
                         "2024-01-01T00:15:00,2024-01-01T00:30:00")["runs"]
    assert {r["objectId"] for r in scheduled} == {"Hello", "Broken"}

    hello_id = "@Hello_2024-01-01T00:15:00"
    obj = cli.json("describe-objects", "--pipeline-id", pid, "--object-ids", hello_id,
                   "--object-ids", "@Broken_2024-01-01T00:15:00")["pipelineObjects"]
    hello, broken = obj
    assert hello["status"] == "FINISHED" and hello["attempts"] == 1
    [attempt] = hello["attemptList"]
    assert attempt["status"] == "FINISHED" and attempt["exitCode"] == 0
    assert Path(attempt["log"], "stdout").read_text() == "hello from 2024-01-01T00:15:00\n"
    assert broken["status"] == "FAILED"
    assert "exited with code 4: broken" in broken["error"]
    assert broken["attemptList"][0]["exitCode"] == 4
    component = cli.json("describe-objects", "--pipeline-id", pid, "--object-ids", "Hello")
    assert component["pipelineObjects"][0]["sphere"] == "COMPONENT"
    log_text = cli("logs", hello_id, "--pipeline-id", pid).stdout
    assert "hello from 2024-01-01T00:15:00" in log_text and "attempt 1 of" in log_text

    wait_for(lambda: _state(cli, pid) == "FINISHED", timeout=30, what="FINISHED")
    engine.send_signal(signal.SIGTERM)
    engine.communicate(timeout=30)
    assert engine.returncode == 130


def _state(cli: Cli, pid: str) -> str:
    described = cli.json("describe-pipelines", "--pipeline-ids", pid)
    return str(described["pipelineDescriptionList"][0]["fields"]["@pipelineState"])


def test_deactivate_cancel_active_cancels_running_work(cli: Cli, tmp_path: Path,
                                                       engine: subprocess.Popen[str]) -> None:
    pidfile = tmp_path / "pid"
    definition = write_definition(tmp_path / "p.json",
                                  shell("Hang", f"echo $$ > {pidfile}; sleep 60"))
    pid = new_pipeline(cli, definition)
    cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "", timeout=30,
             what="the command to start")
    child = int(pidfile.read_text())
    out = cli.json("deactivate-pipeline", "--pipeline-id", pid)
    assert out["state"] == "DEACTIVATING"
    wait_for(lambda: _state(cli, pid) == "INACTIVE", timeout=30, what="INACTIVE")
    hang = runs(cli, pid)["Hang"]
    assert hang["status"] == "CANCELED" and "deactivated" in hang["error"]
    assert not alive(child)


def test_deactivate_without_cancel_lets_running_finish_then_reactivate_resumes(
        cli: Cli, tmp_path: Path, engine: subprocess.Popen[str]) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    definition = write_definition(
        tmp_path / "p.json",
        # Slow holds until the test lets it go, after the deactivation was asked for: the
        # order is the test's, not a race against how fast the CLI starts
        shell("Slow", f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done"),
        shell("Next", f"echo next >> {tmp_path}/next", dependsOn=ref("Slow")))
    pid = new_pipeline(cli, definition)
    cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    wait_for(started.exists, timeout=30, what="Slow to start")
    cli("deactivate-pipeline", "--pipeline-id", pid, "--no-cancel-active")
    release.touch()
    wait_for(lambda: _state(cli, pid) == "INACTIVE", timeout=30, what="INACTIVE")
    state = runs(cli, pid)
    assert state["Slow"]["status"] == "FINISHED"  # allowed to finish
    assert state["Next"]["status"] in ("WAITING_ON_DEPENDENCIES", "WAITING_FOR_RUNNER")
    assert not (tmp_path / "next").exists()  # nothing new started

    cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    wait_for(lambda: runs(cli, pid)["Next"]["status"] == "FINISHED", timeout=30,
             what="Next after re-activation")
    assert (tmp_path / "next").read_text() == "next\n"
    assert runs(cli, pid)["Slow"]["attempts"] == 1


def test_set_status_while_the_engine_runs_goes_through_the_store(
        cli: Cli, tmp_path: Path, engine: subprocess.Popen[str]) -> None:
    pidfile = tmp_path / "pid"
    definition = write_definition(
        tmp_path / "p.json",
        shell("Hang", f"echo $$ > {pidfile}; sleep 60"),
        shell("After", f"touch {tmp_path}/after", dependsOn=ref("Hang")))
    pid = new_pipeline(cli, definition)
    cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "", timeout=30,
             what="Hang to start")
    out = cli.json("set-status", "--pipeline-id", pid, "--object-ids",
                   "@Hang_2024-01-01T00:00:00", "--status", "MARK_FINISHED")
    assert "sent to" in out["results"][0]  # the engine holds the pipeline: a request for it
    wait_for(lambda: (tmp_path / "after").exists(), timeout=30, what="After")
    state = runs(cli, pid)
    assert state["Hang"]["status"] == "FINISHED"
    assert not alive(int(pidfile.read_text()))


def test_delete_pipeline_and_errors_for_unknown_ids(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(tmp_path / "p.json", shell("A", "true"))
    pid = new_pipeline(cli, definition)
    assert [p["id"] for p in cli.json("list-pipelines")["pipelineIdList"]] == [pid]
    assert cli.json("delete-pipeline", "--pipeline-id", pid) == {"pipelineId": pid,
                                                                 "deleted": True}
    assert cli.json("list-pipelines")["pipelineIdList"] == []
    missing = cli("describe-pipelines", "--pipeline-ids", pid, check=1)
    assert f"no pipeline {pid!r}" in missing.stderr
    cli("activate-pipeline", "--pipeline-id", "df-nothing", check=1)


def test_engine_sigterm_interrupts_attempts_and_a_new_engine_retries_them(
        cli: Cli, tmp_path: Path) -> None:
    started = tmp_path / "started"
    command = (f"if [ -f {started} ]; then echo again >> {tmp_path}/again; exit 0; fi; "
               f"echo $$ > {started}; sleep 60")
    definition = write_definition(tmp_path / "p.json", shell("Long", command))
    pid = new_pipeline(cli, definition)
    cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    first = cli.spawn("engine", "--store", cli.store, "--poll-interval", "0.2")
    try:
        wait_for(lambda: started.exists() and started.read_text().strip() != "", timeout=30,
                 what="Long to start")
        child = int(started.read_text())
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 130
    assert not alive(child)
    long_ = runs(cli, pid)["Long"]
    assert long_["status"] == "WAITING_FOR_RUNNER"
    attempts = cli.json("describe-objects", "--pipeline-id", pid, "--object-ids",
                        long_["instanceId"])["pipelineObjects"][0]["attemptList"]
    assert [a["status"] for a in attempts] == ["INTERRUPTED"]
    second = cli.spawn("engine", "--store", cli.store, "--poll-interval", "0.2")
    try:
        wait_for(lambda: runs(cli, pid)["Long"]["status"] == "FINISHED", timeout=30,
                 what="the retry")
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)
    assert runs(cli, pid)["Long"]["attempts"] == 2
    assert (tmp_path / "again").read_text() == "again\n"
