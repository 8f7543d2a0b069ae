"""EmrActivity Spark steps on real PySpark in local mode (this machine's Java 17), through
``headrace run``, against the loopback SeaweedFS.

One run of one definition for the module (Spark's JVM start-up is seconds): a
``command-runner.jar,spark-submit`` step whose application, input and output are ``s3://``
(staged in, uploaded after success with ``_SUCCESS`` last), with ``preStepCommand`` and
``postStepCommand``; and a step that outlives its ``attemptTimeout``: its application is
killed and its output never uploaded. Spans go to the console exporter, so the step's span,
its application id and the driver's ``TRACEPARENT`` are checked against each other.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.otel_kit import spans_in
from tests.services import aws

pytestmark = pytest.mark.timeout(900)

JOB = '''
import os, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("headrace-test").getOrCreate()
rows = spark.read.csv(sys.argv[1], header=True)
print("TRACEPARENT=" + os.environ.get("TRACEPARENT", ""))
print("rows=%d" % rows.count())
rows.groupBy("kind").count().orderBy("kind").write.csv(sys.argv[2], header=True)
spark.stop()
'''

SLOW = '''
import os, sys, time
with open(sys.argv[1], "w") as f:  # the Python driver runs once spark-submit's JVM is up
    f.write(str(os.getpid()))
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("headrace-slow").getOrCreate()
time.sleep(600)
'''


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory: pytest.TempPathFactory, services_env: dict[str, str],
              s3_endpoint: str) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("spark")
    started = time.time()
    s3 = aws.client("s3", s3_endpoint)
    bucket = f"emr-spark-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app/job.py", Body=JOB.encode())
    csv = "id,kind\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(101))
    s3.put_object(Bucket=bucket, Key="in/data.csv", Body=csv.encode())
    (tmp / "slow.py").write_text(SLOW)
    pid_file = tmp / "slow.pid"
    objects = [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand",
         "failureAndRerunMode": "CASCADE", "role": "r", "resourceRole": "r",
         "pipelineLogUri": (tmp / "logs").as_uri()},
        {"id": "Cluster", "name": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-6.15.0",
         "coreInstanceCount": "4"},
        {"id": "Job", "name": "Job", "type": "EmrActivity", "runsOn": {"ref": "Cluster"},
         "maximumRetries": "0",
         "preStepCommand": f"echo pre-step > {tmp}/pre.txt",
         "postStepCommand": "echo post-step-ran",
         "step": "command-runner.jar,spark-submit,--deploy-mode,cluster,--master,yarn,"
                 f"s3://{bucket}/app/job.py,s3://{bucket}/in/data.csv,"
                 f"s3://{bucket}/out/counts"},
        {"id": "Slow", "name": "Slow", "type": "EmrActivity", "runsOn": {"ref": "Cluster"},
         "maximumRetries": "0", "attemptTimeout": "75 seconds",
         "step": f"command-runner.jar,spark-submit,{(tmp / 'slow.py').as_uri()},{pid_file},"
                 f"s3://{bucket}/never"},
    ]
    definition = tmp / "pipeline.json"
    definition.write_text(json.dumps({"objects": objects}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(services_env)
    env.update({"HEADRACE_STORE": f"sqlite:///{tmp}/store.db", "OTEL_TRACES_EXPORTER": "console",
                "OTEL_METRICS_EXPORTER": "none"})
    done = subprocess.run([sys.executable, "-m", "engine.cli", "run", str(definition),
                           "--output", "json", "--spark-conf", "spark.driver.memory=768m"],
                          capture_output=True, text=True, env=env, timeout=850, check=False)
    logs = {p.relative_to(tmp / "logs").as_posix(): p.read_text(errors="replace")
            for p in (tmp / "logs").rglob("*") if p.is_file()}
    objects_after = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                     for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    for key in objects_after:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    s3.close()
    assert done.stdout, done.stderr[-3000:]
    return {"report": json.loads(done.stdout), "spans": spans_in(done.stderr), "logs": logs,
            "objects": objects_after, "tmp": tmp, "pid_file": pid_file,
            "stderr": done.stderr, "started": started}


def _instance(run: dict[str, Any], object_id: str) -> dict[str, Any]:
    [found] = [i for i in run["report"]["instances"] if i["objectId"] == object_id]
    return found


def _log(run: dict[str, Any], object_id: str, name: str) -> str:
    return "".join(text for path, text in run["logs"].items()
                   if f"/{object_id}" in "/" + path and path.endswith(name))


def test_a_spark_submit_step_stages_s3_and_uploads_its_output(spark_run: dict[str, Any]) -> None:
    job = _instance(spark_run, "Job")
    assert job["status"] == "FINISHED", (job, _log(spark_run, "Job", "stderr")[-3000:])
    objects = spark_run["objects"]
    parts = sorted(k for k in objects if k.startswith("out/counts/part-"))
    assert parts and "out/counts/_SUCCESS" in objects
    assert not [k for k in objects if k.endswith(".crc")]
    lines = [line for p in parts for line in objects[p].decode().splitlines()
             if line and line != "kind,count"]
    assert sorted(lines) == ["a,51", "b,50"]
    stdout = _log(spark_run, "Job", "stdout")
    assert "rows=101" in stdout and "post-step-ran" in stdout
    assert (spark_run["tmp"] / "pre.txt").read_text() == "pre-step\n"
    events = _log(spark_run, "Job", "events")
    assert "--deploy-mode cluster --master yarn replaced by --master local[" in events
    assert re.search(r"Spark application local-\d+", events), events
    assert "uploaded output s3://" in events


def test_the_step_span_carries_the_app_id_and_is_the_drivers_traceparent(
        spark_run: dict[str, Any]) -> None:
    steps = [s for s in spark_run["spans"] if s["name"] == "EMR step 1"
             and s["attributes"].get("headrace.emr.step_kind") == "CommandStep"
             and "headrace.spark.app_id" in s["attributes"]]
    assert steps, [s["name"] for s in spark_run["spans"]]
    app_ids = {s["attributes"]["headrace.spark.app_id"] for s in steps}
    stdout = _log(spark_run, "Job", "stdout")
    m = re.search(r"TRACEPARENT=00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\n", stdout)
    assert m, stdout
    [step] = [s for s in steps if s["context"]["span_id"].removeprefix("0x") == m[2]]
    assert step["context"]["trace_id"].removeprefix("0x") == m[1]
    assert step["attributes"]["headrace.spark.app_id"] in app_ids
    assert re.fullmatch(r"local-\d+", step["attributes"]["headrace.spark.app_id"])


def test_attempt_timeout_kills_the_application_and_uploads_nothing(
        spark_run: dict[str, Any]) -> None:
    slow = _instance(spark_run, "Slow")
    assert slow["status"] in ("TIMEDOUT", "FAILED"), slow
    assert "time" in (slow["error"] or "").lower(), slow
    if spark_run["pid_file"].exists():  # the JVM was up and had started the Python driver
        pid = int(spark_run["pid_file"].read_text())
        assert not Path(f"/proc/{pid}").exists()  # the driver is gone
    leftover = subprocess.run(["pgrep", "-f", "headrace-slow|slow.py"], capture_output=True,
                              text=True, check=False).stdout.split()
    assert not leftover
    assert not [k for k in spark_run["objects"] if k.startswith("never")]
    assert not [p for p in Path(tempfile.gettempdir()).glob("headrace-step*")
                if p.stat().st_mtime >= spark_run["started"]]  # staging removed
