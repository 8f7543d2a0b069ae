"""``headrace run`` exporting its traces to a real OTLP backend (Arize Phoenix on loopback),
read back through Phoenix's REST API: the span tree of a copy, over OTLP/HTTP and OTLP/gRPC,
no secret in anything exported (Phoenix and the console exporters), and a collector that is
not there costs one warning and nothing else."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.otel_kit import console_records

HEADRACE = str(Path(sys.executable).with_name("headrace"))
ROWS = 1500


def _definition(path: Path, *objects: dict[str, Any], **extra: Any) -> Path:
    body = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "cron", "schedule": {"ref": "S"},
         "failureAndRerunMode": "cascade", "maximumRetries": "0"},
        {"id": "S", "name": "S", "type": "Schedule", "period": "1 day",
         "startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-01-02T00:00:00"},
        *objects], **extra}
    path.write_text(json.dumps(body, indent=2))
    return path


def _run(tmp_path: Path, definition: Path, env: dict[str, str],
         *args: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), **env}
    for name in list(full):
        if name.startswith("OTEL_") and name not in env:
            full.pop(name)
    return subprocess.run([HEADRACE, "run", str(definition), "--store",
                           f"sqlite:///{tmp_path}/store.db", "--output", "json", *args],
                          capture_output=True, text=True, timeout=180, env=full, cwd=tmp_path,
                          check=False)


def _project() -> str:
    return f"headrace-otel-{secrets.token_hex(5)}"


def _otel_env(project: str, endpoint: str, protocol: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_SERVICE_NAME": project, "OTEL_METRICS_EXPORTER": "none",  # Phoenix: traces
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}"}


def phoenix_spans(phoenix_url: str, project: str,
                  done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Every span of ``project``, polled until ``done(spans)`` (ingestion is asynchronous)."""
    url = f"{phoenix_url}/v1/projects/{urllib.parse.quote(project)}/spans?limit=1000"
    spans: list[dict[str, Any]] = []
    for _ in range(150):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                spans = list(json.load(response).get("data", []))
        except urllib.error.HTTPError as error:
            if error.code != 404:  # the project appears with its first span
                raise
            spans = []
        if spans and done(spans):
            return spans
        time.sleep(0.2)
    return spans


def _one(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s['name'] for s in spans]}"
    return found[0]


