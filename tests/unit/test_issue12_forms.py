"""The forms the service accepted and headrace used to refuse (issue 12), and the messages:
all independent findings in one pass, every finding naming its file, no noise on
configuration objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.definition import LoadOptions, load
from engine.errors import Report

NOW = datetime(2024, 6, 1, tzinfo=UTC)
ONDEMAND = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"}


def check(*objects: dict[str, Any], **doc: Any) -> Report:
    _, report = load("<test>", text=json.dumps({"objects": list(objects), **doc}), now=NOW)
    return report


def test_type_default_on_the_default_object_is_accepted_silently() -> None:
    report = check({**ONDEMAND, "type": "Default"},
                   {"id": "A", "type": "ShellCommandActivity", "command": "true"},
                   {"id": "Untyped", "myX": "1"})
    assert report.errors == [] and report.warnings == []
    other = check({**ONDEMAND, "type": "Schedule"})
    assert any("should not have a type" in w.message for w in other.warnings)


def test_parameter_types_are_read_in_any_case() -> None:
    report = check(ONDEMAND, {"id": "A", "type": "ShellCommandActivity", "command": "#{myN}"},
                   parameters=[{"id": "myN", "type": "integer", "default": "3"},
                               {"id": "myS", "type": "STRING", "default": "x"},
                               {"id": "myK", "type": "aws::s3::objectkey", "default": "s3://b/k"}])
    assert report.ok and report.warnings == []
    bad = check(ONDEMAND, parameters=[{"id": "myB", "type": "Boolean", "default": "x"}])
    assert [(p.object_id, p.field) for p in bad.errors] == [("myB", "type")]


def test_sql_data_node_takes_the_legacy_connection_fields() -> None:
    report = check(ONDEMAND, {"id": "N", "type": "SqlDataNode", "table": "t",
                              "connectionString": "jdbc:mysql://h:3306/db", "username": "u",
                              "*password": "secret"},
                   {"id": "Out", "type": "S3DataNode", "directoryPath": "s3://b/out"},
                   {"id": "C", "type": "CopyActivity", "input": {"ref": "N"},
                    "output": {"ref": "Out"}})
    assert report.ok and not [w for w in report.warnings if "has no field" in w.message]


def test_the_emr_ebs_objects_are_read_without_noise() -> None:
    report = check(
        ONDEMAND,
        {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-5.0.0",
         "coreEbsConfiguration": {"ref": "Ebs"}, "masterEbsConfiguration": {"ref": "Ebs"},
         "taskEbsConfiguration": {"ref": "Ebs"}, "configuration": {"ref": "Site"}},
        {"id": "Ebs", "type": "EbsConfiguration", "ebsOptimized": "true",
         "ebsBlockDeviceConfig": [{"ref": "Device"}]},
        {"id": "Device", "type": "EbsBlockDeviceConfig", "volumesPerInstance": "2",
         "volumeSpecification": {"ref": "Volume"}},
        {"id": "Volume", "type": "VolumeSpecification", "sizeInGB": "500", "volumeType": "io1",
         "iops": "1000"},
        {"id": "Site", "type": "EmrConfiguration", "classification": "core-site",
         "property": {"ref": "Prop"}},
        {"id": "Prop", "type": "Property", "key": "k", "value": "v"})
    assert report.ok, report.errors
    # one warning, for the cluster headrace does not launch; none for configuration objects
    assert [w.object_id for w in report.warnings] == ["Cluster"]
    wrong = check(ONDEMAND, {"id": "Cluster", "type": "EmrCluster",
                             "coreEbsConfiguration": {"ref": "Volume"}},
                  {"id": "Volume", "type": "VolumeSpecification", "sizeInGB": "1",
                   "volumeType": "gp2"})
    assert [(p.object_id, p.field) for p in wrong.errors] == [("Cluster", "coreEbsConfiguration")]


def test_every_independent_schedule_finding_in_one_pass() -> None:
    report = check({"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"},
                    "workerGroup": "wg"},
                   {"id": "S", "type": "Schedule", "period": "1 fortnight",
                    "startDateTime": "2024-13-01T00:00:00", "endDateTime": "yesterday"})
    assert {(p.object_id, p.field) for p in report.errors} == {
        ("S", "period"), ("S", "startDateTime"), ("S", "endDateTime")}


def test_findings_name_the_file_they_are_in(tmp_path: Path) -> None:
    definition = tmp_path / "pipeline.json"
    definition.write_text(json.dumps({"objects": [
        ONDEMAND, {"id": "A", "type": "ShellCommandActivity", "command": "#{myN} #{myM}",
                   "comand": "x"}]}))
    params = tmp_path / "params.json"
    params.write_text('{"parameters": [\n  {"id": "myN", "type": "Integer"},\n'
                      '  {"id": "myM", "type": "Integer", "bogus": "1"}\n]}')
    values = tmp_path / "values.json"
    values.write_text('{"values": {\n  "myN": "3",\n  "myM": "lots"\n}}')
    _, report = load(str(definition), LoadOptions(parameter_objects=str(params),
                                                  parameter_values_uri=str(values)))
    where = {(p.object_id, p.field): (p.file, p.line) for p in [*report.errors,
                                                                 *report.warnings]}
    assert where[("A", "comand")] == (str(definition), 1)
    assert where[("myM", "bogus")] == (str(params), 3)
    assert where[("myM", "value")] == (str(values), 3)  # the bad value, in the values file
    _, flagged = load(str(definition), LoadOptions(parameter_objects=str(params),
                                                   parameter_values=["myN=x", "myM=1"]))
    [error] = flagged.errors
    assert (error.object_id, error.file, error.line) == ("myN", "--parameter-values", None)
