"""Every operation ``headrace serve`` serves, through boto3's own ``datapipeline`` client
against a real server process on loopback: shapes, pagination, the ``@`` fields of instances
and attempts, AWS's error types, and the engine running what the API activated."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.api_kit import (
    OTHER_KEY_ID,
    OTHER_SECRET,
    Server,
    fields,
    start_server,
    wait_for,
    wire_objects,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("serve"), "--poll-interval", "0.2")
    yield srv
    assert srv.stop() == 130, srv.log_text()


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """API only (--no-scheduler): instances stay where activation put them."""
    srv = start_server(tmp_path_factory.mktemp("serve-api-only"), "--no-scheduler")
    yield srv
    srv.stop()


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def schedule(start: str = "2024-01-01T00:00:00", end: str = "2024-01-01T00:30:00",
             period: str = "15 minutes") -> dict[str, Any]:
    return {"id": "S", "name": "S", "type": "Schedule", "period": period,
            "startDateTime": start, "endDateTime": end}


def definition(*objects: dict[str, Any], **default: Any) -> list[dict[str, Any]]:
    return wire_objects({"id": "Default", "name": "Default", "scheduleType": "cron",
                         "schedule": {"ref": "S"}, **default}, schedule(), *objects)


def new_pipeline(client: Any, name: str, objects: list[dict[str, Any]], **put: Any) -> str:
    pid = str(client.create_pipeline(name=name, uniqueId=f"u-{name}")["pipelineId"])
    result = client.put_pipeline_definition(pipelineId=pid, pipelineObjects=objects, **put)
    assert result["errored"] is False, result
    return pid


def instance_ids(client: Any, pid: str, **query: Any) -> list[str]:
    pages = client.get_paginator("query_objects").paginate(pipelineId=pid, sphere="INSTANCE",
                                                           **query)
    return list(pages.build_full_result()["ids"])


def test_lifecycle_of_a_pipeline_through_boto3(server: Server) -> None:
    c = server.client()
    objects = definition(
        {"id": "Hello", "name": "Hello", "type": "ShellCommandActivity",
         "command": "echo #{myGreeting} #{format(@scheduledStartTime,'YYYY-MM-dd HH:mm')}"},
        {"id": "Broken", "name": "Broken", "type": "ShellCommandActivity",
         "command": "echo broken >&2; exit 3", "maximumRetries": "0",
         "dependsOn": {"ref": "Hello"}})
    created = c.create_pipeline(name="life", uniqueId="tok-life", description="a test",
                                tags=[{"key": "team", "value": "data"}])
    pid = created["pipelineId"]
    assert pid.startswith("df-")
    assert c.create_pipeline(name="life", uniqueId="tok-life")["pipelineId"] == pid

    params = [{"id": "myGreeting", "attributes": [{"key": "type", "stringValue": "String"},
                                                  {"key": "default", "stringValue": "hi"}]}]
    checked = c.validate_pipeline_definition(pipelineId=pid, pipelineObjects=objects,
                                             parameterObjects=params)
    assert checked["errored"] is False
    with pytest.raises(ClientError) as exc:  # nothing stored by validation
        c.get_pipeline_definition(pipelineId=pid)
    assert _error(exc)[0] == "InvalidRequestException"

    put = c.put_pipeline_definition(pipelineId=pid, pipelineObjects=objects,
                                    parameterObjects=params,
                                    parameterValues=[{"id": "myGreeting",
                                                      "stringValue": "hello"}])
    assert put["errored"] is False and put["validationErrors"] == []
    latest = c.get_pipeline_definition(pipelineId=pid, version="latest")
    assert [o["id"] for o in latest["pipelineObjects"]] == ["Default", "S", "Hello", "Broken"]
    assert latest["parameterValues"] == [{"id": "myGreeting", "stringValue": "hello"}]
    with pytest.raises(ClientError) as exc:
        c.get_pipeline_definition(pipelineId=pid, version="active")
    assert _error(exc) == ("InvalidRequestException", 400)

    [described] = c.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
    assert described["name"] == "life" and described["description"] == "a test"
    assert described["tags"] == [{"key": "team", "value": "data"}]
    assert fields(described)["@pipelineState"] == "PENDING"

    with pytest.raises(ClientError) as exc:  # a start two years ago is a backfill
        c.activate_pipeline(pipelineId=pid)
    assert _error(exc)[0] == "InvalidRequestException"
    assert "backfill" in str(exc.value)
    c.activate_pipeline(pipelineId=pid, startTimestamp=datetime(2024, 1, 1, tzinfo=UTC),
                        parameterValues=[{"id": "myGreeting", "stringValue": "bonjour"}])
    active = c.get_pipeline_definition(pipelineId=pid, version="active")
    assert active["parameterValues"] == [{"id": "myGreeting", "stringValue": "bonjour"}]

    def settled() -> bool:
        ids = instance_ids(c, pid)
        if len(ids) != 4:
            return False
        objs = c.describe_objects(pipelineId=pid, objectIds=ids)["pipelineObjects"]
        return all(fields(o)["@status"] in ("FINISHED", "FAILED") for o in objs)

    wait_for(settled, what="the engine in headrace serve to run the activated pipeline")
    finished = instance_ids(c, pid, query={"selectors": [
        {"fieldName": "@status", "operator": {"type": "EQ", "values": ["FINISHED"]}}]})
    assert finished == ["@Hello_2024-01-01T00:00:00", "@Hello_2024-01-01T00:15:00"]
    late = instance_ids(c, pid, query={"selectors": [
        {"fieldName": "@scheduledStartTime",
         "operator": {"type": "BETWEEN", "values": ["2024-01-01T00:10:00",
                                                    "2024-01-01T00:20:00"]}},
        {"fieldName": "@componentParent", "operator": {"type": "REF_EQ",
                                                       "values": ["Broken"]}}]})
    assert late == ["@Broken_2024-01-01T00:15:00"]

    hello_id = "@Hello_2024-01-01T00:15:00"
    [hello] = c.describe_objects(pipelineId=pid, objectIds=[hello_id])["pipelineObjects"]
    f = fields(hello)
    assert hello["id"] == hello_id and hello["name"] == hello_id
    assert f["@sphere"] == "INSTANCE" and f["@status"] == "FINISHED"
    assert f["@componentParent"] == "Hello" and f["type"] == "ShellCommandActivity"
    assert f["@scheduledStartTime"] == "2024-01-01T00:15:00"
    assert f["@scheduledEndTime"] == "2024-01-01T00:30:00"
    assert f["@actualStartTime"] <= f["@actualEndTime"] and f["@attemptCount"] == "1"
    assert f["@headAttempt"] == f"{hello_id}_Attempt=1"
    ref_keys = {x["key"] for x in hello["fields"] if "refValue" in x}
    assert {"@componentParent", "@headAttempt"} <= ref_keys
    evaluated = c.describe_objects(pipelineId=pid, objectIds=[hello_id],
                                   evaluateExpressions=True)["pipelineObjects"][0]
    assert fields(evaluated)["command"] == "echo bonjour 2024-01-01 00:15"

    [attempt] = c.describe_objects(pipelineId=pid, objectIds=[f"{hello_id}_Attempt=1"])[
        "pipelineObjects"]
    a = fields(attempt)
    assert a["@sphere"] == "ATTEMPT" and a["@status"] == "FINISHED"
    assert a["@instanceParent"] == hello_id and a["@componentParent"] == "Hello"
    broken = fields(c.describe_objects(pipelineId=pid, objectIds=[
        "@Broken_2024-01-01T00:15:00"])["pipelineObjects"][0])
    assert broken["@status"] == "FAILED" and "exited with code 3" in broken["errorMessage"]
    assert broken["dependsOn"] == "Hello"  # a reference field, as a refValue
    attempts = c.query_objects(pipelineId=pid, sphere="ATTEMPT", query={"selectors": [
        {"fieldName": "@status", "operator": {"type": "EQ", "values": ["FAILED"]}}]})["ids"]
    assert attempts == ["@Broken_2024-01-01T00:00:00_Attempt=1",
                        "@Broken_2024-01-01T00:15:00_Attempt=1"]
    components = c.query_objects(pipelineId=pid, sphere="COMPONENT", query={"selectors": [
        {"fieldName": "name", "operator": {"type": "EQ", "values": ["Hello", "S"]}}]})["ids"]
    assert components == ["S", "Hello"]
    [component] = c.describe_objects(pipelineId=pid, objectIds=["Hello"])["pipelineObjects"]
    assert fields(component)["@sphere"] == "COMPONENT"

    assert c.evaluate_expression(pipelineId=pid, objectId=hello_id, expression=(
        "#{@scheduledStartTime} #{myGreeting} #{minusHours(@scheduledStartTime, 1)}"))[
        "evaluatedExpression"] == "2024-01-01T00:15:00 bonjour 2023-12-31T23:15:00"
    with pytest.raises(ClientError) as exc:
        c.evaluate_expression(pipelineId=pid, objectId=hello_id, expression="#{nope(}")
    assert _error(exc)[0] == "InvalidRequestException"

    with pytest.raises(ClientError) as exc:  # instances and components are not mixed
        c.set_status(pipelineId=pid, objectIds=["Hello", hello_id], status="PAUSE")
    assert _error(exc)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        c.set_status(pipelineId=pid, objectIds=[hello_id], status="EXPLODE")
    assert _error(exc)[0] == "InvalidRequestException"

    c.add_tags(pipelineId=pid, tags=[{"key": "env", "value": "test"}])
    c.remove_tags(pipelineId=pid, tagKeys=["team"])
    [described] = c.describe_pipelines(pipelineIds=[pid])["pipelineDescriptionList"]
    assert described["tags"] == [{"key": "env", "value": "test"}]
    with pytest.raises(ClientError) as exc:  # AWS's limit of ten tags
        c.add_tags(pipelineId=pid, tags=[{"key": f"k{i}", "value": "v"} for i in range(10)])
    assert _error(exc)[0] == "InvalidRequestException"

    c.deactivate_pipeline(pipelineId=pid, cancelActive=False)
    wait_for(lambda: fields(c.describe_pipelines(pipelineIds=[pid])[
        "pipelineDescriptionList"][0])["@pipelineState"] in ("INACTIVE", "FINISHED"),
        what="INACTIVE")
    c.delete_pipeline(pipelineId=pid)
    with pytest.raises(ClientError) as exc:
        c.describe_pipelines(pipelineIds=[pid])
    assert _error(exc) == ("PipelineDeletedException", 400)
    with pytest.raises(ClientError) as exc:
        c.delete_pipeline(pipelineId=pid)
    assert _error(exc)[0] == "PipelineDeletedException"
    assert pid not in [p["id"] for p in c.list_pipelines()["pipelineIdList"]]


def test_rerun_through_set_status_runs_a_new_attempt(server: Server) -> None:
    """On a pipeline still on its schedule (a rerun in a FINISHED one is issue 16's)."""
    c = server.client()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now.replace(minute=now.minute - now.minute % 15) - timedelta(minutes=15)
    fmt = "%Y-%m-%dT%H:%M:%S"
    objects = wire_objects(
        {"id": "Default", "name": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}},
        schedule(start.strftime(fmt), (start + timedelta(days=1)).strftime(fmt)),
        {"id": "Once", "name": "Once", "type": "ShellCommandActivity",
         "command": "echo run >> #{myOut}"})
    out = server.root / "rerun.txt"
    pid = new_pipeline(c, "rerun", objects,
                       parameterObjects=[{"id": "myOut", "attributes": [
                           {"key": "type", "stringValue": "String"}]}],
                       parameterValues=[{"id": "myOut", "stringValue": str(out)}])
    c.activate_pipeline(pipelineId=pid)
    target = f"@Once_{start.strftime(fmt)}"

    def attempts() -> str | None:
        [obj] = c.describe_objects(pipelineId=pid, objectIds=[target])["pipelineObjects"]
        f = fields(obj)
        return f.get("@attemptCount") if f["@status"] == "FINISHED" else None

    wait_for(lambda: attempts() == "1", what="the first run")
    c.set_status(pipelineId=pid, objectIds=[target], status="RERUN")
    wait_for(lambda: attempts() == "2", what="the rerun")
    assert out.read_text().count("run") >= 2
    c.deactivate_pipeline(pipelineId=pid)