def _parent(spans: list[dict[str, Any]], span: dict[str, Any]) -> dict[str, Any]:
    [parent] = [s for s in spans if s["context"]["span_id"] == span["parent_id"]]
    return parent


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_a_copy_run_exports_its_span_tree_with_volumes(
        transport: str, tmp_path: Path, s3_endpoint: str, s3_bucket: str, phoenix_url: str,
        otlp_http_endpoint: str, otlp_grpc_endpoint: str) -> None:
    source = tmp_path / "orders.csv"
    source.write_text("".join(f"{n},order {n},{n * 3}.50\n" for n in range(ROWS)))
    definition = _definition(
        tmp_path / "copy.json",
        {"id": "In", "name": "In", "type": "S3DataNode", "filePath": str(source)},
        # CSV in, TSV out: rows are converted, so the copy runs all four stages
        {"id": "Out", "name": "Out", "type": "S3DataNode", "dataFormat": {"ref": "Tsv"},
         "filePath": f"s3://{s3_bucket}/orders/orders.tsv"},
        {"id": "Tsv", "name": "Tsv", "type": "TSV"},
        {"id": "Copy", "name": "Copy", "type": "CopyActivity", "input": {"ref": "In"},
         "output": {"ref": "Out"}})
    project = _project()
    endpoint, protocol = ((otlp_http_endpoint, "http/protobuf") if transport == "http"
                          else (otlp_grpc_endpoint, "grpc"))
    result = _run(tmp_path, definition, {"AWS_ENDPOINT_URL_S3": s3_endpoint,
                                         **_otel_env(project, endpoint, protocol)})
    assert result.returncode == 0, result.stderr
    assert "telemetry:" not in result.stderr  # exported without a complaint

    spans = phoenix_spans(phoenix_url, project, lambda got: any(
        s["name"] == "instance Copy" for s in got) and any(s["name"] == "copy write"
                                                           for s in got))
    root = _one(spans, "instance Copy")
    attempt = _one(spans, "attempt")
    activity = _one(spans, "CopyActivity")
    whole = _one(spans, "copy")
    read, write = _one(spans, "copy read"), _one(spans, "copy write")
    decode, encode = _one(spans, "copy decode"), _one(spans, "copy encode")
    # the tree: instance -> attempt -> activity -> copy -> stages -> S3 calls
    assert root["parent_id"] is None
    assert _parent(spans, attempt) is root
    assert _parent(spans, activity) is attempt
    assert _parent(spans, whole) is activity
    assert all(_parent(spans, s) is whole for s in (read, decode, encode, write))
    s3_calls = [s for s in spans if s["name"].startswith("S3.")]
    assert s3_calls and all(_parent(spans, s) is write for s in s3_calls)
    assert {s["attributes"]["rpc.system"] for s in s3_calls} == {"aws-api"}
    assert {s["attributes"]["aws.s3.bucket"] for s in s3_calls} == {s3_bucket}
    assert any(s["name"] in ("S3.PutObject", "S3.UploadPart") for s in s3_calls)
    trace_id = root["context"]["trace_id"]
    assert {s["context"]["trace_id"] for s in (attempt, activity, whole, read, write,
                                                *s3_calls)} == {trace_id}

    # what a user needs on them (no value needs quoting: the TSV is as long as the CSV)
    size = source.stat().st_size
    for span in (activity, whole):
        assert span["attributes"]["headrace.rows"] == ROWS
        assert span["attributes"]["headrace.bytes"] == size
    assert whole["attributes"]["headrace.copy.lane"] == "rows"
    assert whole["attributes"]["headrace.copy.source"] == str(source)
    assert whole["attributes"]["headrace.copy.destination"] == \
        f"s3://{s3_bucket}/orders/orders.tsv"
    assert read["attributes"]["headrace.bytes"] == size
    assert decode["attributes"]["headrace.rows"] == ROWS
    assert write["attributes"]["headrace.bytes"] == size
    assert root["attributes"]["headrace.object.type"] == "CopyActivity"
    assert root["attributes"]["headrace.status"] == "FINISHED"
    assert root["attributes"]["headrace.scheduled.start"] == "2024-01-01T00:00:00Z"
    assert attempt["attributes"]["headrace.attempt.number"] == 1
    assert root["status_code"] == "OK"

    # the store has the trace id: list-runs leads from the instance to this trace
    listed = subprocess.run(
        [HEADRACE, "list-runs", "--pipeline-id", json.loads(result.stdout)["pipelineId"],
         "--store", f"sqlite:///{tmp_path}/store.db", "--output", "json"],
        capture_output=True, text=True, timeout=60, check=True)
    runs = {r["objectId"]: r for r in json.loads(listed.stdout)["runs"]}
    assert runs["Copy"]["traceId"] == trace_id


# --- secrets -------------------------------------------------------------------------------------

async def _orders_table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, item text)")
        await conn.executemany("INSERT INTO orders VALUES ($1, $2)",
                               [(n, f"item {n}") for n in range(200)])
    finally:
        await conn.close()


