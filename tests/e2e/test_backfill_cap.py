"""A backfill is explicit and bounded (RELIABILITY case 21): `run` and `activate-pipeline`
refuse a window that plans more instances than --max-instances, naming the cap."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.cli_kit import Cli

DEFINITION = {"objects": [
    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Every15"},
     "workerGroup": "local"},
    {"id": "Every15", "type": "Schedule", "period": "15 minutes",
     "startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-01-01T05:00:00"},
    {"id": "Tick", "type": "ShellCommandActivity", "command": "true"},
]}


def test_run_refuses_a_window_over_the_cap_and_runs_it_when_raised(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    path = tmp_path / "ticks.json"
    path.write_text(json.dumps(DEFINITION))
    refused = cli("run", str(path), "--max-instances", "10", check=2)
    assert "more than 10 instances" in refused.stderr and "--max-instances" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = cli.run(path, "--max-instances", "20")
    assert len(done["instances"]) == 20
    assert {i["status"] for i in done["instances"]} == {"FINISHED"}


def test_activate_pipeline_refuses_a_window_over_the_cap(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    path = tmp_path / "ticks.json"
    path.write_text(json.dumps(DEFINITION))
    pid = cli("create-pipeline", "--name", "ticks", "--unique-id", "t1").stdout.strip()
    cli("put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition", str(path))
    refused = cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill",
                  "--max-instances", "5", check=2)
    assert "more than 5 instances" in refused.stderr
    assert cli.json("list-runs", "--pipeline-id", pid)["runs"] == []
