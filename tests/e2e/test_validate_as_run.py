"""``validate`` says what ``run`` refuses (issue 11, defect 4): the AWS helloworld sample is a
valid template that run refuses until its parameter has a value, and validate's last line says
so, with the value it needs; a value for an id nothing declares or reads is a warning with a
did-you-mean; a location whose scheme headrace cannot use is refused by both, after parameters
are substituted, before anything runs."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.cli_kit import Cli

ROOT = Path(__file__).resolve().parents[2]
HELLOWORLD = (ROOT / "tests" / "fixtures" / "conformance"
              / "awslabs__data-pipeline-samples__samples_helloworld_helloworld.json")
EXAMPLE = ROOT / "examples" / "hello" / "pipeline.json"


def test_validate_says_what_run_refuses_and_what_it_needs(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    text = cli("validate", str(HELLOWORLD)).stdout.splitlines()
    assert text[-2] == "valid (3 warning(s))"
    assert text[-1] == (
        "not ready to run: run refuses it with 2 error(s) (warnings above, errors when run); "
        "it needs a value for myS3LogsPath: --parameter-values myS3LogsPath=VALUE "
        "(or --parameter-values-uri FILE)")
    body = cli.json("validate", str(HELLOWORLD))
    assert body["valid"] is True and body["readyToRun"] is False
    assert body["needsValues"] == ["myS3LogsPath"]
    expected = {(p["id"], p["field"]) for p in body["runErrors"]}
    assert expected == {("Default", "pipelineLogUri"), ("myS3LogsPath", "value")}
    refused = cli.json("run", str(HELLOWORLD), check=2)
    assert {(p["id"], p["field"]) for p in refused["errors"]} == expected
    given = ("--parameter-values", "myS3LogsPath=s3://logs/hello")
    ready = cli.json("validate", str(HELLOWORLD), *given)
    assert ready["readyToRun"] is True and ready["runErrors"] == []
    assert cli("validate", str(HELLOWORLD), *given).stdout.splitlines()[-1] == (
        "valid (1 warning(s))")


def test_a_value_no_parameter_declares_is_a_warning_with_did_you_mean(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    typo = ("--parameter-values", f"myDataDr=file://{tmp_path}/data")
    body = cli.json("validate", str(EXAMPLE), *typo)
    [warning] = [w for w in body["warnings"] if w["id"] == "myDataDr"]
    assert warning["file"] == "--parameter-values" and warning["field"] == "value"
    assert warning["message"] == (
        "a value for 'myDataDr', which no parameter declares and no expression reads: it is "
        "not used (did you mean 'myDataDir'?)")
    plan = cli("plan", str(EXAMPLE), *typo, "--start", "2024-01-01T00:00:00", "--end",
               "2024-01-02T00:00:00")
    assert plan.returncode == 0  # a warning: the default is used, as the service did
    # run says it too, before it would run with the default (a window with no instance,
    # so that nothing is written to the default folder)
    values = tmp_path / "values.json"
    values.write_text('{"values": {"myDataDr": "/elsewhere"}}')
    ran = cli("run", str(EXAMPLE), "--parameter-values-uri", str(values), "--start",
              "2024-01-01T00:00:01", "--end", "2024-01-01T00:00:02")
    assert ran.stdout.splitlines()[-1].endswith(": no instances")
    assert f"warning: {values}, object 'myDataDr', field 'value', line 1: a value for " \
           "'myDataDr'" in ran.stderr
    assert "(did you mean 'myDataDir'?)" in ran.stderr
    # an undeclared id that an expression reads is a String, as AWS's samples use it
    (tmp_path / "p.json").write_text(EXAMPLE.read_text().replace(
        "done (attempt", "#{myExtra} (attempt"))
    read = cli.json("validate", str(tmp_path / "p.json"), "--parameter-values", "myExtra=x")
    assert not [w for w in read["warnings"] if w["id"] == "myExtra"]


def test_a_scheme_headrace_cannot_use_is_refused_after_substitution(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    ftp = ("--parameter-values", "myDataDir=ftp://host/x")
    body = cli.json("validate", str(EXAMPLE), *ftp, check=1)
    assert [(e["id"], e["field"]) for e in body["errors"]] == [
        ("RawSales", "directoryPath"), ("SalesReport", "directoryPath")]
    assert body["errors"][0]["message"] == (
        "\"ftp://host/x/raw/#{format(@scheduledStartTime,'YYYY-MM-dd')}\" (after substitution "
        "of \"#{myDataDir}/raw/#{format(@scheduledStartTime,'YYYY-MM-dd')}\") has the scheme "
        "ftp://, which headrace cannot read or write: use s3://, file:// or a local path")
    run = cli("run", str(EXAMPLE), *ftp, check=2)
    assert "has the scheme ftp://" in run.stderr and run.stdout == ""
    assert not (tmp_path / "state").exists()  # refused before a store or an attempt
    fine = cli.json("validate", str(EXAMPLE), "--parameter-values",
                    f"myDataDir=file://{tmp_path}/d")
    assert fine["valid"] is True and fine["readyToRun"] is True
