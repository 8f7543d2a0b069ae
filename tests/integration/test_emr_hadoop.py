"""HadoopActivity on PySpark's Hadoop client libraries (MapReduce's LocalJobRunner in the
driver JVM), and PigActivity's refusal, through ``headrace run`` against the loopback
SeaweedFS. The MapReduce job is a word count compiled here (``tests/fixtures/emr``) against
the Hadoop client jar PySpark ships.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.services import aws

pytestmark = pytest.mark.timeout(900)

SOURCE = Path(__file__).resolve().parents[1] / "fixtures" / "emr" / "WordCount.java"


def _word_count_jar(tmp: Path) -> Path:
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    [api] = sorted(jars.glob("hadoop-client-api-*.jar"))
    javac, jar = shutil.which("javac"), shutil.which("jar")
    assert javac and jar, "javac and jar (a JDK 17) are installed by scripts/install-test-deps"
    classes = tmp / "classes"
    subprocess.run([javac, "-cp", str(api), "-d", str(classes), str(SOURCE)], check=True,
                   timeout=300)
    out = tmp / "wc.jar"
    subprocess.run([jar, "cf", str(out), "-C", str(classes), "."], check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def hadoop_run(tmp_path_factory: pytest.TempPathFactory, services_env: dict[str, str],
               s3_endpoint: str) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hadoop")
    s3 = aws.client("s3", s3_endpoint)
    bucket = f"emr-hadoop-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="jars/wc.jar", Body=_word_count_jar(tmp).read_bytes())
    s3.put_object(Bucket=bucket, Key="text/a.txt", Body=b"to be or\nnot to be\n")
    s3.put_object(Bucket=bucket, Key="text/b.txt", Body=b"be quick\n")
    (tmp / "pre.sh").write_text(f'echo "pre $1" > {tmp}/pre.txt\n')
    objects = [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand",
         "failureAndRerunMode": "CASCADE", "role": "r", "resourceRole": "r",
         "pipelineLogUri": (tmp / "logs").as_uri()},
        {"id": "Cluster", "name": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-6.15.0"},
        {"id": "Pre", "name": "Pre", "type": "ShellScriptConfig",
         "scriptUri": (tmp / "pre.sh").as_uri(), "scriptArgument": "ran"},
        {"id": "Count", "name": "Count", "type": "HadoopActivity", "runsOn": {"ref": "Cluster"},
         "maximumRetries": "0", "jarUri": f"s3://{bucket}/jars/wc.jar", "mainClass": "WordCount",
         "argument": [f"s3://{bucket}/text/", f"s3://{bucket}/counts"],
         "preActivityTaskConfig": {"ref": "Pre"}},
        {"id": "Streaming", "name": "Streaming", "type": "HadoopActivity",
         "runsOn": {"ref": "Cluster"}, "maximumRetries": "0",
         "jarUri": "/home/hadoop/contrib/streaming/hadoop-streaming.jar",
         "argument": ["-mapper", "cat"]},
        {"id": "Pig", "name": "Pig", "type": "PigActivity", "runsOn": {"ref": "Cluster"},
         "script": "A = LOAD 'x'; DUMP A;"},
    ]
    definition = tmp / "pipeline.json"
    definition.write_text(json.dumps({"objects": objects}))
    env = {**os.environ, **services_env, "HEADRACE_STORE": f"sqlite:///{tmp}/store.db"}
    done = subprocess.run([sys.executable, "-m", "engine.cli", "run", str(definition),
                           "--output", "json"], capture_output=True, text=True, env=env,
                          timeout=850, check=False)
    validate = subprocess.run([sys.executable, "-m", "engine.cli", "validate",
                               str(definition)], capture_output=True, text=True, env=env,
                              timeout=120, check=False)
    logs = {p.relative_to(tmp / "logs").as_posix(): p.read_text(errors="replace")
            for p in (tmp / "logs").rglob("*") if p.is_file()}
    after = {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
             for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    for key in after:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    s3.close()
    assert done.stdout, done.stderr[-3000:]
    return {"report": json.loads(done.stdout), "logs": logs, "objects": after, "tmp": tmp,
            "validate": validate.stdout + validate.stderr}


def _status(run: dict[str, Any], object_id: str) -> dict[str, Any]:
    [found] = [i for i in run["report"]["instances"] if i["objectId"] == object_id]
    return found


def test_a_mapreduce_jar_runs_on_the_local_job_runner(hadoop_run: dict[str, Any]) -> None:
    status = _status(hadoop_run, "Count")
    stderr = "".join(t for p, t in hadoop_run["logs"].items()
                     if "/Count/" in "/" + p and p.endswith("stderr"))
    assert status["status"] == "FINISHED", (status["error"], stderr[-3000:])
    assert "LocalJobRunner" in stderr or "job_local" in stderr
    counts = dict(line.split("\t") for key, body in hadoop_run["objects"].items()
                  if key.startswith("counts/part-") for line in body.decode().splitlines())
    assert counts == {"to": "2", "be": "3", "or": "1", "not": "1", "quick": "1"}
    assert "counts/_SUCCESS" in hadoop_run["objects"]
    assert (hadoop_run["tmp"] / "pre.txt").read_text() == "pre ran\n"


def test_a_jar_only_the_cluster_had_is_a_clear_terminal_error(hadoop_run: dict[str, Any]) -> None:
    status = _status(hadoop_run, "Streaming")
    assert status["status"] == "FAILED" and status["attempts"] == 1
    assert "/home/hadoop/contrib/streaming/hadoop-streaming.jar is not on this machine" in \
        status["error"]


def test_pig_is_refused_at_validate_and_at_run(hadoop_run: dict[str, Any]) -> None:
    status = _status(hadoop_run, "Pig")
    assert status["status"] == "FAILED" and status["attempts"] == 1
    assert "Apache Pig is not available" in status["error"] and "HiveActivity" in status["error"]
    assert "Apache Pig is not available" in hadoop_run["validate"]
