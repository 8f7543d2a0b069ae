"""The AWS CLI v1 (``aws datapipeline ... --endpoint-url``) against ``headrace serve``: the
lifecycle commands, ``list-runs`` (the CLI's own QueryObjects + DescribeObjects), and the
shared conformance definitions in through put-pipeline-definition and out of
get-pipeline-definition equivalent."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awscli.customizations.datapipeline import translator

from engine.definition import load
from engine.service.pipelines import problems_by_object
from tests.e2e.api_kit import Server, fields, start_server, wait_for

CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("serve-cli"), "--poll-interval", "0.2")
    yield srv
    srv.stop()


def _wire_file(definition: Path) -> Path:
    """validate-pipeline-definition has no file translation in the AWS CLI: it takes the
    API's pipelineObjects, made here by the CLI's own translator."""
    data = json.loads(definition.read_text())
    wire = definition.with_suffix(".objects.json")
    wire.write_text(json.dumps(translator.definition_to_api_objects(data)))
    return wire


def test_the_aws_cli_drives_a_pipeline(server: Server, tmp_path: Path) -> None:
    definition = tmp_path / "pipeline.json"
    definition.write_text(json.dumps({
        "objects": [
            {"id": "Default", "name": "Default", "scheduleType": "cron",
             "schedule": {"ref": "S"}, "failureAndRerunMode": "CASCADE"},
            {"id": "S", "name": "S", "type": "Schedule", "period": "15 minutes",
             "startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-01-01T00:30:00"},
            {"id": "Say", "name": "Say", "type": "ShellCommandActivity",
             "command": "echo #{myWord} > #{myDir}/#{format(@scheduledStartTime,'HHmm')}"}],
        "parameters": [{"id": "myWord", "type": "String"}, {"id": "myDir", "type": "String"}]}))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    pid = server.aws_json("create-pipeline", "--name", "cli", "--unique-id", "cli-1")[
        "pipelineId"]
    checked = server.aws_json("validate-pipeline-definition", "--pipeline-id", pid,
                              "--pipeline-objects", f"file://{_wire_file(definition)}",
                              "--parameter-values", "id=myWord,stringValue=hey",
                              f"id=myDir,stringValue={out_dir}")
    assert checked["errored"] is False
    put = server.aws_json("put-pipeline-definition", "--pipeline-id", pid,
                          "--pipeline-definition", f"file://{definition}",
                          "--parameter-values", "myWord=hey", f"myDir={out_dir}")
    assert put["errored"] is False
    got = server.aws_json("get-pipeline-definition", "--pipeline-id", pid)
    assert got["values"] == {"myWord": "hey", "myDir": str(out_dir)}
    assert [o["id"] for o in got["objects"]] == ["Default", "S", "Say"]

    server.aws("activate-pipeline", "--pipeline-id", pid, "--start-timestamp",
               "2024-01-01T00:00:00")
    wait_for(lambda: len(list(out_dir.iterdir())) == 2, what="both intervals to run")
    assert (out_dir / "0015").read_text() == "hey\n"

    table = server.aws("list-runs", "--pipeline-id", pid, "--schedule-interval",
                       "2024-01-01T00:00:00,2024-01-01T01:00:00").stdout
    assert "Say" in table and "@Say_2024-01-01T00:15:00" in table and "FINISHED" in table
    runs = server.aws_json("list-runs", "--pipeline-id", pid, "--status", "finished",
                           "--schedule-interval", "2024-01-01T00:00:00,2024-01-01T01:00:00")
    assert sorted(r["@id"] for r in runs) == ["@Say_2024-01-01T00:00:00",
                                              "@Say_2024-01-01T00:15:00"]
    assert all(r["@status"] == "FINISHED" and r["@componentParent"] == "Say" for r in runs)

    described = server.aws_json("describe-objects", "--pipeline-id", pid, "--object-ids",
                                "@Say_2024-01-01T00:15:00", "Say")["pipelineObjects"]
    assert [o["id"] for o in described] == ["@Say_2024-01-01T00:15:00", "Say"]
    server.aws("set-status", "--pipeline-id", pid, "--object-ids", "Say", "--status", "PAUSE")
    query = json.dumps({"selectors": [{"fieldName": "@status", "operator": {
        "type": "EQ", "values": ["PAUSED"]}}]})
    # handed to the engine through the store when it runs the pipeline: applied soon after
    wait_for(lambda: server.aws_json("query-objects", "--pipeline-id", pid, "--sphere",
                                     "COMPONENT", "--objects-query", query).get("ids") == ["Say"],
             what="the component to be PAUSED")
    server.aws("deactivate-pipeline", "--pipeline-id", pid, "--no-cancel-active")
    server.aws("delete-pipeline", "--pipeline-id", pid)
    gone = server.aws("describe-pipelines", "--pipeline-ids", pid, check=None)
    assert gone.returncode != 0 and "PipelineDeletedException" in gone.stderr


def test_validation_errors_reach_the_cli(server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand"},
        {"id": "A", "name": "A", "type": "ShellCommandActivity"}]}))
    pid = server.aws_json("create-pipeline", "--name", "bad", "--unique-id", "cli-bad")[
        "pipelineId"]
    out = server.aws_json("validate-pipeline-definition", "--pipeline-id", pid,
                          "--pipeline-objects", f"file://{_wire_file(bad)}")
    assert out["errored"] is True
    [error] = out["validationErrors"]
    assert error["id"] == "A" and any("command" in m for m in error["errors"])


# --- conformance definitions round trip --------------------------------------------------------

def _strict_definitions() -> list[Path]:
    out = []
    for path in sorted(CONFORMANCE.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # not strict JSON: the AWS CLI itself refuses these files
        if isinstance(data, dict) and isinstance(data.get("objects"), list):
            out.append(path)
    return out


def _normal(value: Any) -> Any:
    """A definition-file value as the service keeps it: scalars as strings, one-item lists as
    the item, empty lists dropped."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        return items[0] if len(items) == 1 else items
    return value


