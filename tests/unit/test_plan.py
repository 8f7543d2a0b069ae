"""Planning: which instances a window holds, when each may run, what each waits for, and its
fields resolved, typed and masked."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from engine.cli.definition_cmds import plan_rows
from engine.definition import Definition, LoadOptions, load
from engine.definition.model import attribute_name, model_for, typed_fields
from engine.definition.types import TYPES, unsupported_reason
from engine.errors import PlanError
from engine.plan import (
    instance_id,
    pipeline_is_ondemand,
    plan,
    resolve_fields,
    schedule_spec,
    schedule_type_of,
    schedule_window,
)
from engine.schedule import Period, format_timestamp, parse_timestamp


def ts(text: str) -> datetime:
    return parse_timestamp(text)


def pipeline(*objects: dict[str, Any], schedule: dict[str, Any] | None = None,
             default: dict[str, Any] | None = None, parameters: list[dict[str, Any]] | None = None,
             values: dict[str, Any] | None = None, flags: list[str] | None = None) -> Definition:
    """A valid (strict) pipeline: Default (cron, schedule S) + Schedule S (hourly from
    2024-01-01) + ``objects``."""
    doc: dict[str, Any] = {"objects": [
        default or {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"},
                    "workerGroup": "wg"},
        schedule or {"id": "S", "type": "Schedule", "period": "1 hour",
                     "startDateTime": "2024-01-01T00:00:00"},
        *objects]}
    if parameters:
        doc["parameters"] = parameters
    if values:
        doc["values"] = values
    definition, report = load("<test>", LoadOptions(parameter_values=flags or []),
                              text=json.dumps(doc), strict=True,
                              now=ts("2023-01-01T00:00:00"))
    assert report.ok, report.errors
    return definition


def shell(oid: str, **fields: Any) -> dict[str, Any]:
    return {"id": oid, "type": "ShellCommandActivity", "command": f"run {oid}", **fields}


def s3(oid: str, **fields: Any) -> dict[str, Any]:
    return {"id": oid, "type": "S3DataNode", "directoryPath": f"s3://b/{oid}", **fields}


def summary(definition: Definition, start: str, end: str, **kwargs: Any) -> list[tuple[str, str]]:
    return [(format_timestamp(i.scheduled_start), i.object_id)
            for i in plan(definition, ts(start), ts(end), **kwargs).instances]


def test_instances_in_the_window_sorted_by_time_then_object() -> None:
    definition = pipeline(shell("Zeta"), shell("Alpha"), s3("Mid"))
    assert summary(definition, "2024-01-01T01:00:00", "2024-01-01T03:00:00") == [
        ("2024-01-01T01:00:00", "Alpha"), ("2024-01-01T01:00:00", "Mid"),
        ("2024-01-01T01:00:00", "Zeta"), ("2024-01-01T02:00:00", "Alpha"),
        ("2024-01-01T02:00:00", "Mid"), ("2024-01-01T02:00:00", "Zeta")]


def test_every_instance_carries_start_end_and_an_id() -> None:
    [inst] = plan(pipeline(shell("A")), ts("2024-01-01T05:00:00"),
                  ts("2024-01-01T06:00:00")).instances
    assert inst.id == "@A_2024-01-01T05:00:00" == instance_id("A", inst.scheduled_start)
    assert (inst.scheduled_start, inst.scheduled_end) == (ts("2024-01-01T05:00:00"),
                                                          ts("2024-01-01T06:00:00"))
    runtime = inst.runtime("df-x")
    assert runtime["@scheduledStartTime"] == inst.scheduled_start
    assert runtime["@scheduledEndTime"] == inst.scheduled_end
    assert runtime["@pipelineId"] == "df-x"


def test_resources_actions_and_configs_get_no_instances() -> None:
    definition = pipeline(shell("A", runsOn={"ref": "Ec2"}),
                          {"id": "Ec2", "type": "Ec2Resource", "role": "r",
                           "resourceRole": "rr"},
                          {"id": "Alarm", "type": "SnsAlarm", "topicArn": "t", "subject": "s",
                           "message": "m", "role": "r"})
    assert {o for _, o in summary(definition, "2024-01-01T00:00:00",
                                  "2024-01-01T02:00:00")} == {"A"}


def test_first_activation_starts_at_the_activation_time() -> None:
    definition = pipeline(shell("A"), schedule={
        "id": "S", "type": "Schedule", "period": "1 day", "startAt":
            "FIRST_ACTIVATION_DATE_TIME", "occurrences": "2"})
    got = summary(definition, "2024-03-01T00:00:00", "2024-04-01T00:00:00",
                  activation=ts("2024-03-05T07:30:00"))
    assert got == [("2024-03-05T07:30:00", "A"), ("2024-03-06T07:30:00", "A")]
    # without an activation time, the window start stands in for it
    assert summary(definition, "2024-03-01T00:00:00", "2024-04-01T00:00:00")[0] == (
        "2024-03-01T00:00:00", "A")


def test_ondemand_plans_one_run_at_activation() -> None:
    definition = pipeline(shell("A"), shell("B", dependsOn={"ref": "A"}),
                          default={"id": "Default", "scheduleType": "ondemand",
                                   "workerGroup": "wg"})
    assert pipeline_is_ondemand(definition)
    planned = plan(definition, ts("2024-01-01T00:00:00"), ts("2024-01-02T00:00:00"),
                   activation=ts("2024-01-01T10:00:00"))
    assert [(i.object_id, i.schedule_type) for i in planned.instances] == [
        ("A", "ondemand"), ("B", "ondemand")]
    for inst in planned.instances:
        assert inst.scheduled_start == inst.scheduled_end == inst.eligible_at == ts(
            "2024-01-01T10:00:00")
    assert planned.instances[1].depends_on == ["@A_2024-01-01T10:00:00"]


@pytest.mark.parametrize(("schedule_type", "eligible"), [
    ("cron", "2024-01-01T22:00:00"), ("timeseries", "2024-01-01T22:30:00"),
    (None, "2024-01-01T22:30:00")])
def test_cron_runs_at_interval_start_timeseries_at_its_end(schedule_type: str | None,
                                                           eligible: str) -> None:
    default: dict[str, Any] = {"id": "Default", "schedule": {"ref": "S"}, "workerGroup": "wg"}
    if schedule_type:
        default["scheduleType"] = schedule_type
    definition = pipeline(shell("A"), default=default, schedule={
        "id": "S", "type": "Schedule", "period": "30 minutes",
        "startDateTime": "2024-01-01T22:00:00"})
    assert schedule_type_of(definition, "A") == (schedule_type or "timeseries")
    first = plan(definition, ts("2024-01-01T22:00:00"), ts("2024-01-01T22:30:00")).instances[0]
    assert format_timestamp(first.eligible_at) == eligible
    assert format_timestamp(first.scheduled_end) == "2024-01-01T22:30:00"


def test_dependencies_follow_depends_on_inputs_and_outputs() -> None:
    definition = pipeline(shell("Extract", output={"ref": "Staged"}), s3("Staged"),
                          shell("Load", input={"ref": "Staged"}),
                          shell("Report", dependsOn=[{"ref": "Load"}, {"ref": "Extract"}]))
    by_id = plan(definition, ts("2024-01-01T00:00:00"), ts("2024-01-01T01:00:00")).by_id()
    assert by_id["@Staged_2024-01-01T00:00:00"].depends_on == ["@Extract_2024-01-01T00:00:00"]
    assert by_id["@Load_2024-01-01T00:00:00"].depends_on == ["@Staged_2024-01-01T00:00:00"]
    assert by_id["@Report_2024-01-01T00:00:00"].depends_on == [
        "@Load_2024-01-01T00:00:00", "@Extract_2024-01-01T00:00:00"]
    assert by_id["@Extract_2024-01-01T00:00:00"].depends_on == []


def test_a_slower_object_rolls_up_the_faster_ones_inside_its_interval() -> None:
    definition = pipeline(
        shell("Quarter", schedule={"ref": "Q"}), shell("Hourly", dependsOn={"ref": "Quarter"}),
        {"id": "Q", "type": "Schedule", "period": "15 minutes",
         "startDateTime": "2024-01-01T00:00:00"})
    by_id = plan(definition, ts("2024-01-01T00:00:00"), ts("2024-01-01T02:00:00")).by_id()
    assert by_id["@Hourly_2024-01-01T01:00:00"].depends_on == [
        "@Quarter_2024-01-01T01:00:00", "@Quarter_2024-01-01T01:15:00",
        "@Quarter_2024-01-01T01:30:00", "@Quarter_2024-01-01T01:45:00"]
    # and a faster object waits for the latest slower one that started at or before it
    reverse = pipeline(
        shell("Hourly"), shell("Quarter", schedule={"ref": "Q"}, dependsOn={"ref": "Hourly"}),
        {"id": "Q", "type": "Schedule", "period": "15 minutes",
         "startDateTime": "2024-01-01T00:00:00"})
    by_id = plan(reverse, ts("2024-01-01T00:00:00"), ts("2024-01-01T02:00:00")).by_id()
    assert by_id["@Quarter_2024-01-01T01:45:00"].depends_on == ["@Hourly_2024-01-01T01:00:00"]


def test_a_dependency_outside_the_window_is_not_waited_for() -> None:
    definition = pipeline(shell("Daily", schedule={"ref": "D"}),
                          shell("Hourly", dependsOn={"ref": "Daily"}),
                          {"id": "D", "type": "Schedule", "period": "1 day",
                           "startDateTime": "2024-01-01T00:00:00"})
    by_id = plan(definition, ts("2024-01-01T05:00:00"), ts("2024-01-01T06:00:00")).by_id()
    assert by_id["@Hourly_2024-01-01T05:00:00"].depends_on == []


def test_preconditions_get_an_instance_per_guarded_instance() -> None:
    definition = pipeline(
        s3("A", precondition={"ref": "Ready"}), s3("In", precondition={"ref": "Ready"}),
        {"id": "Ready", "type": "S3KeyExists", "s3Key": "#{node.directoryPath}/_SUCCESS",
         "role": "r"})
    planned = plan(definition, ts("2024-01-01T00:00:00"), ts("2024-01-01T01:00:00"))
    by_id = planned.by_id()
    guard = by_id["@Ready@In_2024-01-01T00:00:00"]
    assert guard.node == "@In_2024-01-01T00:00:00" and guard.category == "precondition"
    assert by_id["@In_2024-01-01T00:00:00"].depends_on == ["@Ready@In_2024-01-01T00:00:00"]
    assert by_id["@A_2024-01-01T00:00:00"].depends_on == ["@Ready@A_2024-01-01T00:00:00"]
    assert instance_id("Ready", ts("2024-01-01T00:00:00"), "In") == guard.id
    rows = {(r["objectId"], r["fields"].get("s3Key")) for r in plan_rows(definition, planned)}
    assert {("Ready", "s3://b/In/_SUCCESS"), ("Ready", "s3://b/A/_SUCCESS")} <= rows


def test_plan_rows_have_exactly_the_issues_shape_and_resolve_fields() -> None:
    definition = pipeline(
        shell("A", command="copy #{format(@scheduledStartTime, 'YYYY-MM-dd')} #{myDir}",
              scriptArgument=["b", "a"], input={"ref": "In"}, myNote="#{input.directoryPath}"),
        s3("In"), values={"myDir": "/data"})
    planned = plan(definition, ts("2024-02-03T00:00:00"), ts("2024-02-03T01:00:00"))
    rows = plan_rows(definition, planned)
    row = next(r for r in rows if r["objectId"] == "A")
    assert list(row) == ["objectId", "type", "scheduledStartTime", "scheduledEndTime",
                         "eligibleAt", "fields"]
    assert row["scheduledStartTime"] == "2024-02-03T00:00:00"
    assert row["fields"]["command"] == "copy 2024-02-03 /data"
    assert row["fields"]["scriptArgument"] == ["b", "a"]
    assert row["fields"]["input"] == {"ref": "In"}
    assert row["fields"]["myNote"] == "s3://b/In"
    assert row["fields"]["workerGroup"] == "wg"  # inherited from Default
    assert "parent" not in row["fields"]


def test_plan_rows_keep_runtime_only_expressions_as_written() -> None:
    """Only the expressions that read what a running attempt sets stay as written: in mixed
    text, in a field read through another, and in a list; the same resolution at run time
    (no placeholders) gets the value."""
    definition = pipeline(
        shell("A", command="try #{@attemptCount} of #{@componentParent} at "
                           "#{format(@scheduledStartTime, 'HH')}", myTry="#{@attemptCount}",
              scriptArgument=["#{myTry}", "#{format(@actualStartTime, 'HH')}", "#{@id}"]))
    planned = plan(definition, ts("2024-02-03T00:00:00"), ts("2024-02-03T01:00:00"))
    [row] = plan_rows(definition, planned)
    assert row["fields"]["command"] == "try #{@attemptCount} of A at 00"
    assert row["fields"]["myTry"] == "#{@attemptCount}"
    assert row["fields"]["scriptArgument"] == [
        "#{@attemptCount}", "#{format(@actualStartTime, 'HH')}", "@A_2024-02-03T00:00:00"]
    runtime = {**planned.instances[0].runtime("df-local"), "@attemptCount": 2}
    with pytest.raises(PlanError, match="unknown name '@actualStartTime'"):
        resolve_fields(definition, "A", runtime)
    runtime["@actualStartTime"] = ts("2024-02-03T05:00:00")
    fields = resolve_fields(definition, "A", runtime)
    assert fields["command"] == "try 2 of A at 00" and fields["myTry"] == "2"
    assert fields["scriptArgument"] == ["2", "05", "@A_2024-02-03T00:00:00"]


def test_plan_masks_secrets() -> None:
    definition = pipeline(
        shell("A", command="mysql -p#{*myPw} -e 'select 1'"),
        {"id": "Db", "type": "JdbcDatabase", "connectionString": "jdbc:mysql://h/d",
         "username": "u", "*password": "literal-secret", "jdbcDriverClass": "x"},
        {"id": "Q", "type": "SqlActivity", "database": {"ref": "Db"}, "script": "select 1"},
        parameters=[{"id": "*myPw"}], values={"*myPw": "hunter2"})
    planned = plan(definition, ts("2024-01-01T00:00:00"), ts("2024-01-01T01:00:00"))
    text = json.dumps(plan_rows(definition, planned))
    assert "hunter2" not in text and "literal-secret" not in text
    row = next(r for r in plan_rows(definition, planned) if r["objectId"] == "A")
    assert row["fields"]["command"] == "****"


def test_values_that_come_out_of_expressions_are_type_checked() -> None:
    definition = pipeline(shell("A", maximumRetries="#{myRetries}", stage="#{myStage}"),
                          values={"myRetries": "lots", "myStage": "true"})
    planned = plan(definition, ts("2024-01-01T00:00:00"), ts("2024-01-01T02:00:00"))
    with pytest.raises(PlanError) as info:
        plan_rows(definition, planned)
    assert str(info.value) == ("object 'A', field 'maximumRetries': 'lots' is not a whole "
                               "number (instance @A_2024-01-01T00:00:00 and 1 more)")


def test_evaluation_errors_name_object_field_and_instance() -> None:
    definition = pipeline(shell("A", command="#{plusYears(@scheduledStartTime, myYears)}"),
                          values={"myYears": "9000"})
    planned = plan(definition, ts("2024-01-01T00:00:00"), ts("2024-01-01T01:00:00"))
    with pytest.raises(PlanError) as info:
        plan_rows(definition, planned)
    assert str(info.value).startswith("object 'A', field 'command': ")
    assert "(instance @A_2024-01-01T00:00:00)" in str(info.value)


def test_schedule_window_spans_every_schedule() -> None:
    # S ends after three days; T is open-ended, so the window runs to now
    definition = pipeline(
        shell("A"), shell("B", schedule={"ref": "T"}),
        {"id": "T", "type": "Schedule", "period": "1 hour",
         "startDateTime": "2024-01-02T00:00:00"},
        schedule={"id": "S", "type": "Schedule", "period": "1 day",
                  "startDateTime": "2024-01-05T00:00:00", "occurrences": "3"})
    assert schedule_window(definition, ts("2024-02-01T00:00:00"), ts("2024-01-06T00:00:00")) == (
        ts("2024-01-02T00:00:00"), ts("2024-01-08T00:00:00"))
    assert schedule_window(definition, ts("2024-02-01T00:00:00"), ts("2024-03-01T00:00:00")) == (
        ts("2024-01-02T00:00:00"), ts("2024-03-01T00:00:00"))


def test_schedule_spec_reads_parameters_and_names_the_schedule_on_error() -> None:
    definition = pipeline(shell("A"), schedule={
        "id": "S", "type": "Schedule", "period": "#{myPeriod}",
        "startDateTime": "#{myStart}", "occurrences": "#{myCount}"},
        values={"myPeriod": "2 hours", "myStart": "2024-05-01T00:00:00", "myCount": "4"})
    spec = schedule_spec(definition, "S")
    assert (spec.period, spec.start, spec.occurrences) == (
        Period(2, "hours"), ts("2024-05-01T00:00:00"), 4)
    broken = definition.with_overrides({"myCount": ["many"]})
    with pytest.raises(PlanError, match="schedule 'S': occurrences 'many' is not a whole "
                                        "number"):
        schedule_spec(broken, "S")


# --- the pydantic models -----------------------------------------------------------------------

def test_every_type_has_a_model_with_every_field() -> None:
    for name, spec in TYPES.items():
        model = model_for(name)
        aliases = {f.alias for f in model.model_fields.values()}
        assert aliases == set(spec.all_fields), name


def test_typed_fields_convert_kinds_and_keep_user_fields() -> None:
    model = typed_fields("ShellCommandActivity", {
        "command": "ls", "maximumRetries": "3", "retryDelay": "30 seconds", "stage": "TRUE",
        "scriptArgument": "one", "runsOn": {"ref": "Ec2"}, "failureAndRerunMode": "CASCADE",
        "myNote": "kept"})
    assert model.maximumRetries == 3  # type: ignore[attr-defined]
    assert model.retryDelay == Period(30, "seconds")  # type: ignore[attr-defined]
    assert model.stage is True  # type: ignore[attr-defined]
    assert model.scriptArgument == ["one"]  # type: ignore[attr-defined]
    assert model.runsOn == "Ec2"  # type: ignore[attr-defined]
    assert model.failureAndRerunMode == "cascade"  # type: ignore[attr-defined]
    assert model.myNote == "kept"  # type: ignore[attr-defined]
    db = typed_fields("JdbcDatabase", {"*password": "pw", "connectionString": "jdbc:x"})
    assert getattr(db, attribute_name("*password")) == "pw"
    assert db.model_dump(by_alias=True, exclude_none=True)["*password"] == "pw"
    schedule = typed_fields("Schedule", {"period": "1 day", "occurrences": "2"})
    assert schedule.occurrences == 2  # type: ignore[attr-defined]


def test_typed_fields_errors_are_one_line_per_field() -> None:
    with pytest.raises(PlanError) as info:
        typed_fields("ShellCommandActivity", {"maximumRetries": "lots", "stage": "maybe",
                                              "command": ["a", "b"], "****": "x"},
                     object_id="A")
    assert str(info.value).splitlines() == [
        "object 'A', field 'maximumRetries': 'lots' is not a whole number",
        "object 'A', field 'command': takes one value, got 2",
        "object 'A', field 'stage': 'maybe' is not \"true\" or \"false\""]


def test_masked_values_are_not_type_checked() -> None:
    model = typed_fields("ShellCommandActivity", {"maximumRetries": "****"})
    assert model.maximumRetries is None  # type: ignore[attr-defined]


def test_types_headrace_will_not_run_say_why() -> None:
    assert "Apache Pig is not available" in (unsupported_reason("PigActivity") or "")
    assert "HiveActivity" in (unsupported_reason("PigActivity") or "")  # what to do instead
    assert unsupported_reason("HiveActivity") is None  # on Spark SQL
    assert unsupported_reason("ShellCommandActivity") is None
    assert unsupported_reason("EmrCluster") is None  # a resource: its activities are refused
    assert unsupported_reason(None) is None