def test_put_with_errors_is_errored_and_stores_nothing(quiet: Server) -> None:
    c = quiet.client()
    pid = c.create_pipeline(name="bad", uniqueId="tok-bad")["pipelineId"]
    objects = definition({"id": "A", "name": "A", "type": "ShellCommandActivity",
                          "command": "true", "dependsOn": {"ref": "Missing"},
                          "myField": "x"},
                         {"id": "B", "name": "B", "type": "NoSuchType"})
    for call in (c.put_pipeline_definition, c.validate_pipeline_definition):
        out = call(pipelineId=pid, pipelineObjects=objects)
        assert out["errored"] is True
        errors = {e["id"]: e["errors"] for e in out["validationErrors"]}
        assert set(errors) == {"A", "B"}
        assert any("Missing" in m and "dependsOn" in m for m in errors["A"])
        assert any("NoSuchType" in m for m in errors["B"])
    with pytest.raises(ClientError) as exc:
        c.get_pipeline_definition(pipelineId=pid)
    assert "no latest definition" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        c.activate_pipeline(pipelineId=pid)
    assert _error(exc)[0] == "InvalidRequestException"


def test_unknown_pipelines_and_objects(quiet: Server) -> None:
    c = quiet.client()
    for call, kwargs in ((c.describe_pipelines, {"pipelineIds": ["df-NOPE"]}),
                         (c.activate_pipeline, {"pipelineId": "df-NOPE"}),
                         (c.get_pipeline_definition, {"pipelineId": "df-NOPE"}),
                         (c.query_objects, {"pipelineId": "df-NOPE", "sphere": "INSTANCE"}),
                         (c.add_tags, {"pipelineId": "df-NOPE", "tags": []})):
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert _error(exc) == ("PipelineNotFoundException", 400), call
    pid = new_pipeline(c, "objs", definition({"id": "A", "name": "A",
                                               "type": "ShellCommandActivity",
                                               "command": "true"}))
    with pytest.raises(ClientError) as exc:
        c.describe_objects(pipelineId=pid, objectIds=["@A_1999-01-01T00:00:00"])
    assert _error(exc)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        c.query_objects(pipelineId=pid, sphere="UNIVERSE")
    assert _error(exc)[0] == "InvalidRequestException"
    with pytest.raises(ClientError) as exc:
        c.query_objects(pipelineId=pid, sphere="INSTANCE", query={"selectors": [
            {"fieldName": "name", "operator": {"type": "GE", "values": ["x"]}}]})
    assert "GE applies to" in str(exc.value)