def _expected(data: dict[str, Any]) -> list[dict[str, Any]]:
    objects = []
    for obj in data["objects"]:
        if isinstance(obj.get("fields"), list):  # already in the API's shape
            obj = _from_wire(obj)
        item = {"name": obj["id"]}  # the AWS CLI names an object without a name by its id
        for key, value in obj.items():
            if isinstance(value, list) and not value:
                continue
            item[key] = "****" if key.startswith("*") else _normal(value)
        objects.append(item)
    return objects


def _from_wire(obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": obj["id"], "name": obj.get("name", obj["id"]), **fields(obj, refs=True)}


@pytest.mark.parametrize("path", _strict_definitions(), ids=lambda p: p.name[:60])
def test_conformance_definitions_round_trip(server: Server, path: Path) -> None:
    """What the AWS CLI's own translator sends for the file goes in through
    PutPipelineDefinition; what GetPipelineDefinition returns, translated back by the same
    translator, holds the same objects (secrets as ****)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    expected = _expected(data)
    c = server.client()
    pid = c.create_pipeline(name=path.stem[:100], uniqueId=f"conf-{path.name}")["pipelineId"]
    # the translator takes the file apart in place: each piece from a fresh copy
    if any(isinstance(o.get("fields"), list) for o in data["objects"]):
        objects = [{"id": o["id"], "name": o.get("name", o["id"]), "fields": o["fields"]}
                   for o in data["objects"]]  # a file in the API's own shape goes as it is
    else:
        objects = translator.definition_to_api_objects(copy.deepcopy(data))
    request: dict[str, Any] = {"pipelineId": pid, "pipelineObjects": objects}
    raw_params = data.get("parameters") or []
    if any(isinstance(p.get("attributes"), list) for p in raw_params):
        params = [{"id": p["id"], "attributes": p["attributes"]} for p in raw_params]
    else:
        params = translator.definition_to_api_parameters(copy.deepcopy(data))
    if params is not None:
        request["parameterObjects"] = params
    values = translator.definition_to_parameter_values(copy.deepcopy(data))
    if values is not None:
        request["parameterValues"] = values
    checked = c.validate_pipeline_definition(**request)
    put = c.put_pipeline_definition(**request)
    assert put["errored"] == checked["errored"]
    if put["errored"]:  # refused: for the reasons `headrace validate` gives for the file
        _, report = load(str(path))
        assert report.errors
        expected_errors = problems_by_object(report.errors, pid)
        assert {e["id"]: e["errors"] for e in put["validationErrors"]} == expected_errors
        return
    got = c.get_pipeline_definition(pipelineId=pid)
    translated = translator.api_to_definition(dict(got))
    assert translated["objects"] == expected
    if "values" in data:
        assert translated["values"] == {k: ("****" if k.startswith("*") else _normal(v))
                                        for k, v in data["values"].items()}


def test_a_conformance_file_through_the_aws_cli_itself(server: Server) -> None:
    path = CONFORMANCE / "awslabs__data-pipeline-samples__samples_helloworld_helloworld.json"
    pid = server.aws_json("create-pipeline", "--name", "hello", "--unique-id", "cli-hello")[
        "pipelineId"]
    put = server.aws_json("put-pipeline-definition", "--pipeline-id", pid,
                          "--pipeline-definition", f"file://{path}",
                          "--parameter-values", "myS3LogsPath=s3://logs/x")
    assert put["errored"] is False, put
    got = server.aws_json("get-pipeline-definition", "--pipeline-id", pid)
    assert got["objects"] == _expected(json.loads(path.read_text()))
