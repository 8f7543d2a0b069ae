"""``headrace validate``, ``plan`` and ``eval`` through the real console script: every
conformance file, the JSON shapes, exit codes, masking, and a fuzz that proves bad input never
produces a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conformance_table import cli_flags, verdicts

HEADRACE = str(Path(sys.executable).with_name("headrace"))
VERDICTS = verdicts()
CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
PREFIX = "awslabs__data-pipeline-samples__samples_"
NOT_STRICT_JSON = {f"{PREFIX}OnDemandWithLamdaFunctions_ondemand.json": (4, 82)}


def headrace(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([HEADRACE, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback, and an exit code of the documented three."""
    assert result.returncode in (0, 1, 2), result
    assert "Traceback" not in result.stdout + result.stderr


def definition_files() -> list[str]:
    return sorted(n for n, v in VERDICTS.items() if v.verdict != "companion")


def write(tmp_path: Path, doc: Any, name: str = "definition.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


# --- the conformance directory ----------------------------------------------------------------

@pytest.mark.parametrize("name", definition_files())
def test_every_conformance_file_gets_its_verdict(name: str) -> None:
    """Through the console script, with the flags of the conformance table: accepted files
    exit 0 with warnings only, refused ones exit 1 with errors on the listed objects and fields;
    every finding in --output json names its file."""
    expected = VERDICTS[name]
    path = str(CONFORMANCE / name)
    extra = cli_flags(expected.flags)
    if name in NOT_STRICT_JSON:
        refused = headrace("validate", path, "--output", "json")
        assert refused.returncode == 1
        body = json.loads(refused.stdout)
        assert body["valid"] is False
        [error] = body["errors"]
        assert (error["file"], error["id"], error["field"]) == (path, None, None)
        assert (error["line"], error["column"]) == NOT_STRICT_JSON[name]
        assert "--lenient" in error["message"]
    result = headrace("validate", path, *extra, "--output", "json")
    body = json.loads(result.stdout)
    assert all({"file", "id", "field", "message"} <= set(p) and p["file"]
               for p in body["errors"] + body["warnings"])
    if expected.verdict == "refused":
        assert result.returncode == 1 and body["valid"] is False
        assert {f"{e['id']}/{e['field']}" for e in body["errors"]} == expected.errors
        return
    assert result.returncode == 0, result.stdout
    assert body["valid"] is True and body["errors"] == []
    assert body["readyToRun"] is (not body["runErrors"])
    text = headrace("validate", path, *extra)
    assert text.returncode == 0
    lines = text.stdout.strip().splitlines()
    verdict = f"valid ({len(body['warnings'])} warning(s))"
    if body["readyToRun"]:
        assert lines[-1] == verdict
    else:  # the last line says what run refuses, and the values it needs
        assert lines[-2] == verdict and lines[-1].startswith(
            f"not ready to run: run refuses it with {len(body['runErrors'])} error(s)")
        assert all(n in lines[-1] for n in body["needsValues"])
    assert all(line.startswith(("warning: ", "valid (", "not ready to run: "))
               for line in lines)


def test_lenient_repairs_are_warnings_with_line_and_column() -> None:
    name = next(iter(NOT_STRICT_JSON))
    body = json.loads(headrace("validate", str(CONFORMANCE / name), "--lenient", "--output",
                               "json").stdout)
    repairs = [w for w in body["warnings"] if "--lenient" in w["message"]]
    assert len(repairs) == 12
    assert all(isinstance(w["line"], int) and isinstance(w["column"], int) for w in repairs)
    assert {w["id"] for w in repairs} == {None}


# --- validate: output and exit codes ---------------------------------------------------------

ONDEMAND = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"}


def test_validate_json_names_object_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, {"objects": [
        ONDEMAND, {"id": "A", "type": "ShellCommandActivity", "command": "x",
                   "maximumRetries": "lots", "dependsOn": {"ref": "Bb"}},
        {"id": "B", "type": "ShellCommandActivity", "command": "echo #{myX}"}]})
    result = headrace("validate", str(path), "--output", "json")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["valid"] is False
    assert [{k: e[k] for k in ("id", "field", "message")} for e in body["errors"]] == [
        {"id": "A", "field": "maximumRetries",
         "message": "'maximumRetries': 'lots' is not a whole number"},
        {"id": "A", "field": "dependsOn",
         "message": "'dependsOn' refers to 'Bb', which does not exist (did you mean 'B'?)"}]
    assert all(e["file"] == str(path) for e in body["errors"])
    assert body["warnings"] == [{
        "file": str(path), "id": "B", "field": "command", "line": 1,
        "message": "#{myX} at character 7: 'myX' resolves to nothing (no field, no parameter "
                   "and no value of that name)"}]


