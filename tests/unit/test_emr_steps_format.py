"""The EMR DynamoDB tools' line format and manifest, and EmrActivity step recognition."""

from __future__ import annotations

import json

import pytest

from connectors.formats import (
    ConversionError,
    emr_hive_line,
    emr_manifest_entries,
    emr_manifest_text,
    emr_tools_line,
    parse_emr_line,
)
from engine.activities.emr.ddb_tools import null_key_for
from engine.activities.emr.steps import (
    CommandStep,
    HiveScriptStep,
    ToolsStep,
    UnknownStep,
    parse_step,
    split_step,
)

WIRE = {
    "id": {"N": "7"}, "name": {"S": "Ann, \"A\"\n"}, "blob": {"B": "AAEC"},
    "tags": {"SS": ["a", "b"]}, "scores": {"NS": ["1", "2.5"]}, "blobs": {"BS": ["AA=="]},
    "flag": {"BOOL": False}, "gone": {"NULL": True},
    "nested": {"M": {"inner": {"L": [{"S": "x"}, {"NULL": True}, {"M": {}}]}}},
}


def test_tools_line_uses_the_sdk_field_names() -> None:
    line = emr_tools_line(WIRE)
    assert json.loads(line) == {
        "id": {"n": "7"}, "name": {"s": "Ann, \"A\"\n"}, "blob": {"b": "AAEC"},
        "tags": {"sS": ["a", "b"]}, "scores": {"nS": ["1", "2.5"]}, "blobs": {"bS": ["AA=="]},
        "flag": {"bOOL": False}, "gone": {"nULL": True},
        "nested": {"m": {"inner": {"l": [{"s": "x"}, {"nULL": True}, {"m": {}}]}}},
    }
    assert "\n" not in line and line.startswith('{"id":{"n":"7"},')
    assert '"gone":{"nULLValue":true}' in emr_tools_line(WIRE, "nULLValue")


def test_every_variant_reads_back_to_the_wire_item() -> None:
    assert parse_emr_line(emr_tools_line(WIRE)) == WIRE
    assert parse_emr_line(emr_tools_line(WIRE, "nULLValue")) == WIRE
    assert parse_emr_line(emr_hive_line(WIRE)) == WIRE
    assert parse_emr_line(json.dumps(WIRE)) == WIRE  # the wire's own spelling
    hive = 'id\x03{"s":"Seattle"}\x02scores\x03{"nS":["100","30"]}\x02x\x03{"nULLValue":true}'
    assert parse_emr_line(hive + "\n") == {"id": {"S": "Seattle"}, "scores": {"NS": ["100", "30"]},
                                           "x": {"NULL": True}}
    assert parse_emr_line("   \n") is None


@pytest.mark.parametrize("line, where", [
    ('{"id":{"q":"1"}}', "id"), ('{"id":{"n":7}}', "id"), ('{"a":{"m":{"b":{"bOOL":"yes"}}}}',
                                                         "a.b"),
    ("id\x03{broken", "id"), ("no separator here", ""), ('{"id":', ""),
])
def test_a_bad_line_says_which_attribute(line: str, where: str) -> None:
    with pytest.raises(ConversionError) as info:
        parse_emr_line(line)
    assert info.value.path == where


def test_manifest_is_the_tools_text_and_reads_back() -> None:
    text = emr_manifest_text(["s3://b/p/one", "s3://b/p/two"])
    assert text == ('{"name":"DynamoDB-export","version":3,\n"entries": [\n'
                    '{"url":"s3://b/p/one","mandatory":true},\n'
                    '{"url":"s3://b/p/two","mandatory":true}\n]}')
    assert emr_manifest_entries(text) == [("s3://b/p/one", True), ("s3://b/p/two", True)]
    assert json.loads(emr_manifest_text([]))["entries"] == []
    with pytest.raises(ValueError, match="version 2"):
        emr_manifest_entries('{"name":"DynamoDB-export","version":2,"entries":[]}')


def test_tools_steps_are_recognised_in_every_spelling() -> None:
    step = parse_step("s3://dynamodb-emr-us-east-1/emr-ddb-storage-handler/2.1.0/emr-ddb-2.1.0.jar,"
                      "org.apache.hadoop.dynamodb.tools.DynamoDbExport,s3://b/out,Table,0.25")
    assert step == ToolsStep("export", "s3://b/out", "Table", "0.25", step.jar, 2)  # type: ignore[union-attr]
    imp = parse_step("/usr/share/aws/emr/ddb/lib/emr-dynamodb-tools-4.16.0.jar,"
                     "org.apache.hadoop.dynamodb.tools.DynamoDBImport,s3://b/in,T")
    assert isinstance(imp, ToolsStep) and imp.operation == "import" and imp.ratio is None
    assert imp.version == 4 and null_key_for(imp.version) == "nULLValue"
    assert null_key_for(2) == null_key_for(5) == null_key_for(None) == "nULL"
    assert isinstance(parse_step("emr-ddb-2.1.0.jar,org.example.Other,x"), UnknownStep)


