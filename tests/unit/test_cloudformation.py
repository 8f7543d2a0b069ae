"""CloudFormation templates read wherever a definition is read: the pipeline resource becomes
the definition, intrinsic functions resolve from --template-parameters (or Defaults), what only
a stack knows is a clear error naming the object, field and key, and findings are at the
template's own lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.definition import LoadOptions, load
from engine.errors import ParseError

TEMPLATES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudformation"
NIGHTLY = str(TEMPLATES / "nightly.yaml")
TWO = str(TEMPLATES / "two-pipelines.json")
LIVE = ["LogBucket=logs-bkt", "shared-source=s3://src", "Warehouse.Endpoint=wh.example",
        "DbPassword=hunter22"]


def nightly(*extra: str) -> tuple[object, object]:
    return load(NIGHTLY, LoadOptions(template_parameters=[*LIVE, *extra]))


def line_of(text: str, path: str = NIGHTLY) -> int:
    return Path(path).read_text().splitlines().index(text) + 1


def test_short_form_tags_and_functions_resolve() -> None:
    definition, report = nightly("Env=prod")
    assert report.ok and report.warnings == [], report.errors
    assert definition.first("Copy", "command") == (
        "copy orders to #{myOutput} from s3://src as ${USER}")
    assert definition.first("Copy", "maximumRetries") == "3"  # FindInMap on the parameter
    assert definition.first("Default", "workerGroup") == "wg-prod"  # If / Equals
    assert definition.first("Default", "pipelineLogUri") == "s3://logs-bkt/logs/"  # Join, Ref
    assert definition.first("Copy", "myClusterId") == "wh.example"  # GetAtt
    assert definition.parameters.raw_value("myOutput") == ("s3://logs-bkt/out/us-east-1",)
    assert definition.parameters.decl("myOutput").type == "String"  # "string" in any case
    # "type": "Default" on Default names the object: nothing inherits it, nothing warns
    assert definition.type_of("Copy") == "ShellCommandActivity"
    assert definition.type_of("Daily") == "Schedule"


def test_parameter_defaults_and_pseudo_parameters() -> None:
    definition, report = nightly("AWS::Region=eu-west-1")
    assert report.ok
    assert definition.first("Default", "workerGroup") == "wg-dev"  # Env's Default
    assert definition.first("Copy", "maximumRetries") == "1"
    assert definition.parameters.raw_value("myOutput") == ("s3://logs-bkt/out/eu-west-1",)


def test_what_only_a_stack_knows_is_an_error_naming_object_field_and_key() -> None:
    _, report = load(NIGHTLY)
    got = {(p.object_id, p.field): (p.line, p.message) for p in report.errors}
    assert set(got) == {("Default", "pipelineLogUri"), ("Copy", "command"),
                        ("Copy", "myClusterId"), ("Copy", "myPassword"), ("myOutput", "value")}
    line, message = got[("Copy", "myClusterId")]
    assert message == ("StringValue: Fn::GetAtt Warehouse.Endpoint (no such resource in the "
                       "template) is known only to a live stack: give it with "
                       "--template-parameters Warehouse.Endpoint=VALUE")
    assert "--template-parameters shared-source=VALUE" in got[("Copy", "command")][1]
    assert "resource LogBucket (AWS::S3::Bucket)" in got[("Default", "pipelineLogUri")][1]
    assert "DbPassword has no value and no Default" in got[("Copy", "myPassword")][1]
    # the line of the field in the template, and the file
    assert line == line_of("            - Key: myClusterId")
    assert all(p.file == NIGHTLY for p in report.errors)
    # an unresolved command is not also reported as missing
    assert not any("needs one of" in p.message for p in report.errors)


def test_findings_name_the_template_line_of_the_object() -> None:
    _, report = nightly("Env=staging")
    # once for the parameter, at its line (and the mapping it selects has no such key)
    problem, = (p for p in report.errors if p.object_id is None)
    assert [p.field for p in report.errors if p.object_id == "Copy"] == ["maximumRetries"]
    assert problem.message == ("template parameter Env: 'staging' is not one of its "
                               "AllowedValues ('dev', 'prod')")
    assert problem.line == line_of("  Env:") + 1  # where its declaration starts
    _, typo = load(TWO, LoadOptions(resource="Second"))
    [warning] = typo.warnings
    assert (warning.object_id, warning.field, warning.file) == ("Hello", "comand", TWO)
    assert warning.line == 25 and "did you mean 'command'" in warning.message


def test_a_template_with_several_pipelines_needs_resource() -> None:
    with pytest.raises(ParseError) as info:
        load(TWO)
    assert info.value.problems[0].message == (
        "the template holds 2 pipelines: First (line 3), Second (line 17); choose one with "
        "--resource LOGICAL_ID")
    first, report = load(TWO, LoadOptions(resource="First"))
    assert report.ok and first.first("Hello", "command") == "echo first"
    with pytest.raises(ParseError, match="--resource Third is not a resource of the template "
                                         r"\(its pipeline resources: First, Second\)"):
        load(TWO, LoadOptions(resource="Third"))


def test_no_echo_values_never_reach_a_message() -> None:
    _, report = nightly("Env=nope")
    assert report.errors
    for problem in [*report.errors, *report.warnings]:
        assert "hunter22" not in str(problem)
    definition, _ = nightly()
    assert "hunter22" in definition.secret_values()


def test_unused_template_parameters_are_named() -> None:
    _, report = nightly("Nonsense=1")
    [warning] = report.warnings
    assert warning.message.startswith("--template-parameters Nonsense: not used by pipeline "
                                      "Nightly")


def test_template_flags_on_a_plain_definition_are_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"objects": [
        {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"},
        {"id": "A", "type": "ShellCommandActivity", "command": "true"}]}))
    _, report = load(str(path), LoadOptions(resource="X"))
    assert report.ok
    assert "are for CloudFormation templates" in report.warnings[0].message


def test_a_yaml_definition_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("objects:\n  - id: Default\n    scheduleType: ondemand\n    workerGroup: w\n"
                    "  - id: A\n    type: ShellCommandActivity\n    command: echo 1.50\n"
                    "    maximumRetries: 3\n    bogus: x\n")
    definition, report = load(str(path))
    assert report.ok
    assert definition.first("A", "command") == "echo 1.50"
    assert definition.first("A", "maximumRetries") == "3"
    messages = {w.message.split(":")[0]: w for w in report.warnings}
    assert "the definition is YAML" in messages
    bogus = next(w for w in report.warnings if w.field == "bogus")
    assert bogus.line == 5  # the object's line in the YAML


def test_yaml_that_is_no_definition_says_so(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: something else\n")
    with pytest.raises(ParseError, match="this is YAML, not JSON, and neither a definition"):
        load(str(path))
    path.write_text("objects: [\n")
    with pytest.raises(ParseError) as info:
        load(str(path))
    assert "Expecting value" not in info.value.problems[0].message
    assert info.value.problems[0].line == 2


def test_plan_run_and_put_pipeline_definition_read_templates(tmp_path: Path) -> None:
    flags = [f for pair in LIVE for f in ("--template-parameters", pair)] + ["--output", "json"]
    runner = CliRunner()
    planned = runner.invoke(cli, ["plan", NIGHTLY, "--start", "2030-01-01T00:00:00", "--end",
                                  "2030-01-02T00:00:00", *flags])
    assert planned.exit_code == 0, planned.output
    [row] = [r for r in json.loads(planned.output)["instances"] if r["objectId"] == "Copy"]
    assert row["fields"]["command"].startswith("copy orders to s3://logs-bkt/out/us-east-1")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    created = runner.invoke(cli, ["create-pipeline", "--name", "n", "--unique-id", "n",
                                  "--store", store])
    assert created.exit_code == 0, created.output
    pipeline_id = created.output.strip().splitlines()[-1]
    put = runner.invoke(cli, ["put-pipeline-definition", "--pipeline-id", pipeline_id,
                              "--pipeline-definition", TWO, "--resource", "First",
                              "--store", store])
    assert put.exit_code == 0, put.output
    got = runner.invoke(cli, ["get-pipeline-definition", "--pipeline-id", pipeline_id,
                              "--store", store])
    objects = {o["id"]: o for o in json.loads(got.output)["objects"]}
    assert objects["Hello"]["command"] == "echo first"
    refused = runner.invoke(cli, ["run", TWO, "--store", store])
    assert refused.exit_code == 2 and "choose one with --resource" in refused.output