def test_validate_parse_errors_carry_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"objects": [\n  {"id": "A",}\n]}')
    result = headrace("validate", f"file://{path}", "--output", "json")
    assert result.returncode == 1
    [error] = json.loads(result.stdout)["errors"]
    assert (error["id"], error["field"], error["line"], error["column"]) == (None, None, 2, 14)
    text = headrace("validate", str(path))
    assert text.stdout.splitlines()[0].startswith(f"error: {path}, line 2, column 14: ")


@pytest.mark.parametrize(("args", "code"), [
    (["validate", "/nonexistent/definition.json"], 2),
    (["validate", "{path}", "--output", "yaml"], 2),
    (["validate", "{path}", "--parameter-values", "myA=1", "--parameter-values-uri", "{path}"],
     2),
    (["validate", "{path}", "--parameter-values", "=1"], 2),
    (["plan", "{path}", "--start", "2024-01-01", "--end", "2024-01-02T00:00:00"], 2),
    (["plan", "{path}", "--start", "2024-01-02T00:00:00", "--end", "2024-01-01T00:00:00"], 2),
    (["plan", "{path}", "--start", "2024-01-01T00:00:00", "--end", "2024-01-02T00:00:00",
      "--max-instances", "0"], 2),
    (["eval", "{path}", "#{1}", "--object", "A"], 2),
    (["validate", "{path}"], 0),
])
def test_exit_codes(tmp_path: Path, args: list[str], code: int) -> None:
    path = write(tmp_path, {"objects": [ONDEMAND, {"id": "A", "type": "ShellCommandActivity",
                                                   "command": "x"}]})
    result = headrace(*(a.replace("{path}", str(path)) for a in args))
    assert result.returncode == code, result
    assert_clean(result)


# --- plan -------------------------------------------------------------------------------------

def scheduled(tmp_path: Path, schedule: dict[str, str], *objects: dict[str, Any],
              schedule_type: str = "cron", parameters: list[dict[str, Any]] | None = None,
              values: dict[str, Any] | None = None) -> Path:
    doc: dict[str, Any] = {"objects": [
        {"id": "Default", "scheduleType": schedule_type, "schedule": {"ref": "S"},
         "workerGroup": "wg"},
        {"id": "S", "type": "Schedule", **schedule}, *objects]}
    if parameters:
        doc["parameters"] = parameters
    if values:
        doc["values"] = values
    return write(tmp_path, doc)


def test_plan_json_shape_and_order(tmp_path: Path) -> None:
    path = scheduled(
        tmp_path, {"period": "1 hour", "startDateTime": "2024-01-01T00:00:00"},
        {"id": "Zed", "type": "ShellCommandActivity", "command": "run #{myTable}",
         "output": {"ref": "Out"}},
        {"id": "Out", "type": "S3DataNode",
         "directoryPath": "s3://b/#{format(@scheduledStartTime, 'YYYY-MM-dd-HH')}"},
        {"id": "Db", "type": "JdbcDatabase", "connectionString": "jdbc:x", "username": "u",
         "*password": "#{*myPw}", "jdbcDriverClass": "d"},
        {"id": "Sql", "type": "SqlActivity", "database": {"ref": "Db"},
         "script": "select '#{*myPw}'"},
        schedule_type="timeseries", parameters=[{"id": "*myPw"}, {"id": "myTable"}],
        values={"*myPw": "hunter2", "myTable": "sales"})
    result = headrace("plan", str(path), "--start", "2024-01-01T01:00:00", "--end",
                      "2024-01-01T03:00:00", "--output", "json")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    instances = json.loads(result.stdout)["instances"]
    assert [(i["scheduledStartTime"], i["objectId"]) for i in instances] == [
        ("2024-01-01T01:00:00", "Out"), ("2024-01-01T01:00:00", "Sql"),
        ("2024-01-01T01:00:00", "Zed"), ("2024-01-01T02:00:00", "Out"),
        ("2024-01-01T02:00:00", "Sql"), ("2024-01-01T02:00:00", "Zed")]
    first = instances[0]
    assert list(first) == ["objectId", "type", "scheduledStartTime", "scheduledEndTime",
                           "eligibleAt", "fields"]
    assert first["type"] == "S3DataNode"
    assert first["scheduledEndTime"] == first["eligibleAt"] == "2024-01-01T02:00:00"
    assert first["fields"]["directoryPath"] == "s3://b/2024-01-01-01"
    assert instances[1]["fields"]["script"] == "****"
    assert instances[2]["fields"]["command"] == "run sales"
    assert instances[2]["fields"]["output"] == {"ref": "Out"}


