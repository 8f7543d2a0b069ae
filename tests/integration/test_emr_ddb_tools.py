"""EmrActivity's EMR DynamoDB tools steps, run natively against the loopback dynalite and
SeaweedFS through ``headrace run``: a round trip (export, then import into another table), a
backup written in the tools' own variants (as AWS left it) restored, and the Hive layout.

Checker: items are read back with botocore's modeled client (not the connector's wire code);
the destination must hold every source item exactly once, every attribute as written.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.formats import emr_tools_line
from tests.services import aws

TOOLS_JAR = "s3://dynamodb-emr-us-east-1/emr-ddb-storage-handler/2.1.0/emr-ddb-2.1.0.jar"
TOOLS_4_JAR = "/usr/share/aws/emr/ddb/lib/emr-dynamodb-tools-4.16.0.jar"
HIVE_RUNNER = ("s3://elasticmapreduce/libs/script-runner/script-runner.jar,"
               "s3://elasticmapreduce/libs/hive/hive-script,--run-hive-script,--hive-versions,"
               "latest,--args,-f,s3://elasticmapreduce/libs/hive/dynamodb/")
UUID_NAME = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _item(i: int) -> dict[str, Any]:
    """Wire items covering every attribute type; some sparse."""
    item: dict[str, Any] = {"id": {"N": str(i)}, "name": {"S": f"item \"{i}\",\n\u00e9"}}
    if i % 2:
        item["blob"] = {"B": base64.b64encode(bytes([i % 256, 0, 255])).decode()}
        item["tags"] = {"SS": [f"t{i}", "common"]}
        item["scores"] = {"NS": [str(i), "0.5"]}
        item["flag"] = {"BOOL": i % 3 == 0}
    if i % 5 == 0:
        item["gone"] = {"NULL": True}
        item["nested"] = {"M": {"list": {"L": [{"N": "-1.25"}, {"NULL": True},
                                                {"BS": ["AAE="]}]}}}
    return item


def _to_boto(av: dict[str, Any]) -> dict[str, Any]:
    ((kind, value),) = av.items()
    if kind == "B":
        return {"B": base64.b64decode(value)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in value]}
    if kind == "M":
        return {"M": {k: _to_boto(v) for k, v in value.items()}}
    if kind == "L":
        return {"L": [_to_boto(v) for v in value]}
    return {kind: value}


def _from_boto(av: dict[str, Any]) -> dict[str, Any]:
    ((kind, value),) = av.items()
    if kind == "B":
        return {"B": base64.b64encode(value).decode()}
    if kind == "BS":
        return {"BS": sorted(base64.b64encode(v).decode() for v in value)}
    if kind in ("SS", "NS"):
        return {kind: sorted(value)}
    if kind == "M":
        return {"M": {k: _from_boto(v) for k, v in value.items()}}
    if kind == "L":
        return {"L": [_from_boto(v) for v in value]}
    return {kind: value}


def _normal(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_boto(_to_boto(v)) for k, v in item.items()}


class Tables:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.made: list[str] = []

    def create(self, *, provisioned: bool = False) -> str:
        name = f"emr_{secrets.token_hex(5)}"
        extra: dict[str, Any] = {"BillingMode": "PAY_PER_REQUEST"}
        if provisioned:
            extra = {"ProvisionedThroughput": {"ReadCapacityUnits": 1000,
                                               "WriteCapacityUnits": 1000}}
        self.client.create_table(TableName=name,
                                 KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                                 AttributeDefinitions=[{"AttributeName": "id",
                                                        "AttributeType": "N"}], **extra)
        self.client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
        self.made.append(name)
        return name

    def put(self, table: str, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), 25):
            left = {table: [{"PutRequest": {"Item": {k: _to_boto(v) for k, v in i.items()}}}
                            for i in items[start:start + 25]]}
            while left:
                left = self.client.batch_write_item(RequestItems=left).get("UnprocessedItems")

    def items(self, table: str) -> dict[int, dict[str, Any]]:
        """id -> item; fails on a duplicate id."""
        out: dict[int, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = self.client.scan(**kwargs)
            for raw in page["Items"]:
                item = {k: _from_boto(v) for k, v in raw.items()}
                key = int(item["id"]["N"])
                assert key not in out, f"id {key} twice"
                out[key] = item
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def tables(services_env: dict[str, str]) -> Iterator[Tables]:
    client = aws.client("dynamodb", services_env["AWS_ENDPOINT_URL_DYNAMODB"])
    made = Tables(client)
    try:
        yield made
    finally:
        for name in made.made:
            client.delete_table(TableName=name)
        client.close()


@pytest.fixture
def s3(services_env: dict[str, str]) -> Iterator[Any]:
    client = aws.client("s3", services_env["AWS_ENDPOINT_URL_S3"])
    try:
        yield client
    finally:
        client.close()


def _definition(tmp_path: Path, *activities: dict[str, Any]) -> Path:
    objects = [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand",
         "failureAndRerunMode": "CASCADE", "role": "DataPipelineDefaultRole",
         "resourceRole": "DataPipelineDefaultResourceRole",
         "pipelineLogUri": (tmp_path / "logs").as_uri()},
        {"id": "Cluster", "name": "Cluster", "type": "EmrCluster", "amiVersion": "3.9.0"},
    ]
    for activity in activities:
        objects.append({"type": "EmrActivity", "runsOn": {"ref": "Cluster"},
                        "name": activity["id"], "maximumRetries": "0", **activity})
    path = tmp_path / f"pipeline-{secrets.token_hex(3)}.json"
    path.write_text(json.dumps({"objects": objects}))
    return path


def _run(definition: Path, env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    full_env = {**os.environ, **env, "HEADRACE_STORE": f"sqlite:///{tmp_path}/store.db"}
    done = subprocess.run([sys.executable, "-m", "engine.cli", "run", str(definition),
                           "--output", "json"], capture_output=True, text=True, env=full_env,
                          timeout=300, check=False)
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    report["returncode"] = done.returncode
    report["stderr"] = done.stderr
    return report


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {i["objectId"]: i["status"] for i in report["instances"]}


def _keys(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix):]] = s3.get_object(Bucket=bucket,
                                                          Key=obj["Key"])["Body"].read()
    return out


def test_export_then_import_round_trips_in_the_tools_format(
        tables: Tables, s3: Any, s3_bucket: str, services_env: dict[str, str],
        tmp_path: Path) -> None:
    source, target = tables.create(provisioned=True), tables.create()
    items = [_item(i) for i in range(240)]
    tables.put(source, items)
    backup = f"s3://{s3_bucket}/backups/2024-01-01-00-00-00"
    # a stale backup at the same place: its data file must be gone, its manifest replaced
    s3.put_object(Bucket=s3_bucket, Key="backups/2024-01-01-00-00-00/stale-file", Body=b"x")
    definition = _definition(
        tmp_path,
        {"id": "Export", "step": f"{TOOLS_JAR},org.apache.hadoop.dynamodb.tools.DynamoDbExport,"
                                 f"{backup},{source},0.25"},
        {"id": "Import", "dependsOn": {"ref": "Export"},
         "step": [f"{TOOLS_JAR},org.apache.hadoop.dynamodb.tools.DynamoDBImport,{backup},"
                  f"{target},0.5"]})
    report = _run(definition, services_env, tmp_path)
    assert report["returncode"] == 0, json.dumps(report["instances"])[:3000]
    assert set(_statuses(report).values()) == {"FINISHED"}

    files = _keys(s3, s3_bucket, "backups/2024-01-01-00-00-00/")
    assert files.pop("_SUCCESS") == b""
    manifest = files.pop("manifest").decode()
    assert manifest.startswith('{"name":"DynamoDB-export","version":3,\n"entries": [\n')
    entries = json.loads(manifest)["entries"]
    assert sorted(e["url"] for e in entries) == sorted(f"{backup}/{n}" for n in files)
    assert all(e["mandatory"] is True for e in entries)
    assert len(files) == 1 and "stale-file" not in files
    assert all(re.fullmatch(UUID_NAME, n) for n in files)
    lines = b"".join(files.values()).decode().splitlines()
    assert len(lines) == len(items)
    by_id = {json.loads(line)["id"]["n"]: json.loads(line) for line in lines}
    assert by_id["5"]["gone"] == {"nULL": True} and by_id["3"]["tags"]["sS"]
    assert by_id["5"]["nested"]["m"]["list"]["l"][1] == {"nULL": True}
    assert by_id["3"]["flag"] == {"bOOL": True} and "b" in by_id["1"]["blob"]

    got = tables.items(target)
    assert got == {i: _normal(item) for i, item in enumerate(items)}


def test_a_backup_as_the_tools_wrote_it_restores(
        tables: Tables, s3: Any, s3_bucket: str, services_env: dict[str, str],
        tmp_path: Path) -> None:
    """Version 4 tools' lines (nULLValue), a gzipped file, a manifest naming the bucket the
    backup was taken in (since moved), and an extra file the manifest does not list."""
    target = tables.create()
    items = [_item(i) for i in range(60)]

    def line(item: dict[str, Any]) -> str:
        return emr_tools_line(item, "nULLValue")

    first = "\n".join(line(i) for i in items[:30]) + "\n"
    second = gzip.compress(("\n".join(line(i) for i in items[30:]) + "\n").encode())
    names = ["0bd5ba52-3e2b-4d31-a7d7-4a1a4d1d6c11", "4f1b3c9e-9a0e-4f53-8d6e-2c1f4b5d7e22.gz"]
    prefix = "moved/backup/"
    s3.put_object(Bucket=s3_bucket, Key=prefix + names[0], Body=first.encode())
    s3.put_object(Bucket=s3_bucket, Key=prefix + names[1], Body=second)
    s3.put_object(Bucket=s3_bucket, Key=prefix + "not-listed", Body=b"garbage\n")
    manifest = ('{"name":"DynamoDB-export","version":3,\n"entries": [\n'
                + ",\n".join('{"url":"s3://original-bucket/2019-05-01/' + n
                             + '","mandatory":true}' for n in names) + "\n]}")
    s3.put_object(Bucket=s3_bucket, Key=prefix + "manifest", Body=manifest.encode())
    s3.put_object(Bucket=s3_bucket, Key=prefix + "_SUCCESS", Body=b"")
    definition = _definition(tmp_path, {
        "id": "Restore", "step": f"{TOOLS_4_JAR},org.apache.hadoop.dynamodb.tools.DynamoDbImport,"
                                 f"s3://{s3_bucket}/{prefix},{target}"})
    report = _run(definition, services_env, tmp_path)
    assert report["returncode"] == 0, json.dumps(report["instances"])[:3000]
    assert tables.items(target) == {i: _normal(item) for i, item in enumerate(items)}


def test_hive_template_export_and_import(tables: Tables, s3: Any, s3_bucket: str,
                                         services_env: dict[str, str], tmp_path: Path) -> None:
    """exportDynamoDBTableToS3 / importDynamoDBTableFromS3: Hive map lines, no manifest; and a
    backup line that is neither shape fails the import naming the file and line."""
    source, target = tables.create(), tables.create()
    items = [_item(i) for i in range(25)]
    tables.put(source, items)
    out = f"s3://{s3_bucket}/hive-export"
    definition = _definition(
        tmp_path,
        {"id": "HiveExport", "step": f"{HIVE_RUNNER}exportDynamoDBTableToS3,"
                                     f"-d,DYNAMODB_INPUT_TABLE={source},-d,S3_OUTPUT_BUCKET={out},"
                                     "-d,DYNAMODB_READ_PERCENT=0.25,"
                                     "-d,DYNAMODB_ENDPOINT=dynamodb.us-east-1.amazonaws.com"},
        {"id": "HiveImport", "dependsOn": {"ref": "HiveExport"},
         "step": f"{HIVE_RUNNER}importDynamoDBTableFromS3,-d,DYNAMODB_OUTPUT_TABLE={target},"
                 f"-d,S3_INPUT_BUCKET={out},-d,DYNAMODB_WRITE_PERCENT=0.25"})
    report = _run(definition, services_env, tmp_path)
    assert report["returncode"] == 0, json.dumps(report["instances"])[:3000]
    files = _keys(s3, s3_bucket, "hive-export/")
    assert list(files) == ["000000_0"]
    first = files["000000_0"].decode().splitlines()[0]
    assert "\x02" in first and "\x03" in first and not first.startswith("{")
    assert tables.items(target) == {i: _normal(item) for i, item in enumerate(items)}

    s3.put_object(Bucket=s3_bucket, Key="bad/000000_0",
                  Body=b'id\x03{"n":"1"}\n{"id": {"n": 2}}\n')
    bad = _definition(tmp_path, {
        "id": "BadImport", "step": f"{TOOLS_JAR},org.apache.hadoop.dynamodb.tools.DynamoDbImport,"
                                   f"s3://{s3_bucket}/bad,{target}"})
    report = _run(bad, services_env, tmp_path)
    assert report["returncode"] == 1
    [instance] = report["instances"]
    assert instance["status"] == "FAILED"
    assert f"s3://{s3_bucket}/bad/000000_0, line 2" in json.dumps(report), report
