"""Validation rules, one test each: every finding names the object id and the field and says
what would be valid; errors block, warnings do not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.definition import LoadOptions, load
from engine.errors import Report

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SCHEDULE = {"id": "S", "type": "Schedule", "period": "1 day",
            "startDateTime": "2024-07-01T00:00:00"}
DEFAULT = {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"},
           "workerGroup": "wg"}


def check(*objects: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
          values: dict[str, Any] | None = None, default: dict[str, Any] | None = None,
          strict: bool = False) -> Report:
    """Validate ``objects`` with a Default and a daily Schedule S (unless given)."""
    ids = {o["id"] for o in objects}
    base = [o for o in ((default or DEFAULT), SCHEDULE) if o["id"] not in ids]
    doc: dict[str, Any] = {"objects": [*base, *objects]}
    if parameters is not None:
        doc["parameters"] = parameters
    if values is not None:
        doc["values"] = values
    _, report = load("<test>", text=json.dumps(doc), strict=strict, now=NOW)
    return report


def errors(report: Report) -> dict[tuple[str | None, str | None], str]:
    return {(p.object_id, p.field): p.message for p in report.errors}


def warnings(report: Report) -> dict[tuple[str | None, str | None], str]:
    return {(p.object_id, p.field): p.message for p in report.warnings}


def shell(oid: str = "A", **fields: Any) -> dict[str, Any]:
    return {"id": oid, "type": "ShellCommandActivity", "command": "true", **fields}


def s3(oid: str, **fields: Any) -> dict[str, Any]:
    return {"id": oid, "type": "S3DataNode", "directoryPath": f"s3://b/{oid}", **fields}


def test_a_clean_definition_has_no_findings() -> None:
    report = check(shell("A", input={"ref": "In"}), s3("In"))
    assert report.errors == [] and report.warnings == []


def test_missing_required_fields() -> None:
    report = check({"id": "Sql", "type": "SqlActivity", "script": "select 1"},
                   {"id": "Copy", "type": "CopyActivity", "input": {"ref": "In"}}, s3("In"),
                   {"id": "Node", "type": "RedshiftDataNode", "tableName": "t"})
    got = errors(report)
    assert got[("Sql", "database")] == "SqlActivity requires 'database'"
    assert got[("Copy", "output")] == "CopyActivity requires 'output'"
    assert got[("Node", "database")] == "RedshiftDataNode requires 'database'"


def test_one_of_groups_neither_and_both() -> None:
    report = check({"id": "N", "type": "ShellCommandActivity"},
                   shell("B", scriptUri="s3://b/x.sh"),
                   {"id": "D", "type": "S3DataNode"})
    got = errors(report)
    assert got[("N", "command")] == "ShellCommandActivity needs one of 'command', 'scriptUri'"
    assert got[("B", "scriptUri")] == ("ShellCommandActivity takes only one of 'command', "
                                       "'scriptUri', got 'command', 'scriptUri'")
    assert got[("D", "filePath")] == "S3DataNode needs one of 'filePath', 'directoryPath'"


def test_unknown_fields_are_warnings_with_did_you_mean() -> None:
    report = check(shell("A", comand="ls", mycomment="x"), {"id": "Parent", "bogusField": "1"},
                   {**SCHEDULE, "id": "S2", "maxActiveInstances": "1"})
    assert report.ok, report.errors
    got = warnings(report)
    assert got[("A", "comand")] == ("ShellCommandActivity has no field 'comand' (did you mean "
                                    "'command'?); it is ignored")
    assert "user fields start with 'my' followed by an upper-case letter" in got[
        ("A", "mycomment")]
    assert got[("Parent", "bogusField")].startswith("unknown field 'bogusField'")
    # AWS's own sample carries maxActiveInstances on a Schedule: the service ran it
    assert got[("S2", "maxActiveInstances")] == ("Schedule has no field 'maxActiveInstances'; "
                                                 "it is ignored")


def test_strict_makes_unknown_fields_errors() -> None:
    doc = {"objects": [DEFAULT, SCHEDULE, shell("A", comand="ls"),
                       {"id": "Parent", "bogusField": "1"}]}
    _, report = load("<test>", LoadOptions(strict_fields=True), text=json.dumps(doc), now=NOW)
    got = errors(report)
    assert got[("A", "comand")] == ("ShellCommandActivity has no field 'comand' (did you mean "
                                    "'command'?) (--strict)")
    assert ("Parent", "bogusField") in got


def test_an_unknown_field_still_needs_its_reference_to_exist() -> None:
    report = check(shell("A", myNote="x", bogus={"ref": "Nowhere"}))
    assert "'bogus' refers to 'Nowhere', which does not exist" in errors(report)[("A", "bogus")]


def test_user_fields_are_fine_anywhere() -> None:
    report = check(shell("A", myComment="x", my_custom="y", myRef={"ref": "S"}))
    assert report.ok
    assert not warnings(report)


def test_unknown_fields_on_types_headrace_only_reads_are_warnings() -> None:
    report = check({"id": "Emr", "type": "EmrActivity", "step": "a.jar", "runsOn":
                    {"ref": "Cluster"}, "someNewEmrOption": "x"},
                   {"id": "Cluster", "type": "EmrCluster", "releaseLabel": "emr-5.0.0"},
                   {"id": "Ec2", "type": "Ec2Resource", "role": "r", "resourceRole": "rr",
                    "instanceType": "m1.small", "someNewEc2Option": "x"})
    assert report.ok, report.errors
    got = warnings(report)
    assert "EmrActivity has no field 'someNewEmrOption'" in got[("Emr", "someNewEmrOption")]
    assert "not known to headrace and is ignored" in got[("Ec2", "someNewEc2Option")]


@pytest.mark.parametrize(("field", "given", "message"), [
    ("maximumRetries", "lots", "'maximumRetries': 'lots' is not a whole number"),
    ("maximumRetries", "9", "'maximumRetries': 9 is above the maximum of 5"),
    ("maximumRetries", "-1", "'maximumRetries': -1 is below the minimum of 0"),
    ("stage", "yes", "'stage': 'yes' is not \"true\" or \"false\""),
    ("failureAndRerunMode", "sometimes", "'failureAndRerunMode': 'sometimes' is not one of "
                                         "cascade, none"),
    ("retryDelay", "ten minutes", "is not of the form 'N units'"),
    ("attemptTimeout", "1 fortnight", "unknown unit 'fortnight'"),
])
def test_wrongly_typed_fields(field: str, given: str, message: str) -> None:
    got = errors(check(shell("A", **{field: given})))
    assert message in got[("A", field)]


def test_enums_are_case_insensitive_and_did_you_mean() -> None:
    report = check(shell("A", failureAndRerunMode="CASCADE"),
                   {"id": "R", "type": "RedshiftCopyActivity", "insertMode": "TRUNCATE",
                    "input": {"ref": "In"}, "output": {"ref": "Out"}}, s3("In"), s3("Out"))
    assert ("A", "failureAndRerunMode") not in errors(report)
    bad = errors(check({"id": "R", "type": "RedshiftCopyActivity", "insertMode": "TRUNCAT"}))
    assert "(did you mean 'TRUNCATE'?)" in bad[("R", "insertMode")]


def test_a_reference_where_text_belongs_and_text_where_a_reference_belongs() -> None:
    got = errors(check(shell("A", runsOn="MyResource", command={"ref": "S"})))
    assert got[("A", "runsOn")] == ("'runsOn' must be a reference, {\"ref\": \"<object id>\"}, "
                                    "got the string 'MyResource'")
    assert got[("A", "command")] == "'command' takes a string, not a reference"


def test_references_of_the_wrong_type() -> None:
    report = check(shell("A", runsOn={"ref": "Alarm"}, input={"ref": "S"},
                         onFail={"ref": "In"}), s3("In"),
                   {"id": "Alarm", "type": "SnsAlarm", "topicArn": "t", "subject": "s",
                    "message": "m", "role": "r"})
    got = errors(report)
    assert got[("A", "runsOn")] == ("'runsOn' refers to 'Alarm' of type SnsAlarm; it must "
                                    "refer to a resource")
    assert got[("A", "input")] == ("'input' refers to 'S' of type Schedule; it must refer to a "
                                   "datanode")
    assert got[("A", "onFail")] == ("'onFail' refers to 'In' of type S3DataNode; it must refer "
                                    "to a action")


def test_references_to_missing_objects_suggest_or_list_what_is_valid() -> None:
    report = check(shell("Copy", input={"ref": "InptNode"}, onFail={"ref": "missingId"}),
                   s3("InputNode"),
                   {"id": "Alarm", "type": "SnsAlarm", "topicArn": "t", "subject": "s",
                    "message": "m", "role": "r"})
    got = errors(report)
    assert got[("Copy", "input")] == ("'input' refers to 'InptNode', which does not exist "
                                      "(did you mean 'InputNode'?)")
    assert got[("Copy", "onFail")] == ("'onFail' refers to 'missingId', which does not exist "
                                       "(objects it can refer to: 'Alarm')")


def test_a_single_valued_field_given_a_list() -> None:
    got = errors(check(shell("A", command=["a", "b"])))
    assert got[("A", "command")] == "'command' takes one value, got 2"


def test_runtime_fields_cannot_be_written() -> None:
    got = errors(check(shell("A", **{"@status": "FINISHED"})))
    assert "'@status' is a runtime field set by the engine" in got[("A", "@status")]


def test_unknown_type_with_suggestion() -> None:
    got = errors(check({"id": "A", "type": "ShellComandActivity", "command": "x"}))
    assert got[("A", "type")].startswith("unknown type 'ShellComandActivity' (did you mean "
                                         "'ShellCommandActivity'?)")


def test_duplicate_ids_and_an_empty_definition() -> None:
    got = errors(check(shell("A"), shell("A")))
    assert got[("A", "id")] == "two objects have this id (ids must be unique)"
    _, report = load("<test>", text='{"objects": []}')
    assert errors(report)[(None, None)] == "the definition has no objects"


def test_parent_cycle_is_spelled_out() -> None:
    got = errors(check({"id": "P1", "parent": {"ref": "P2"}}, {"id": "P2", "parent":
                                                                 {"ref": "P1"}}))
    assert got[("P1", "parent")] == "parent chain is a cycle: P1 -> P2 -> P1"


# --- schedules ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"period": "5 minutes"}, "period",
     "period '5 minutes' is shorter than the minimum scheduling interval of 15 minutes"),
    ({"period": "899 seconds"}, "period", "shorter than the minimum scheduling interval of 15 "
                                          "minutes"),
    ({"period": "4 years"}, "period", "period '4 years' is longer than the maximum of 3 years"),
    ({"period": "every day"}, "period", "period 'every day' is not of the form 'N units'"),
    ({"endDateTime": "2024-06-30T00:00:00"}, "endDateTime",
     "endDateTime 2024-06-30T00:00:00 is not after startDateTime 2024-07-01T00:00:00"),
    ({"endDateTime": "2024-08-01T00:00:00", "occurrences": "3"}, "occurrences",
     "Schedule cannot have both 'endDateTime' and 'occurrences'"),
    ({"occurrences": "0"}, "occurrences", "occurrences must be at least 1"),
    ({"startAt": "WHEN_I_SAY"}, "startAt", "startAt 'WHEN_I_SAY' is not one of "
                                           "FIRST_ACTIVATION_DATE_TIME"),
    ({"startDateTime": "2024-07-01"}, "startDateTime", "is not of the form YYYY-MM-DDTHH:MM:SS"),
])
def test_schedule_rules(fields: dict[str, str], field: str, message: str) -> None:
    got = errors(check({**SCHEDULE, **fields}))
    assert message in got[("S", field)]


def test_a_fifteen_minute_period_is_the_minimum_and_is_fine() -> None:
    assert check({**SCHEDULE, "period": "15 minutes"}).ok
    assert check({**SCHEDULE, "period": "900 seconds"}).ok


def test_schedule_values_from_parameters_are_checked_when_given() -> None:
    schedule = {**SCHEDULE, "period": "#{myPeriod}"}
    template = check(schedule, parameters=[{"id": "myPeriod"}])
    assert template.ok
    assert any(p.message.startswith("cannot be checked until its values are given")
               for p in template.warnings if (p.object_id, p.field) == ("S", "period"))
    got = errors(check(schedule, parameters=[{"id": "myPeriod"}], values={"myPeriod":
                                                                          "10 minutes"}))
    assert "shorter than the minimum scheduling interval of 15 minutes" in got[("S", "period")]
    strict = check(schedule, parameters=[{"id": "myPeriod"}], strict=True)
    assert [p.message for p in strict.errors if p.object_id == "S"] == [
        "cannot be checked until its values are given: parameter 'myPeriod' has no value "
        "(give it in \"values\", --parameter-values or --parameter-values-uri, or give the "
        "parameter a \"default\")",
        "#{myPeriod} at character 2: parameter 'myPeriod' has no value"]


def test_delays_below_aws_minimums_are_warnings() -> None:
    report = check(shell("A", retryDelay="30 seconds", attemptTimeout="5 minutes",
                         lateAfterTimeout="1 minute", reportProgressTimeout="10 minutes",
                         precondition={"ref": "P"}),
                   {"id": "P", "type": "ShellCommandPrecondition", "command": "true",
                    "preconditionTimeout": "2 minutes"})
    assert report.ok, report.errors
    got = warnings(report)
    assert got[("A", "retryDelay")] == ("'retryDelay': '30 seconds' is below AWS's minimum of 2 "
                                        "minutes (allowed in headrace)")
    assert "below AWS's minimum of 15 minutes" in got[("A", "attemptTimeout")]
    assert "below AWS's minimum of 15 minutes" in got[("A", "lateAfterTimeout")]
    assert "below AWS's minimum of 15 minutes" in got[("A", "reportProgressTimeout")]
    assert "below AWS's minimum of 15 minutes" in got[("P", "preconditionTimeout")]


def test_missing_schedule_on_a_scheduled_pipeline() -> None:
    got = errors(check(shell("A"), default={"id": "Default", "scheduleType": "cron"}))
    assert "needs a 'schedule' on every activity and data node" in got[("A", "schedule")]


def test_ondemand_rules() -> None:
    ondemand = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"}
    assert check(shell("A"), default=ondemand).ok
    got = errors(check(shell("A", scheduleType="ondemand"), default=ondemand))
    assert got[("A", "scheduleType")] == ("scheduleType ondemand can only be set on the Default "
                                          "object")
    mixed = errors(check(shell("A", scheduleType="cron"), default=ondemand))
    assert mixed[("A", "scheduleType")] == ("an ondemand pipeline cannot mix in other schedule "
                                            "types")
    with_schedule = check(shell("A", schedule={"ref": "S"}), default=ondemand)
    assert with_schedule.ok
    assert "its 'schedule' is not used" in warnings(with_schedule)[("A", "schedule")]


def test_cascade_with_a_backfill_warns_like_aws() -> None:
    past = {**SCHEDULE, "startDateTime": "2024-01-01T00:00:00"}
    report = check(past, shell("A"), default={**DEFAULT, "failureAndRerunMode": "cascade"})
    assert report.ok
    message = warnings(report)[("Default", "failureAndRerunMode")]
    assert "'cascade'" in message and "2024-01-01T00:00:00" in message and "backfill" in message
    future = check(shell("A"), default={**DEFAULT, "failureAndRerunMode": "cascade"})
    assert ("Default", "failureAndRerunMode") not in warnings(future)
    no_cascade = check(past, shell("A"))
    assert not any(f == "failureAndRerunMode" for _, f in warnings(no_cascade))


def test_ignored_ec2_and_emr_resource_fields_warn() -> None:
    report = check(shell("A", runsOn={"ref": "Ec2"}),
                   {"id": "Ec2", "type": "Ec2Resource", "instanceType": "m1.small",
                    "terminateAfter": "1 hour", "role": "r", "resourceRole": "rr"},
                   {"id": "Emr", "type": "EmrCluster", "masterInstanceType": "m1.small"})
    assert report.ok
    got = warnings(report)
    assert got[("Ec2", None)].startswith("Ec2Resource fields are ignored (instanceType, "
                                         "resourceRole, role, terminateAfter)")
    assert "its fields are ignored" in got[("Emr", "type")]


def test_types_headrace_does_not_run_are_read_with_a_warning() -> None:
    report = check({"id": "Pig", "type": "PigActivity", "script": "A = LOAD 'x';",
                    "input": {"ref": "In"}, "output": {"ref": "Out"}}, s3("In"), s3("Out"))
    assert report.ok
    warning = warnings(report)[("Pig", "type")]
    assert "Apache Pig is not available" in warning and "HiveActivity" in warning


def test_activities_without_runs_on_or_worker_group_warn() -> None:
    report = check(shell("A"), default={"id": "Default", "scheduleType": "cron",
                                        "schedule": {"ref": "S"}})
    assert "AWS requires 'runsOn' or 'workerGroup'" in warnings(report)[("A", "runsOn")]


# --- expressions ------------------------------------------------------------------------------

def test_expression_syntax_errors_give_field_and_character_position() -> None:
    got = errors(check(shell("A", command="echo #{format(@scheduledStartTime, 'YYYY'}")))
    message = got[("A", "command")]
    assert message == ("expression syntax error at character 41: expected ',' or ')' to close "
                       "'(' at character 13, found '}'")
    got = errors(check(shell("A", command="echo #{1 +}")))
    assert "expression syntax error at character 10" in got[("A", "command")]


def test_unknown_functions_and_wrong_arity_are_errors() -> None:
    got = errors(check(shell("A", command="#{fromat(@scheduledStartTime, 'YYYY')}")))
    assert got[("A", "command")] == ("at character 2: unknown function fromat() (did you mean "
                                     "format()?)")


def test_unknown_names_runtime_fields_and_paths() -> None:
    report = check(shell("A", command="#{@scheduledStartTme} #{input.directoryPth}",
                         input={"ref": "In"}), s3("In"),
                   shell("B", command="#{node.name}"))
    got = errors(report)
    assert [p.message for p in report.errors if p.object_id == "A"] == [
        "#{@scheduledStartTme} at character 2: unknown runtime field '@scheduledStartTme' (did "
        "you mean '@scheduledStartTime'?)",
        "#{input.directoryPth} at character 24: 'directoryPth' is not a field of In (did you "
        "mean 'directoryPath'?)"]
    assert got[("B", "command")] == ("#{node.name} at character 2: 'node' is only defined in "
                                     "actions and preconditions (the object that triggered "
                                     "them)")


def test_expressions_in_inherited_fields_are_reported_on_their_owner() -> None:
    report = check({"id": "Parent", "command": "#{@nope}"},
                   {"id": "A", "type": "ShellCommandActivity", "parent": {"ref": "Parent"}})
    assert ("Parent", "command") in errors(report)
    assert ("A", "command") not in errors(report)


# --- limits -----------------------------------------------------------------------------------

def test_non_adjustable_limits_are_errors() -> None:
    many_fields = shell("Wide", **{f"myField{i}": "x" for i in range(50)})
    big_field = shell("Big", command="x" * 10_241)
    big_object = shell("Heavy", **{f"myPart{i}": "y" * 2000 for i in range(8)})
    long_id = shell("L" * 257)
    got = errors(check(many_fields, big_field, big_object, long_id))
    assert got[("Wide", None)] == "52 fields: an object may have at most 50"
    assert got[("Big", "command")].startswith("value is 10241 bytes: a field may hold at most "
                                              "10240 bytes")
    assert got[("Heavy", None)].startswith("object is ") and "AWS allows 15360 per object" in \
        got[("Heavy", None)]
    assert got[("L" * 257, "id")] == "id is longer than 256 bytes"


def test_adjustable_limits_are_warnings() -> None:
    objects = [shell(f"A{i}") for i in range(100)]
    report = check(*objects, shell("Busy", maxActiveInstances="8"))
    assert report.ok, report.errors[:3]
    got = warnings(report)
    assert got[(None, None)].startswith("103 objects: AWS allows 100 per pipeline by default")
    assert got[("Busy", "maxActiveInstances")] == (
        "maxActiveInstances 8 is above AWS's default limit of 5 (adjustable; headrace allows "
        "it)")


def test_empty_values_warn() -> None:
    assert "empty value" in warnings(check(shell("A", workerGroup="")))[("A", "workerGroup")]


def test_node_fields_must_exist_on_every_object_that_uses_the_precondition() -> None:
    ready = {"id": "Ready", "type": "S3KeyExists", "s3Key": "#{node.directoryPath}/_SUCCESS",
             "role": "r"}
    assert check(s3("In", precondition={"ref": "Ready"}), ready).ok
    got = errors(check(s3("In", precondition={"ref": "Ready"}),
                       shell("A", precondition={"ref": "Ready"}), ready))
    assert got[("Ready", "s3Key")].startswith(
        "#{node.directoryPath} at character 2: 'directoryPath' is not a field of some of the "
        "objects that use 'Ready' (A)")


def test_location_schemes_are_checked_as_written_and_after_substitution() -> None:
    report = check(
        shell("A", scriptUri="hdfs://nn/run.sh", stdout="#{myOut}/out.txt",
              input={"ref": "In"}, output={"ref": "Out"}),
        s3("In", directoryPath="s3n://b/in"), s3("Out", directoryPath="#{*mySecretDir}/x"),
        {"id": "Ready", "type": "S3KeyExists", "s3Key": "s3://b/#{@scheduledStartTime}"},
        {"id": "Later", "type": "S3KeyExists", "s3Key": "#{@scheduledStartTime}/x"},
        default={**DEFAULT, "pipelineLogUri": "gs://logs/", "precondition": {"ref": "Ready"}},
        parameters=[{"id": "myOut"}, {"id": "*mySecretDir"}],
        values={"myOut": "file:///var/out", "*mySecretDir": "ftp://user:hunter2@h"})
    found = errors(report)
    assert found[("A", "scriptUri")] == (
        "'hdfs://nn/run.sh' has the scheme hdfs://, which headrace cannot read or write: use "
        "s3://, file:// or a local path")
    assert "has the scheme s3n://" in found[("In", "directoryPath")]
    assert found[("Out", "directoryPath")].startswith("**** has the scheme ftp://")
    assert "hunter2" not in json.dumps([p.message for p in report.errors])
    assert ("A", "stdout") not in found  # file:// after substitution
    assert ("Ready", "s3Key") not in found and ("Later", "s3Key") not in found
    assert "gs://" in warnings(report)[("Default", "pipelineLogUri")]
    assert len([p for p in report.warnings if p.field == "pipelineLogUri"]) == 1


def test_a_value_nothing_declares_or_reads_is_a_warning() -> None:
    report = check(shell("A", command="echo #{myUsed}"),
                   parameters=[{"id": "myDir", "default": "/d"}],
                   values={"myDri": "/e", "myUsed": "x"})
    assert warnings(report) == {("myDri", "value"): (
        "a value for 'myDri', which no parameter declares and no expression reads: it is not "
        "used (did you mean 'myDir'?)")}