def test_pagination_of_lists_queries_and_describes(quiet: Server) -> None:
    c = quiet.client()
    made = {c.create_pipeline(name=f"p{i}", uniqueId=f"page-{i}")["pipelineId"]
            for i in range(105)}
    first = c.list_pipelines()
    assert first["hasMoreResults"] is True and len(first["pipelineIdList"]) == 100
    listed = c.get_paginator("list_pipelines").paginate().build_full_result()["pipelineIdList"]
    assert made <= {p["id"] for p in listed}

    # 2 days of 15-minute intervals: 192 instances of A, waiting (no scheduler here)
    objects = wire_objects(
        {"id": "Default", "name": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}},
        schedule("2024-01-01T00:00:00", "2024-01-03T00:00:00"),
        {"id": "A", "name": "A", "type": "ShellCommandActivity", "command": "true"})
    pid = new_pipeline(c, "paged", objects)
    c.activate_pipeline(pipelineId=pid, startTimestamp=datetime(2024, 1, 1, tzinfo=UTC))
    page = c.query_objects(pipelineId=pid, sphere="INSTANCE", limit=50)
    assert len(page["ids"]) == 50 and page["hasMoreResults"] is True
    second = c.query_objects(pipelineId=pid, sphere="INSTANCE", limit=50,
                             marker=page["marker"])
    assert not set(page["ids"]) & set(second["ids"])
    every = c.get_paginator("query_objects").paginate(
        pipelineId=pid, sphere="INSTANCE", PaginationConfig={"PageSize": 37}
    ).build_full_result()["ids"]
    assert len(every) == len(set(every)) == 192
    assert every == sorted(every)
    described = c.get_paginator("describe_objects").paginate(
        pipelineId=pid, objectIds=every).build_full_result()["pipelineObjects"]
    assert [o["id"] for o in described] == every
    assert {fields(o)["@status"] for o in described} == {"WAITING_ON_DEPENDENCIES"}
    first_page = c.describe_objects(pipelineId=pid, objectIds=every)
    assert first_page["hasMoreResults"] is True and len(first_page["pipelineObjects"]) == 100
    before = instance_ids(c, pid, query={"selectors": [
        {"fieldName": "@scheduledStartTime", "operator": {"type": "LE",
                                                          "values": ["2024-01-01T01:00:00"]}}]})
    assert len(before) == 5
    none_started = instance_ids(c, pid, query={"selectors": [
        {"fieldName": "@actualStartTime", "operator": {"type": "GE",
                                                       "values": ["2000-01-01T00:00:00"]}}]})
    assert none_started == []  # a selector on a field the instances lack matches nothing


