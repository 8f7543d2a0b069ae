"""``plan`` and ``eval`` on fields only a running attempt has (issue 11, defect 3): the bundled
example plans (its ``#{@attemptCount}`` kept as written), ``eval`` knows what a plan knows and
says plainly what only a run knows, and ``plan --output json`` fails in JSON."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.cli_kit import Cli, shell, write_definition

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello" / "pipeline.json"
DAY = ("--start", "2024-01-01T00:00:00", "--end", "2024-01-02T00:00:00")


def test_plan_of_the_bundled_example_keeps_runtime_fields_as_written(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    text = cli("plan", str(EXAMPLE), *DAY)
    assert text.stdout.splitlines()[-1] == "6 instance(s)"
    body = cli.json("plan", str(EXAMPLE), *DAY)
    rows = {row["objectId"]: row for row in body["instances"]}
    assert rows["Announce"]["fields"]["command"] == (
        'echo "day 2024-01-01 done (attempt #{@attemptCount} of Announce)"')
    # what a plan does know is resolved in the same field, and elsewhere
    assert rows["Extract"]["fields"]["command"].startswith("day=2024-01-01; ")


def test_eval_gives_what_a_plan_knows_and_refuses_what_only_a_run_knows(
        tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    at = ("--object", "Announce", "--at", "2024-01-01T00:00:00")
    assert cli("eval", str(EXAMPLE), *at, "#{@componentParent}").stdout == "Announce\n"
    assert cli("eval", str(EXAMPLE), *at, "#{@sphere} #{@id}").stdout == (
        "INSTANCE @Announce_2024-01-01T00:00:00\n")
    refused = cli("eval", str(EXAMPLE), *at, "attempt #{@attemptCount}", check=1)
    assert refused.stdout == ""
    assert refused.stderr.strip() == (
        "error: '@attemptCount' is known only at run time (set by the running attempt); "
        "plan shows such expressions as written")
    body = cli.json("eval", str(EXAMPLE), *at, "#{@attemptCount}", check=1)
    assert body["error"]["exitCode"] == 1
    assert "'@attemptCount' is known only at run time" in body["error"]["message"]
    value = cli.json("eval", str(EXAMPLE), *at, "#{format(@scheduledStartTime,'YYYY')}")
    assert value == {"objectId": "Announce", "scheduledStartTime": "2024-01-01T00:00:00",
                     "value": "2024", "secret": False}


def test_a_runtime_field_in_a_typed_field_or_a_function_is_still_refused_by_plan(
        tmp_path: Path) -> None:
    """A placeholder is kept only as text: a number field that needs the attempt count, or a
    date function given @actualStartTime, cannot be planned, and says so in JSON."""
    definition = write_definition(
        tmp_path / "p.json", shell("A", "echo hi", maximumRetries="#{@attemptCount}"),
        period="1 day", start="2024-01-01T00:00:00", end="2024-01-02T00:00:00")
    cli = Cli(tmp_path)
    result = cli("plan", str(definition), *DAY, "--output", "json", check=1)
    body = json.loads(result.stdout)
    assert set(body) == {"error"} and body["error"]["kind"] == "failed"
    assert "'maximumRetries'" in body["error"]["message"]
    assert "@A_2024-01-01T00:00:00" in body["error"]["message"]
    assert result.stderr == ""