def test_plan_activation_time_stands_in_for_first_activation(tmp_path: Path) -> None:
    path = scheduled(tmp_path, {"period": "1 day", "startAt": "FIRST_ACTIVATION_DATE_TIME",
                                "occurrences": "3"},
                     {"id": "A", "type": "ShellCommandActivity", "command": "x"})
    result = headrace("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                      "2024-02-01T00:00:00", "--activation-time", "2024-01-10T06:00:00",
                      "--output", "json")
    assert [i["scheduledStartTime"] for i in json.loads(result.stdout)["instances"]] == [
        "2024-01-10T06:00:00", "2024-01-11T06:00:00", "2024-01-12T06:00:00"]


def test_plan_ondemand_runs_once_at_activation(tmp_path: Path) -> None:
    path = write(tmp_path, {"objects": [
        ONDEMAND, {"id": "A", "type": "ShellCommandActivity",
                   "command": "echo #{@scheduledStartTime}"}]})
    result = headrace("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                      "2024-01-02T00:00:00", "--activation-time", "2024-01-01T12:00:00",
                      "--output", "json")
    [instance] = json.loads(result.stdout)["instances"]
    assert instance["scheduledStartTime"] == instance["scheduledEndTime"] == (
        "2024-01-01T12:00:00")
    assert instance["fields"]["command"] == "echo 2024-01-01T12:00:00"