def _secret_pipeline(tmp_path: Path, pg_dsn: str, bucket: str, password: str) -> Path:
    parts = urllib.parse.urlsplit(pg_dsn)
    return _definition(
        tmp_path / "secret.json",
        {"id": "Db", "name": "Db", "type": "JdbcDatabase",
         "connectionString": f"jdbc:postgresql://{parts.hostname}:{parts.port}{parts.path}",
         "jdbcDriverClass": "org.postgresql.Driver", "username": parts.username or "postgres",
         "*password": password},
        {"id": "Orders", "name": "Orders", "type": "SqlDataNode", "database": {"ref": "Db"},
         "table": "orders"},
        {"id": "Out", "name": "Out", "type": "S3DataNode",
         "filePath": f"s3://{bucket}/orders.csv"},
        {"id": "Export", "name": "Export", "type": "CopyActivity", "input": {"ref": "Orders"},
         "output": {"ref": "Out"}},
        {"id": "Leaky", "name": "Leaky", "type": "ShellCommandActivity",
         "command": "echo \"token #{*myToken} refused\" >&2; exit 3"},
        parameters=[{"id": "*myToken", "type": "String"}],
        values={"*myToken": "tok-" + secrets.token_hex(8)})


@pytest.mark.anyio
async def test_no_secret_reaches_an_exported_span_event_or_metric(
        tmp_path: Path, pg_database: str, s3_endpoint: str, s3_bucket: str, phoenix_url: str,
        otlp_http_endpoint: str) -> None:
    await _orders_table(pg_database)
    password = "pg-" + secrets.token_hex(8)
    definition = _secret_pipeline(tmp_path, pg_database, s3_bucket, password)
    token = json.loads(definition.read_text())["values"]["*myToken"]
    leaks = (password, token, os.environ["AWS_SECRET_ACCESS_KEY"],
             os.environ["AWS_ACCESS_KEY_ID"])

    project = _project()
    exported = _run(tmp_path, definition, {"AWS_ENDPOINT_URL_S3": s3_endpoint,
                                           **_otel_env(project, otlp_http_endpoint,
                                                       "http/protobuf")})
    assert exported.returncode == 1, exported.stderr  # Leaky fails, on purpose
    spans = phoenix_spans(phoenix_url, project, lambda got: {"instance Leaky", "COPY orders"}
                          <= {s["name"] for s in got})
    text = json.dumps(spans)
    for leak in leaks:
        assert leak not in text
    # the places a secret would have been are there, masked
    leaky = _one(spans, "ShellCommandActivity")
    assert leaky["status_code"] == "ERROR" and "token **** refused" in leaky["status_message"]
    copy_call = _one(spans, "COPY orders")
    assert copy_call["attributes"]["db.system"] == "postgresql"
    assert _parent(spans, copy_call)["name"] == "copy read"

    (tmp_path / "console").mkdir()  # a store of its own: the same run again
    console = _run(tmp_path / "console", definition, {"AWS_ENDPOINT_URL_S3": s3_endpoint,
                                                      "OTEL_TRACES_EXPORTER": "console",
                                                      "OTEL_METRICS_EXPORTER": "console"})
    assert console.returncode == 1
    records = console_records(console.stderr)
    names = {r.get("name") for r in records}
    assert {"instance Leaky", "COPY orders"} <= names  # spans...
    metric_names = {m["name"] for r in records for rm in r.get("resource_metrics", [])
                    for sm in rm["scope_metrics"] for m in sm["metrics"]}
    assert {"headrace.instances", "headrace.copy.rows", "headrace.copy.bytes"} <= metric_names
    for leak in leaks:
        assert leak not in console.stderr and leak not in console.stdout


# --- a collector that is not there ---------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_an_unreachable_collector_is_logged_once_and_the_run_succeeds(
        protocol: str, tmp_path: Path) -> None:
    definition = _definition(
        tmp_path / "shell.json",
        *({"id": f"Step{n}", "name": f"Step{n}", "type": "ShellCommandActivity",
           "command": "echo hello"} for n in range(3)))
    result = _run(tmp_path, definition, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_METRICS_EXPORTER": "none"})
    assert result.returncode == 0, result.stderr
    assert all(i["status"] == "FINISHED" for i in json.loads(result.stdout)["instances"])
    complaints = [line for line in result.stderr.splitlines() if "telemetry" in line
                  or "export" in line.lower() or "Traceback" in line]
    assert len(complaints) == 1, result.stderr
    assert "cannot export spans to http://127.0.0.1:" in complaints[0]
