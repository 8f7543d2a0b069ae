"""The shared conformance definitions built on the console's DynamoDB templates (EmrActivity
running the EMR DynamoDB tools or the template Hive scripts), unchanged, run end to end with
``headrace run`` against the loopback dynalite and SeaweedFS.

Only parameter values and the AWS endpoint variables differ from what they ran with on AWS.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.services import aws

CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
SAMPLES = "awslabs__data-pipeline-samples__samples_"
DDB_EXPORT = SAMPLES + "dynamo-db-export_DynamoDB-export.json"
DDB_EXPORT_VALUES = SAMPLES + "dynamo-db-export_example-parameters.json"
TABLE_EXPORT = SAMPLES + "DynamoDBExport_DynamoDBTableExport.json"
DDB_TO_DDB = SAMPLES + "dynamodb-to-dynamodb_pipeline.json"
BONOBO = "guardian__bonobo__data-pipeline.json"


@pytest.fixture
def env(services_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **services_env, "HEADRACE_STORE": f"sqlite:///{tmp_path}/store.db",
            "HEADRACE_NOTIFIER": "log"}


@pytest.fixture
def ddb(services_env: dict[str, str]) -> Iterator[Any]:
    client = aws.client("dynamodb", services_env["AWS_ENDPOINT_URL_DYNAMODB"])
    made: list[str] = []
    client.made = made
    try:
        yield client
    finally:
        for name in made:
            client.delete_table(TableName=name)
        client.close()


@pytest.fixture
def s3(services_env: dict[str, str]) -> Iterator[Any]:
    client = aws.client("s3", services_env["AWS_ENDPOINT_URL_S3"])
    try:
        yield client
    finally:
        client.close()


def _table(ddb: Any, items: int = 0) -> str:
    name = f"tpl-{secrets.token_hex(4)}"
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     ProvisionedThroughput={"ReadCapacityUnits": 500, "WriteCapacityUnits": 500})
    ddb.get_waiter("table_exists").wait(TableName=name,
                                        WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
    ddb.made.append(name)
    for start in range(0, items, 25):
        batch = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "n": {"N": str(i)},
                                          "tags": {"SS": ["a", f"t{i}"]}}}}
                 for i in range(start, min(items, start + 25))]
        left: dict[str, Any] = {name: batch}
        while left:
            left = ddb.batch_write_item(RequestItems=left).get("UnprocessedItems")
    return name


def _items(ddb: Any, table: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        for item in page["Items"]:
            assert item["pk"]["S"] not in out
            out[item["pk"]["S"]] = item
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _run(env: dict[str, str], name: str, *flags: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "engine.cli", "run", str(CONFORMANCE / name),
                           "--output", "json", *flags], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    report["returncode"] = done.returncode
    return report


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {i["objectId"]: i["status"] for i in report["instances"]}


def _backup_lines(s3: Any, bucket: str, prefix: str) -> tuple[list[str], list[str]]:
    """(object names below prefix, data lines of the files its manifest lists)."""
    names, lines = [], []
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    for obj in objects:
        names.append(obj["Key"][len(prefix):])
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + "manifest")["Body"].read())
    for entry in manifest["entries"]:
        key = prefix + entry["url"].rsplit("/", 1)[1]
        lines += s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    return names, lines


def _one_backup(s3: Any, bucket: str, prefix: str) -> str:
    """The one timestamped backup directory below prefix."""
    keys = [obj["Key"] for obj in
            s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    dirs = {key.rsplit("/", 1)[0] + "/" for key in keys if key.endswith("/manifest")}
    assert len(dirs) == 1, keys
    return dirs.pop()


def test_dynamodb_export_sample_with_its_values_file(ddb: Any, s3: Any, s3_bucket: str,
                                                     env: dict[str, str],
                                                     tmp_path: Path) -> None:
    table = _table(ddb, 130)
    values = json.loads((CONFORMANCE / DDB_EXPORT_VALUES).read_text())
    values["values"].update(myOutputS3Loc=f"s3://{s3_bucket}/directory/", myDDBTableName=table,
                            myRegion="us-east-1")
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(values))
    report = _run(env, DDB_EXPORT, "--parameter-values-uri", str(values_file))
    assert report["returncode"] == 0, report
    assert _statuses(report) == {"TableBackupActivity": "FINISHED"}
    # "#{myOutputS3Loc}/#{format(...)}" with a value ending in "/" makes "directory//<time>"
    # (which SeaweedFS stores as "directory/<time>")
    backup = _one_backup(s3, s3_bucket, "directory/")
    names, lines = _backup_lines(s3, s3_bucket, backup)
    assert "_SUCCESS" in names and "manifest" in names and len(names) == 3
    assert sorted(json.loads(line)["pk"]["s"] for line in lines) == sorted(
        f"k{i}" for i in range(130))
    assert all('"sS":[' in line and '"n":{"n":"' in line for line in lines)


def test_table_export_sample(ddb: Any, s3: Any, s3_bucket: str, env: dict[str, str]) -> None:
    table = _table(ddb, 40)
    report = _run(env, TABLE_EXPORT, "--parameter-values", f"myOutputS3Loc=s3://{s3_bucket}/out",
                  f"myDDBTableName={table}")
    assert report["returncode"] == 0, report
    backup = _one_backup(s3, s3_bucket, "out/")
    _, lines = _backup_lines(s3, s3_bucket, backup)
    assert len(lines) == 40


def _list_runs(env: dict[str, str], pipeline_id: str) -> dict[str, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "engine.cli", "list-runs", "--pipeline-id",
                           pipeline_id, "--output", "json"], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    if done.returncode != 0:
        return {}
    return {r["objectId"]: r for r in json.loads(done.stdout)["runs"]}


def test_dynamodb_to_dynamodb_sample(ddb: Any, s3: Any, s3_bucket: str,
                                     env: dict[str, str], tmp_path: Path) -> None:
    """Export and import run. The last step's `sudo yum -y update aws-cli` cannot run on a
    machine without sudo and yum (it is the definition's own shell command): it fails and
    would be retried in 10 minutes (AWS's default retryDelay), so the run is stopped once that
    first attempt failed."""
    source, target = _table(ddb, 75), _table(ddb)
    definition = CONFORMANCE / DDB_TO_DDB
    pipeline_id = "df-" + hashlib.sha256(str(definition.resolve()).encode()).hexdigest()[:16]
    run = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", str(definition), "--output", "json",
         "--parameter-values", f"myS3LogsPath={tmp_path.as_uri()}/logs",
         f"myDDBSourceTableName={source}", f"myDDBDestinationTableName={target}",
         f"myTempS3Folder=s3://{s3_bucket}/temp"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        runs: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline and run.poll() is None:
            runs = _list_runs(env, pipeline_id)
            cleanup = runs.get("S3CleanupActivity", {})
            if cleanup.get("attempts", 0) >= 1 and cleanup.get("status") != "RUNNING":
                break
            time.sleep(0.5)
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=60)
    assert runs["TableBackupActivity"]["status"] == "FINISHED", runs
    assert runs["TableLoadActivity"]["status"] == "FINISHED", runs
    assert _items(ddb, target) == _items(ddb, source)
    cleanup = runs["S3CleanupActivity"]
    assert cleanup["status"] != "FINISHED" and "code 127" in (cleanup.get("error") or ""), runs


def test_bonobo_two_table_backup(ddb: Any, s3: Any, s3_bucket: str, env: dict[str, str]) -> None:
    keys, users = _table(ddb, 30), _table(ddb, 55)
    # an open-ended daily schedule from the activation: --end takes in its first interval
    end = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
    report = _run(env, BONOBO, "--parameter-values", f"myOutputS3Bucket=s3://{s3_bucket}",
                  f"myKeysDDBTableName={keys}", f"myUsersDDBTableName={users}",
                  "myRegion=us-east-1", "--end", end)
    assert report["returncode"] == 0, report
    assert set(_statuses(report).values()) == {"FINISHED"}
    for table, count in ((keys, 30), (users, 55)):
        _, lines = _backup_lines(s3, s3_bucket, _one_backup(s3, s3_bucket, f"{table}/"))
        assert len(lines) == count