def test_plan_refuses_unresolved_values_that_validate_only_warns_about(tmp_path: Path) -> None:
    path = scheduled(tmp_path, {"period": "1 day", "startDateTime": "2024-01-01T00:00:00"},
                     {"id": "A", "type": "ShellCommandActivity", "command": "cp #{mySource}"},
                     parameters=[{"id": "mySource"}])
    assert headrace("validate", str(path)).returncode == 0
    result = headrace("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                      "2024-01-02T00:00:00")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert f"error: {path}, object 'A', field 'command', line 1: #{{mySource}} at character 5: " \
           "parameter 'mySource' has no value" in lines
    assert lines[-1] == "definition refused: 2 error(s)"
    given_values = headrace("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                            "2024-01-02T00:00:00", "--parameter-values", "mySource=s3://a",
                            "--output", "json")
    assert json.loads(given_values.stdout)["instances"][0]["fields"]["command"] == "cp s3://a"


def test_plan_text_output(tmp_path: Path) -> None:
    path = scheduled(tmp_path, {"period": "12 hours", "startDateTime": "2024-01-01T00:00:00"},
                     {"id": "A", "type": "ShellCommandActivity", "command": "x"})
    result = headrace("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                      "2024-01-02T00:00:00")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["2024-01-01T00:00:00", "A", "ShellCommandActivity", "eligible",
                                "2024-01-01T00:00:00"]
    assert lines[-1] == "2 instance(s)"


# --- eval -------------------------------------------------------------------------------------

def test_eval_prints_values_lists_and_masks(tmp_path: Path) -> None:
    path = scheduled(tmp_path, {"period": "1 day", "startDateTime": "2024-01-01T00:00:00"},
                     {"id": "A", "type": "ShellCommandActivity", "command": "x",
                      "input": {"ref": "In"}},
                     {"id": "In", "type": "S3DataNode", "directoryPath": "s3://b/in"},
                     parameters=[{"id": "myList", "isArray": "true"}, {"id": "*myPw"}],
                     values={"myList": ["a", "b"], "*myPw": "hunter2"})

    def run(expression: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return headrace("eval", str(path), "--object", "A", "--at", "2024-03-05T00:00:00",
                        expression, *extra)

    got = run("#{format(plusDays(@scheduledStartTime, 1), 'YYYY-MM-dd')} #{input.directoryPath}"
              " #{@scheduledEndTime}")
    assert (got.returncode, got.stdout) == (0, "2024-03-06 s3://b/in 2024-03-06T00:00:00\n")
    assert json.loads(run("#{'x-' + myList}").stdout) == ["x-a", "x-b"]
    assert run("#{*myPw}").stdout == "****\n"
    greedy = run("#{myA}-#{myB}", "--parameter-values", "myA=1", "myB=2")
    assert greedy.stdout == "1-2\n"


@pytest.mark.parametrize(("expression", "message"), [
    ("#{nope(1)}", "unknown function nope()"),
    ("#{1 +}", "character 5"),
    ("#{comand}", "unknown name 'comand' (did you mean 'command'?)"),
    ("#{day(*myPw)}", "day() takes (DateTime)"),
])
def test_eval_errors_exit_1_on_one_line(tmp_path: Path, expression: str, message: str) -> None:
    path = write(tmp_path, {"objects": [ONDEMAND, {"id": "A", "type": "ShellCommandActivity",
                                                   "command": "x"}],
                            "parameters": [{"id": "*myPw", "default": "hunter2"}]})
    result = headrace("eval", str(path), "--object", "A", "--at", "2024-01-01T00:00:00",
                      expression)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert "hunter2" not in result.stderr


def test_eval_in_an_action_sees_the_node(tmp_path: Path) -> None:
    path = write(tmp_path, {"objects": [
        ONDEMAND,
        {"id": "A", "type": "ShellCommandActivity", "command": "x", "onFail": {"ref": "Al"}},
        {"id": "Al", "type": "SnsAlarm", "topicArn": "t", "subject": "s", "message": "m",
         "role": "r"}]})
    result = headrace("eval", str(path), "--object", "Al", "--at", "2024-01-01T00:00:00",
                      "#{node.name} at #{node.@scheduledStartTime}")
    assert result.stdout == "A at 2024-01-01T00:00:00\n"
    missing = headrace("eval", str(path), "--object", "Alarm", "--at", "2024-01-01T00:00:00",
                       "#{1}")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: no object 'Alarm' (objects: 'A', 'Al', 'Default')"
    typo = headrace("eval", str(path), "--object", "Dfault", "--at", "2024-01-01T00:00:00",
                    "#{1}")
    assert typo.stderr.strip() == "error: no object 'Dfault' (did you mean 'Default'?)"


# --- fuzz: never a traceback ------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6)
    | st.sampled_from(["#{", "#{myX}", "1 day", "2024-01-01T00:00:00", "cron", "ondemand"])
    | st.builds(lambda i: {"ref": i}, st.sampled_from(["Default", "S", "A", "B"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8)
FIELD_NAMES = st.sampled_from(["type", "schedule", "period", "startDateTime", "command",
                               "dependsOn", "input", "output", "parent", "scheduleType",
                               "myX", "*password", "bogus"])
DOCUMENTS = st.fixed_dictionaries({}, optional={
    "objects": st.lists(st.fixed_dictionaries(
        {"id": st.sampled_from(["Default", "S", "A", "B"])},
        optional={"type": st.sampled_from(["Schedule", "ShellCommandActivity", "S3DataNode",
                                           "CopyActivity", "Nope"])}).flatmap(
        lambda base: st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=4).map(
            lambda fields: {**fields, **base})) | JSON_VALUES, max_size=5),
    "parameters": JSON_VALUES, "values": JSON_VALUES}) | JSON_VALUES


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(DOCUMENTS, st.sampled_from(["validate", "plan", "eval"]))
def test_fuzzed_definitions_never_produce_a_traceback(tmp_path: Path, document: Any,
                                                      command: str) -> None:
    path = write(tmp_path, document)
    args = {"validate": ["validate", str(path), "--output", "json"],
            "plan": ["plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                     "2024-01-03T00:00:00", "--output", "json"],
            "eval": ["eval", str(path), "--object", "A", "--at", "2024-01-01T00:00:00",
                     "#{myX} #{@scheduledEndTime}"]}[command]
    assert_clean(headrace(*args))
