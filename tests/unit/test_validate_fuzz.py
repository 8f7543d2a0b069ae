"""Bad input never produces a traceback: hypothesis-generated definitions (random JSON, and
near-valid pipelines with random fields and values) through validate, plan and eval, in
process. Every run ends with exit code 0, 1 or 2 and a clean report. (The e2e suite runs a
smaller fuzz through the real console script.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import cli
from engine.definition.types import ALL_FIELD_NAMES, TYPES

IDS = ["Default", "S", "A", "B", "N", "P", "R", "myX", "*myP"]
TEXTS = st.sampled_from([
    "", "1", "-3", "lots", "true", "cron", "ondemand", "timeseries", "cascade", "15 minutes",
    "5 minutes", "1 day", "1 month", "3 years", "0 days", "99999999999 years", "1 Period",
    "2020-01-01T00:00:00", "2020-02-30T00:00:00", "9999-12-31T23:59:59",
    "FIRST_ACTIVATION_DATE_TIME", "#{myX}", "#{*myP}", "#{", "#{}", "#{node.x}",
    "#{input.directoryPath}", "#{@scheduledStartTime}", "#{format(@scheduledStartTime,'YYYY')}",
    "#{plusDays(@scheduledStartTime, 99999999)}", "#{1/0}", "#{myX + 1}", "${x}",
    "#{parent.@id}", "#{2^99999}", "#{nope(1)}", "#{a.b.c.d}", "#{day(*myP)}", "#{period}",
    "#{id}", "#{node}", "#{input}", "s3://b/k", "\x00", "é", "1.5", "1e400", "#{myArr}",
    "#{'a' + myArr}", "#{myX}#{myX}", "#{command}",
]) | st.text(max_size=6)
REFS = st.builds(lambda i: {"ref": i}, st.sampled_from(IDS))
SCALARS = TEXTS | st.integers() | st.floats() | st.booleans() | st.none()
VALUES = st.recursive(SCALARS | REFS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["ref", "x", "key", "stringValue"]), inner, max_size=2), max_leaves=5)
FIELDS = st.sampled_from([*sorted(ALL_FIELD_NAMES), "myComment", "*password", "bogus", "@status",
                          "*myP", "fields"])
TYPE_NAMES = st.sampled_from([*sorted(TYPES), "Nope"])

OBJECTS = st.builds(lambda oid, t, fields: {**fields, "id": oid, **({"type": t} if t else {})},
                    st.sampled_from(IDS) | SCALARS, TYPE_NAMES | st.none() | VALUES,
                    st.dictionaries(FIELDS, VALUES, max_size=6))
PARAMETERS = st.fixed_dictionaries({"id": st.sampled_from(IDS) | SCALARS}, optional={
    "type": st.sampled_from(["String", "Integer", "Double", "AWS::S3::ObjectKey", "X"]) | VALUES,
    "default": VALUES, "optional": VALUES, "isArray": VALUES, "allowedValues": VALUES,
    "attributes": VALUES})
ANY_DOCUMENT = st.fixed_dictionaries({}, optional={
    "objects": st.lists(OBJECTS | VALUES, max_size=6) | VALUES,
    "parameters": st.lists(PARAMETERS, max_size=3) | VALUES,
    "values": st.dictionaries(st.sampled_from(IDS), VALUES, max_size=3) | VALUES,
    "pipelineObjects": VALUES, "parameterValues": VALUES}) | VALUES

# near-valid pipelines: a Default, a Schedule and a few runnable objects wired together
PIPE_IDS = ["A", "B", "N", "P", "R"]
PIPE_REFS = st.builds(lambda i: {"ref": i}, st.sampled_from([*PIPE_IDS, "S", "Default"]))
PIPE_FIELDS = st.sampled_from([
    "command", "input", "output", "dependsOn", "precondition", "onFail", "directoryPath",
    "filePath", "s3Key", "scriptArgument", "myX", "*password", "parent", "runsOn",
    "scheduleType", "maximumRetries", "database", "message", "stage", "retryDelay"])
PIPE_VALUES = TEXTS | PIPE_REFS | st.lists(TEXTS | PIPE_REFS, max_size=3)
PIPELINES = st.builds(
    lambda schedule, default, objects, params, values: {
        "objects": [{"id": "Default", "schedule": {"ref": "S"}, **default},
                    {"id": "S", "type": "Schedule", **schedule}, *objects],
        "parameters": params, "values": values},
    st.fixed_dictionaries({}, optional={k: TEXTS for k in (
        "period", "startDateTime", "startAt", "endDateTime", "occurrences")}),
    st.fixed_dictionaries({}, optional={
        "scheduleType": st.sampled_from(["cron", "timeseries", "ondemand", "CRON", "x"]),
        "failureAndRerunMode": st.sampled_from(["cascade", "none"])}),
    st.lists(st.builds(lambda oid, t, f: {**f, "id": oid, "type": t},
                       st.sampled_from(PIPE_IDS),
                       st.sampled_from(["ShellCommandActivity", "CopyActivity", "SqlActivity",
                                        "S3DataNode", "S3KeyExists", "SnsAlarm", "Ec2Resource",
                                        "ShellCommandPrecondition", "EmrActivity"]),
                       st.dictionaries(PIPE_FIELDS, PIPE_VALUES, max_size=5)), max_size=5),
    st.lists(st.fixed_dictionaries({"id": st.sampled_from(["myX", "*myP", "myArr", "myY"])},
                                   optional={"type": st.sampled_from(["String", "Integer",
                                                                      "Double"]),
                                             "default": TEXTS,
                                             "isArray": st.sampled_from(["true", "false"]),
                                             "optional": st.sampled_from(["true", "false"])}),
             max_size=3),
    st.dictionaries(st.sampled_from(["myX", "*myP", "myArr", "myZ"]),
                    TEXTS | st.lists(TEXTS, max_size=3), max_size=3))

COMMANDS = [
    ["validate", "--output", "json"],
    ["validate", "--lenient"],
    ["plan", "--start", "2020-01-01T00:00:00", "--end", "2020-01-03T00:00:00", "--output",
     "json"],
    ["plan", "--start", "2020-01-01T00:00:00", "--end", "2020-01-02T00:00:00",
     "--activation-time", "2019-12-31T00:00:00", "--max-instances", "50"],
    ["eval", "--object", "A", "--at", "2020-01-01T00:00:00",
     "#{myX} #{@scheduledEndTime} #{input.directoryPath}"],
    ["eval", "--object", "P", "--at", "2020-01-01T00:00:00", "#{node.command} #{*myP}"],
]
FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def run(tmp_path: Path, text: str, command: list[str]) -> None:
    path = tmp_path / "definition.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    args = [command[0], str(path), *command[1:]]
    result = CliRunner().invoke(cli, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: {result.exception!r}\n{text[:2000]}") from (
            result.exception)
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output


@FUZZ
@given(ANY_DOCUMENT, st.sampled_from(COMMANDS))
def test_any_json_document(tmp_path: Path, document: Any, command: list[str]) -> None:
    run(tmp_path, json.dumps(document), command)


@FUZZ
@given(PIPELINES, st.sampled_from(COMMANDS))
def test_near_valid_pipelines(tmp_path: Path, document: Any, command: list[str]) -> None:
    run(tmp_path, json.dumps(document), command)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(PIPELINES, st.integers(0, 400), st.text(max_size=4), st.sampled_from(COMMANDS[:2]))
def test_broken_json_text(tmp_path: Path, document: Any, cut: int, junk: str,
                          command: list[str]) -> None:
    text = json.dumps(document, indent=1)
    run(tmp_path, text[:cut] + junk + text[cut + len(junk):], command)


@FUZZ
@given(PIPELINES, ANY_DOCUMENT, st.sampled_from(["--parameter-objects",
                                                 "--parameter-values-uri"]),
       st.sampled_from(COMMANDS))
def test_any_parameter_or_values_file(tmp_path: Path, document: Any, companion: Any,
                                      flag: str, command: list[str]) -> None:
    extra = tmp_path / "companion.json"
    extra.write_text(json.dumps(companion), encoding="utf-8")
    run(tmp_path, json.dumps(document), [*command, flag, str(extra)])