def test_hive_script_and_command_steps() -> None:
    step = parse_step("s3://elasticmapreduce/libs/script-runner/script-runner.jar,"
                      "s3://elasticmapreduce/libs/hive/hive-script,--run-hive-script,"
                      "--hive-versions,latest,--args,-f,"
                      "s3://elasticmapreduce/libs/hive/dynamodb/exportDynamoDBTableToS3,"
                      "-d,DYNAMODB_INPUT_TABLE=T,-d,S3_OUTPUT_BUCKET=s3://b/x=1,"
                      "-d,DYNAMODB_READ_PERCENT=0.5")
    assert step == HiveScriptStep(
        "s3://elasticmapreduce/libs/hive/dynamodb/exportDynamoDBTableToS3",
        {"DYNAMODB_INPUT_TABLE": "T", "S3_OUTPUT_BUCKET": "s3://b/x=1",
         "DYNAMODB_READ_PERCENT": "0.5"})
    spark = parse_step("command-runner.jar,spark-submit,--class,org.example.Pi,app.jar,100")
    assert spark == CommandStep(["spark-submit", "--class", "org.example.Pi", "app.jar", "100"])
    assert split_step(r"a.jar,x\,y, z ") == ["a.jar", "x,y", "z"]


def test_spark_targets_from_the_flags_variables() -> None:
    from engine.activities.emr.spark_config import spark_target

    local = spark_target("Cluster", {})
    assert local.local and local.master.startswith("local[")
    assert local.conf["spark.ui.enabled"] == "false"
    assert local.conf["spark.driver.bindAddress"] == "127.0.0.1"
    env = {"HEADRACE_SPARK_MASTER": "spark://all:7077 Big=yarn Kube=k8s://https://k:6443",
           "HEADRACE_SPARK_CONF": "spark.executor.memory=2g\nspark.driver.memory=3g"}
    assert spark_target("Big", env).master == "yarn"
    assert spark_target("Kube", env).master == "k8s://https://k:6443"
    other = spark_target("Other", env)
    assert other.master == "spark://all:7077" and not other.local
    assert other.conf == {"spark.executor.memory": "2g", "spark.driver.memory": "3g"}
    tuned = spark_target(None, {"HEADRACE_SPARK_CONF": "spark.driver.memory=3g"})
    assert tuned.conf["spark.driver.memory"] == "3g" and tuned.local


def test_missing_or_old_java_is_named_with_the_version_needed(
        tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.activities.emr import spark_submit

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    problem = spark_submit._java_problem.__wrapped__()
    assert problem and "Java runtime, version 17 or newer" in problem
    assert "openjdk-17-jre-headless" in problem
    old = tmp_path / "jdk8" / "bin"  # type: ignore[operator]
    old.mkdir(parents=True)
    (old / "java").write_text('#!/bin/sh\necho \'openjdk version "1.8.0_392"\' >&2\n')
    (old / "java").chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(old.parent))
    problem = spark_submit._java_problem.__wrapped__()
    assert problem and "is Java 8" in problem and "17" in problem


def test_spark_steps_arguments() -> None:
    from engine.activities.emr.spark_steps import spark_args

    assert spark_args(parse_step("s3://b/app.jar,com.example.Main,x,y")) == [  # type: ignore[arg-type]
        "--class", "com.example.Main", "s3://b/app.jar", "x", "y"]
    assert spark_args(parse_step("s3://b/job.py,s3://b/in")) == ["s3://b/job.py", "s3://b/in"]  # type: ignore[arg-type]
    assert spark_args(parse_step("command-runner.jar,spark-submit,--class,C,a.jar")) == [  # type: ignore[arg-type]
        "--class", "C", "a.jar"]
    assert spark_args(parse_step("command-runner.jar,/usr/bin/env,true")) is None  # type: ignore[arg-type]


def test_hive_scripts_split_and_substitute() -> None:
    from engine.activities.emr.hive_script import (
        script_variables,
        split_statements,
        substitute,
    )

    text = ("-- a comment; not a statement\nSET x=1;\nSELECT ';' AS semi, \"a;b\", `c;d` "
            "FROM ${input1} WHERE d > '${DAY}' -- trailing\n;\n\n INSERT INTO ${hivevar:out} "
            "SELECT ${UNKNOWN};")
    variables = {"input1": "input1", "DAY": "2024-01-01", "out": "output1"}
    assert split_statements(substitute(text, variables)) == [
        "SET x=1",
        "SELECT ';' AS semi, \"a;b\", `c;d` FROM input1 WHERE d > '2024-01-01'",
        "INSERT INTO output1 SELECT ${UNKNOWN}",
    ]
    assert script_variables(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        script_variables(["novalue"])


def test_a_snapshot_tools_jar_is_recognised_as_a_hadoop_activity_jar() -> None:
    from engine.activities.emr.steps import parse_words

    jar = ("s3://dynamodb-dpl-ap-northeast-1/emr-ddb-storage-handler/4.11.0/"
           "emr-dynamodb-tools-4.11.0-SNAPSHOT-jar-with-dependencies.jar")
    step = parse_words([jar, "org.apache.hadoop.dynamodb.tools.DynamoDBExport", "s3://b/t", "T",
                        "0.25"])
    assert isinstance(step, ToolsStep) and step.version == 4 and step.operation == "export"


def test_script_runner_steps_run_their_script() -> None:
    from engine.activities.emr.steps import ScriptStep

    step = parse_step("s3://elasticmapreduce/libs/script-runner/script-runner.jar,"
                      "s3://b/mysql_create_table.sh,host,db")
    assert step == ScriptStep("s3://b/mysql_create_table.sh", ["host", "db"])
