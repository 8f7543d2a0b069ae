"""HiveActivity and HiveCopyActivity on Spark SQL with Hive support (local PySpark, a Derby
metastore in the attempt's directory), through ``headrace run`` against the loopback SeaweedFS
and dynalite. One run for the module: Spark's start-up is seconds.

* HiveActivity: ``${input1}`` (CSV on S3), ``${input2}`` (a RegEx format: Hive's RegexSerDe),
  ``${output1}`` (CSV on S3, replacing what was there), a ``scriptVariable``, a query printed
  to stdout, and a Hive-format table of the script's own (needs Hive support).
* HiveCopyActivity: a DynamoDBDataNode through headrace's DynamoDB connector to S3, with
  ``filterSql``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.services import aws

pytestmark = pytest.mark.timeout(900)

SCRIPT = """
-- totals per kind, at least ${MINIMUM}
INSERT OVERWRITE TABLE ${output1}
SELECT kind, SUM(amount) AS total, COUNT(*) AS n FROM ${input1}
WHERE amount >= ${hivevar:MINIMUM} GROUP BY kind;
SELECT COUNT(*) FROM ${input1};
SELECT status, COUNT(*) FROM ${input2} GROUP BY status ORDER BY status;
CREATE TABLE kept (x INT) STORED AS TEXTFILE;
INSERT INTO kept SELECT CAST(id AS INT) FROM ${input1} WHERE id < 3;
SELECT 'kept', SUM(x) FROM kept;
"""


@pytest.fixture(scope="module")
def hive_run(tmp_path_factory: pytest.TempPathFactory, services_env: dict[str, str],
             s3_endpoint: str, dynamodb_endpoint: str) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hive")
    started = time.time()
    s3 = aws.client("s3", s3_endpoint)
    ddb = aws.client("dynamodb", dynamodb_endpoint)
    bucket = f"emr-hive-{os.getpid()}"
    table = f"hive_{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)
    rows = "".join(f'{i},"{"ab"[i % 2]}",{i * 1.5}\n' for i in range(40))
    s3.put_object(Bucket=bucket, Key="sales/part-1.csv", Body=rows.encode())
    log = "".join(f"10.0.0.{i} GET /p{i} {200 if i % 3 else 404}\n" for i in range(9))
    s3.put_object(Bucket=bucket, Key="logs/access.log", Body=log.encode())
    s3.put_object(Bucket=bucket, Key="totals/stale.csv", Body=b"old,1,1\n")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.get_waiter("table_exists").wait(TableName=table,
                                        WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
    for i in range(12):
        ddb.put_item(TableName=table, Item={"id": {"N": str(i)}, "name": {"S": f"n{i}"},
                                            "n": {"N": str(i)}})
    objects = [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand",
         "failureAndRerunMode": "CASCADE", "role": "r", "resourceRole": "r",
         "pipelineLogUri": (tmp / "logs").as_uri()},
        {"id": "Cluster", "name": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-6.15.0"},
        {"id": "SalesFormat", "name": "SalesFormat", "type": "CSV",
         "column": ["id BIGINT", "kind STRING", "amount DOUBLE"]},
        {"id": "TotalsFormat", "name": "TotalsFormat", "type": "CSV",
         "column": ["kind STRING", "total DOUBLE", "n BIGINT"]},
        {"id": "LogFormat", "name": "LogFormat", "type": "RegEx",
         "inputRegEx": "(\\S+) (\\S+) (\\S+) (\\d+)",
         "column": ["host STRING", "method STRING", "path STRING", "status STRING"]},
        {"id": "ItemsFormat", "name": "ItemsFormat", "type": "DynamoDBDataFormat",
         "column": ["id BIGINT", "name STRING", "n BIGINT"]},
        {"id": "Sales", "name": "Sales", "type": "S3DataNode", "dataFormat": {"ref": "SalesFormat"},
         "directoryPath": f"s3://{bucket}/sales"},
        {"id": "Logs", "name": "Logs", "type": "S3DataNode", "dataFormat": {"ref": "LogFormat"},
         "filePath": f"s3://{bucket}/logs/access.log"},
        {"id": "Totals", "name": "Totals", "type": "S3DataNode",
         "dataFormat": {"ref": "TotalsFormat"}, "directoryPath": f"s3://{bucket}/totals"},
        {"id": "Items", "name": "Items", "type": "DynamoDBDataNode", "tableName": table,
         "dataFormat": {"ref": "ItemsFormat"}, "readThroughputPercent": "0.5"},
        {"id": "Copied", "name": "Copied", "type": "S3DataNode", "directoryPath":
            f"s3://{bucket}/copied"},
        {"id": "Summarize", "name": "Summarize", "type": "HiveActivity",
         "runsOn": {"ref": "Cluster"}, "maximumRetries": "0",
         "input": [{"ref": "Sales"}, {"ref": "Logs"}], "output": {"ref": "Totals"},
         "scriptVariable": "MINIMUM=15", "hiveScript": SCRIPT},
        {"id": "CopyItems", "name": "CopyItems", "type": "HiveCopyActivity",
         "runsOn": {"ref": "Cluster"}, "maximumRetries": "0",
         "input": {"ref": "Items"}, "output": {"ref": "Copied"}, "filterSql": "n > 5"},
    ]
    definition = tmp / "pipeline.json"
    definition.write_text(json.dumps({"objects": objects}))
    env = {**os.environ, **services_env, "HEADRACE_STORE": f"sqlite:///{tmp}/store.db"}
    done = subprocess.run([sys.executable, "-m", "engine.cli", "run", str(definition),
                           "--output", "json"], capture_output=True, text=True, env=env,
                          timeout=850, check=False)
    logs = {p.relative_to(tmp / "logs").as_posix(): p.read_text(errors="replace")
            for p in (tmp / "logs").rglob("*") if p.is_file()}
    after = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
             for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    for key in after:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    ddb.delete_table(TableName=table)
    s3.close()
    ddb.close()
    assert done.stdout, done.stderr[-3000:]
    return {"report": json.loads(done.stdout), "logs": logs, "objects": after, "tmp": tmp,
            "started": started}


def _status(run: dict[str, Any], object_id: str) -> dict[str, Any]:
    [found] = [i for i in run["report"]["instances"] if i["objectId"] == object_id]
    return found


def _why(run: dict[str, Any], object_id: str) -> str:
    """A failed instance's error and the lines of its driver's stderr that say why."""
    stderr = _log(run, object_id, "stderr").splitlines()
    lines = [line for line in stderr if "headrace:" in line or "Exception" in line]
    return f"{_status(run, object_id)['error']}\n" + "\n".join(lines[:20])


def _log(run: dict[str, Any], object_id: str, name: str) -> str:
    return "".join(text for path, text in run["logs"].items()
                   if f"/{object_id}/" in "/" + path and path.endswith(name))


def _csv_rows(objects: dict[str, bytes], prefix: str) -> list[str]:
    return sorted(line for key, body in objects.items()
                  if key.startswith(prefix) and "/part-" in key
                  for line in body.decode().splitlines() if line)


def test_hive_activity_tables_variables_and_output(hive_run: dict[str, Any]) -> None:
    status = _status(hive_run, "Summarize")
    assert status["status"] == "FINISHED", _why(hive_run, "Summarize")
    # amount = i * 1.5 >= 15 <=> i >= 10: kinds a (even) and b (odd) of 10..39
    expected = {"a": (sum(i * 1.5 for i in range(10, 40, 2)), 15),
                "b": (sum(i * 1.5 for i in range(11, 40, 2)), 15)}
    got = {r.split(",")[0]: (float(r.split(",")[1]), int(r.split(",")[2]))
           for r in _csv_rows(hive_run["objects"], "totals/")}
    assert got == expected
    assert "totals/stale.csv" not in hive_run["objects"]  # INSERT OVERWRITE replaced it
    assert "totals/_SUCCESS" in hive_run["objects"]
    stdout = _log(hive_run, "Summarize", "stdout").splitlines()
    assert "40" in stdout
    assert "200\t6" in stdout and "404\t3" in stdout  # the RegEx table
    assert "kept\t3" in stdout  # a Hive-format table in the private metastore


def test_hive_copy_activity_from_dynamodb_with_filter_sql(hive_run: dict[str, Any]) -> None:
    status = _status(hive_run, "CopyItems")
    assert status["status"] == "FINISHED", _why(hive_run, "CopyItems")
    rows = _csv_rows(hive_run["objects"], "copied/")
    assert rows == sorted(f"{i},n{i},{i}" for i in range(6, 12))


def test_the_metastore_and_staging_do_not_outlive_the_attempt(hive_run: dict[str, Any]) -> None:
    import tempfile

    leftovers = [p for p in hive_run["tmp"].rglob("metastore_db")] + \
        [p for p in hive_run["tmp"].rglob("hive") if p.is_dir() and any(p.iterdir())] + \
        [p for p in Path(tempfile.gettempdir()).glob("headrace-hive-*")
         if p.stat().st_mtime >= hive_run["started"]]
    assert not leftovers
