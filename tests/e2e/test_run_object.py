"""``headrace run DEF --object ID --at TS`` (issue 11, "Run one object"): one instance, now,
its dependencies ignored (or run first with ``--with-upstream``), its output printed, nothing
recorded in the store, as ``airflow tasks test`` does for debugging."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli_kit import Cli, ref, shell, write_definition

AT = "2024-01-01T00:15:00"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def definition(tmp_path: Path) -> Path:
    """Extract -> Load, every 15 minutes for an hour; each appends to ran.txt."""
    ran = tmp_path / "ran.txt"
    return write_definition(
        tmp_path / "p.json",
        shell("Extract", f"echo extract #{{@scheduledStartTime}} >> {ran}"),
        shell("Load", f"echo load #{{@scheduledStartTime}} >> {ran}; echo loaded; "
                      "echo a warning >&2", dependsOn=ref("Extract")),
        end="2024-01-01T01:00:00")


def test_one_object_runs_alone_and_records_nothing(cli: Cli, tmp_path: Path,
                                                   definition: Path) -> None:
    result = cli("run", str(definition), "--object", "Load", "--at", AT)
    assert (tmp_path / "ran.txt").read_text() == f"load {AT}\n"  # Extract was not run
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{AT}  Load ") and "FINISHED" in lines[0]
    assert lines[1].endswith(": 1 FINISHED")
    assert lines[2].startswith(f"logs: {tmp_path}/state/logs/objects/")
    assert lines[2].endswith("(a run of Load alone: nothing was recorded in the store)")
    assert lines[3].endswith("/stdout <==") and lines[4] == "loaded"
    assert lines[5].endswith("/stderr <==") and lines[6] == "a warning"
    assert not (tmp_path / "state" / "store.db").exists()
    # the pipeline's own run is untouched by it: every instance runs
    out = cli.run(definition)
    assert [i["status"] for i in out["instances"]] == ["FINISHED"] * 8


def test_with_upstream_runs_what_it_waits_for_first(cli: Cli, tmp_path: Path,
                                                    definition: Path) -> None:
    body = cli.json("run", str(definition), "--object", "Load", "--at", AT, "--with-upstream")
    assert [(i["objectId"], i["status"]) for i in body["instances"]] == [
        ("Extract", "FINISHED"), ("Load", "FINISHED")]
    assert (tmp_path / "ran.txt").read_text() == f"extract {AT}\nload {AT}\n"
    [load] = [i for i in body["instances"] if i["objectId"] == "Load"]
    [log] = load["logs"]
    assert log.startswith(body["logRoot"]) and Path(log, "stdout").read_text() == "loaded\n"


def test_the_flags_are_checked(cli: Cli, definition: Path) -> None:
    assert "--object needs --at" in cli("run", str(definition), "--object", "Load",
                                        check=2).stderr
    assert "go with --object" in cli("run", str(definition), "--at", AT, check=2).stderr
    both = cli("run", str(definition), "--object", "Load", "--at", AT, "--start", AT, check=2)
    assert "--start and --end do not apply" in both.stderr
    typo = cli.json("run", str(definition), "--object", "Lod", "--at", AT, check=2)
    assert "no object 'Lod' (did you mean 'Load'?)" in typo["error"]["message"]
    off = cli("run", str(definition), "--object", "Load", "--at", "2024-01-01T00:10:00",
              check=2)
    assert "Load has no instance whose @scheduledStartTime is 2024-01-01T00:10:00" in off.stderr
