"""A window whose end is not after its start is the same usage error, exit 2, on every command
that takes one (issue 11, defect 6): ``run`` used to print "no instances" and exit 0, a green
no-op in cron."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli_kit import Cli, shell, write_definition

LATE, EARLY = "2024-01-03T00:00:00", "2024-01-01T00:00:00"


@pytest.fixture
def definition(tmp_path: Path) -> Path:
    return write_definition(tmp_path / "p.json", shell("A", f"touch {tmp_path}/ran"),
                            period="1 day", start=EARLY, end="2024-01-05T00:00:00")


@pytest.mark.parametrize("command", ["run", "plan"])
@pytest.mark.parametrize("end", [EARLY, LATE])  # swapped, and empty
def test_run_and_plan_refuse_an_end_not_after_the_start(tmp_path: Path, definition: Path,
                                                        command: str, end: str) -> None:
    cli = Cli(tmp_path)
    result = cli(command, str(definition), "--start", LATE, "--end", end, check=2)
    assert result.stdout == ""
    assert f"Invalid value for --end: {end} is not after --start {LATE}" in result.stderr
    body = json.loads(cli(command, str(definition), "--start", LATE, "--end", end,
                          "--output", "json", check=2).stdout)
    assert body["error"]["kind"] == "usage" and body["error"]["exitCode"] == 2
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / "state").exists()  # refused before any store was opened


@pytest.mark.parametrize("flag", ["--schedule-interval", "--start-interval"])
def test_list_runs_refuses_a_swapped_interval(tmp_path: Path, definition: Path,
                                              flag: str) -> None:
    cli = Cli(tmp_path)
    out = cli.run(definition, "--start", EARLY, "--end", LATE)
    assert [i["status"] for i in out["instances"]] == ["FINISHED", "FINISHED"]
    pid = out["pipelineId"]
    result = cli("list-runs", "--pipeline-id", pid, flag, f"{LATE},{EARLY}", check=2)
    assert f"{EARLY} is not after {flag} start {LATE} (swapped?)" in result.stderr
    body = cli.json("list-runs", "--pipeline-id", pid, flag, f"{LATE},{EARLY}", check=2)
    assert body["error"]["kind"] == "usage"
    # the same interval the right way round lists both runs
    runs = cli.json("list-runs", "--pipeline-id", pid, "--schedule-interval",
                    f"{EARLY},{LATE}")["runs"]
    assert len(runs) == 2