def test_pause_and_cancel_through_set_status(quiet: Server) -> None:
    c = quiet.client()
    pid = new_pipeline(c, "pause", definition({"id": "A", "name": "A",
                                               "type": "ShellCommandActivity",
                                               "command": "true"}))
    c.activate_pipeline(pipelineId=pid, startTimestamp=datetime(2024, 1, 1, tzinfo=UTC))
    c.set_status(pipelineId=pid, objectIds=["A"], status="PAUSE")
    paused = c.query_objects(pipelineId=pid, sphere="COMPONENT", query={"selectors": [
        {"fieldName": "@status", "operator": {"type": "EQ", "values": ["PAUSED"]}}]})["ids"]
    assert paused == ["A"]
    c.set_status(pipelineId=pid, objectIds=["A"], status="RESUME")
    assert c.query_objects(pipelineId=pid, sphere="COMPONENT", query={"selectors": [
        {"fieldName": "@status", "operator": {"type": "EQ", "values": ["PAUSED"]}}]})[
        "ids"] == []
    target = "@A_2024-01-01T00:00:00"
    c.set_status(pipelineId=pid, objectIds=[target], status="TRY_CANCEL")
    [obj] = c.describe_objects(pipelineId=pid, objectIds=[target])["pipelineObjects"]
    assert fields(obj)["@status"] == "CANCELED"
    with pytest.raises(ClientError) as exc:
        c.set_status(pipelineId=pid, objectIds=["@A_1999-01-01T00:00:00"], status="RERUN")
    assert _error(exc)[0] == "InvalidRequestException"


