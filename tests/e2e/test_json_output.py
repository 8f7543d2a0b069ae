"""``--output json`` on every command, failures included (issue 11, defect 8): ``logs``,
``eval``, ``engine`` and ``get-pipeline-definition`` take it, and under it an error is a JSON
document on stdout (``{"error": {"message", "exitCode", "kind"}}``), never text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import _COMMANDS
from tests.e2e.cli_kit import Cli, shell, stop, write_definition


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_every_command_takes_output_json_and_fails_in_json(cli: Cli, command: str) -> None:
    assert "--output [text|json]" in cli(command, "--help").stdout
    # every command but those without required arguments is missing one here
    if command in ("engine", "list-pipelines", "encrypt-secrets"):
        return
    result = cli(command, "--output", "json", check=2)
    body = json.loads(result.stdout)
    assert body["error"]["kind"] == "usage" and body["error"]["exitCode"] == 2
    # the commands without a required argument refuse what they lack here instead: serve an
    # API credential, worker a shared store, list-workers and describe-copy a store that exists
    missing = {"serve": "no credentials: ",
               "worker": "headrace worker needs a store that several processes share",
               "list-workers": "no store at ",
               "describe-copy": "no store at "}.get(command, "Missing ")
    assert body["error"]["message"].startswith(missing)
    assert result.stderr == ""


def test_logs_and_get_pipeline_definition_in_json(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(tmp_path / "p.json",
                                  shell("A", "echo out; echo err >&2"))
    out = cli.run(definition)
    pid, [inst] = out["pipelineId"], out["instances"]
    logs = cli.json("logs", inst["instanceId"], "--pipeline-id", pid)
    assert logs["instanceId"] == inst["instanceId"] and logs["attempt"] == 1
    assert logs["status"] == "FINISHED"
    assert logs["streams"]["stdout"] == "out\n" and logs["streams"]["stderr"] == "err\n"
    assert "FINISHED" in logs["streams"]["events"]
    only = cli.json("logs", inst["instanceId"], "--pipeline-id", pid, "--stream", "stderr")
    assert only["streams"] == {"stderr": "err\n"}
    stored = cli.json("get-pipeline-definition", "--pipeline-id", pid)
    assert [o["id"] for o in stored["objects"]] == ["Default", "S", "A"]
    assert json.loads(cli("get-pipeline-definition", "--pipeline-id", pid).stdout) == stored


def test_failures_are_json_on_stdout(cli: Cli, tmp_path: Path) -> None:
    cli("create-pipeline", "--name", "n", "--unique-id", "n")  # the store exists
    missing = cli.json("logs", "@A_2024-01-01T00:00:00", "--pipeline-id", "df-nope", check=1)
    assert missing["error"]["message"] == "no attempts of @A_2024-01-01T00:00:00 in df-nope"
    unknown = cli.json("describe-pipelines", "--pipeline-ids", "df-nope", check=1)
    assert "no pipeline 'df-nope'" in unknown["error"]["message"]
    nodef = cli.json("get-pipeline-definition", "--pipeline-id", "df-nope", check=1)
    assert nodef["error"]["kind"] == "failed"
    no_file = cli.json("run", str(tmp_path / "absent.json"), check=2)
    assert no_file["valid"] is False and no_file["error"]["exitCode"] == 2
    copy = cli("copy", str(tmp_path / "absent.csv"), str(tmp_path / "out.csv"),
               "--output", "json", check=1)
    assert json.loads(copy.stdout)["error"]["exitCode"] == 1 and copy.stderr == ""
    as_text = cli("copy", str(tmp_path / "absent.csv"), str(tmp_path / "out.csv"), check=1)
    assert as_text.stdout == "" and as_text.stderr.startswith("headrace copy: error: ")


def test_engine_reports_in_json_lines(cli: Cli) -> None:
    bad = cli.json("engine", "--store", "bogus://x", check=2)
    assert "unknown store URL" in bad["error"]["message"]
    proc = cli.spawn("engine", "--poll-interval", "0.2", "--output", "json")
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first == {"event": "started", "store": cli.store}
    finally:
        stop(proc)
    assert proc.returncode == 130