def test_secrets_are_masked_in_what_the_api_returns(quiet: Server) -> None:
    c = quiet.client()
    secret = "hunter2-do-not-show"
    objects = definition(
        {"id": "Db", "name": "Db", "type": "JdbcDatabase", "username": "u",
         "*password": secret, "connectionString": "jdbc:postgresql://h/db",
         "jdbcDriverClass": "org.postgresql.Driver"},
        {"id": "A", "name": "A", "type": "ShellCommandActivity",
         "command": "echo #{*myToken}"})
    pid = str(c.create_pipeline(name="sec", uniqueId="tok-sec")["pipelineId"])
    params = [{"id": "*myToken", "attributes": [{"key": "type", "stringValue": "String"}]}]
    put = c.put_pipeline_definition(pipelineId=pid, pipelineObjects=objects,
                                    parameterObjects=params,
                                    parameterValues=[{"id": "*myToken", "stringValue": secret}])
    assert put["errored"] is False and secret not in json.dumps(put)
    got = c.get_pipeline_definition(pipelineId=pid)
    assert secret not in json.dumps(got)
    c.activate_pipeline(pipelineId=pid, startTimestamp=datetime(2024, 1, 1, tzinfo=UTC))
    iid = "@A_2024-01-01T00:00:00"
    for evaluate in (False, True):
        out = c.describe_objects(pipelineId=pid, objectIds=[iid, "Db"],
                                 evaluateExpressions=evaluate)
        assert secret not in json.dumps(out)
    assert c.evaluate_expression(pipelineId=pid, objectId=iid, expression="#{*myToken}")[
        "evaluatedExpression"] == "****"
    assert secret not in quiet.log_text()


def test_a_second_credential_works_and_access_is_logged_without_secrets(quiet: Server) -> None:
    c = quiet.client(OTHER_KEY_ID, OTHER_SECRET)
    c.list_pipelines()

    def mine() -> list[dict[str, Any]]:  # the line is written once the response is sent
        lines = [json.loads(line) for line in quiet.log_text().splitlines()
                 if line.startswith("{") and '"operation"' in line]
        return [e for e in lines if e["principal"] == OTHER_KEY_ID]

    wait_for(mine, timeout=10, what="the access log line")
    mine = mine()
    assert mine and mine[-1]["operation"] == "ListPipelines" and mine[-1]["status"] == 200
    assert {"time", "client", "method", "path", "ms", "requestId", "bytesIn"} <= set(mine[-1])
    assert OTHER_SECRET not in quiet.log_text()


def test_sigterm_stops_gracefully(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--poll-interval", "0.2")
    c = srv.client()
    c.list_pipelines()
    assert srv.stop(signal.SIGTERM) == 130
    assert "Traceback" not in srv.log_text()
