"""RELIABILITY.md cases 19-22: bad definitions are refused at validation, before anything is
scheduled, with errors that say where and what would be valid, and never with a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.definition import Definition, load
from engine.definition.validate import dependency_graph, find_cycle
from engine.errors import ParseError, PlanError, Report
from engine.plan import DEFAULT_MAX_INSTANCES, plan

DEFAULT = {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"},
           "workerGroup": "wg"}
SCHEDULE = {"id": "S", "type": "Schedule", "period": "1 hour",
            "startDateTime": "2024-01-01T00:00:00"}


def doc_of(*objects: dict[str, Any]) -> dict[str, Any]:
    """A pipeline of ``objects`` with a Default and an hourly Schedule S (unless given)."""
    ids = {o["id"] for o in objects}
    return {"objects": [*(o for o in (DEFAULT, SCHEDULE) if o["id"] not in ids), *objects]}


def load_doc(doc: dict[str, Any], *, strict: bool = True) -> tuple[Definition, Report]:
    return load("<test>", text=json.dumps(doc), strict=strict,
                now=datetime(2024, 1, 1, tzinfo=UTC))


def copy(oid: str, **fields: Any) -> dict[str, Any]:
    return {"id": oid, "type": "ShellCommandActivity", "command": f"copy {oid}", **fields}


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result.exit_code, result.output


# --- case 19: a dependency cycle --------------------------------------------------------------

def test_19_a_dependency_cycle_is_spelled_out() -> None:
    doc = doc_of(copy("copyA", dependsOn={"ref": "copyC"}),
                 copy("copyB", dependsOn={"ref": "copyA"}),
                 copy("copyC", dependsOn={"ref": "copyB"}))
    _, report = load_doc(doc)
    [problem] = [p for p in report.errors if "cycle" in p.message]
    assert problem.message.startswith("dependency cycle: copyA -> copyC -> copyB -> copyA")
    assert (problem.object_id, problem.field) == ("copyA", "dependsOn")


def test_19_a_cycle_through_inputs_and_outputs() -> None:
    doc = doc_of(copy("A", input={"ref": "N1"}, output={"ref": "N2"}),
                 copy("B", input={"ref": "N2"}, output={"ref": "N1"}),
                 {"id": "N1", "type": "S3DataNode", "directoryPath": "s3://b/1"},
                 {"id": "N2", "type": "S3DataNode", "directoryPath": "s3://b/2"})
    definition, report = load_doc(doc)
    cycle = find_cycle(dependency_graph(definition))
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"A", "B", "N1", "N2"}
    assert any(p.message.startswith(f"dependency cycle: {' -> '.join(cycle)}")
               for p in report.errors)


def test_19_a_diamond_is_not_a_cycle() -> None:
    doc = doc_of(copy("Init"), copy("P1", dependsOn={"ref": "Init"}),
                 copy("P2", dependsOn={"ref": "Init"}),
                 copy("Final", dependsOn=[{"ref": "P1"}, {"ref": "P2"}]))
    definition, report = load_doc(doc)
    assert report.ok, report.errors
    assert find_cycle(dependency_graph(definition)) is None


def test_19_nothing_is_scheduled_for_a_cyclic_definition(tmp_path: Path) -> None:
    path = tmp_path / "cycle.json"
    path.write_text(json.dumps(doc_of(copy("copyA", dependsOn={"ref": "copyB"}),
                                      copy("copyB", dependsOn={"ref": "copyA"}))))
    code, output = run_cli("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                           "2024-01-02T00:00:00", "--output", "json")
    assert code == 1
    body = json.loads(output)
    assert body["valid"] is False and "instances" not in body
    assert body["errors"][0]["message"].startswith("dependency cycle: copyA -> copyB -> copyA")


# --- case 20: unknown field or object ---------------------------------------------------------

def alarm(message: str) -> dict[str, Any]:
    return {"id": "Alarm", "type": "SnsAlarm", "topicArn": "arn:t", "subject": "s",
            "message": message, "role": "r"}


def test_20_node_nonexistent_names_object_field_and_what_is_valid() -> None:
    doc = doc_of(copy("Copy", onFail={"ref": "Alarm"}), alarm("failed: #{node.nonexistent}"))
    _, report = load_doc(doc)
    [problem] = report.errors
    assert (problem.object_id, problem.field) == ("Alarm", "message")
    assert problem.message.startswith("#{node.nonexistent} at character 10: 'nonexistent' is "
                                      "not a field of the objects that use 'Alarm' (Copy) "
                                      "(their fields: 'command',")


def test_20_node_typo_gets_a_did_you_mean() -> None:
    doc = doc_of(copy("Copy", onFail={"ref": "Alarm"}), alarm("failed: #{node.comand}"))
    _, report = load_doc(doc)
    [problem] = report.errors
    assert problem.message == ("#{node.comand} at character 10: 'comand' is not a field of "
                               "the objects that use 'Alarm' (Copy) (did you mean 'command'?)")


def test_20_a_missing_reference_names_object_field_and_did_you_mean() -> None:
    doc = doc_of(copy("Copy", dependsOn={"ref": "missingId"}), copy("missingIds"))
    _, report = load_doc(doc)
    [problem] = report.errors
    assert (problem.object_id, problem.field) == ("Copy", "dependsOn")
    assert problem.message == ("'dependsOn' refers to 'missingId', which does not exist (did "
                               "you mean 'missingIds'?)")


def test_20_nothing_is_scheduled_when_a_reference_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(doc_of(copy("Copy", dependsOn={"ref": "missingId"}))))
    code, output = run_cli("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                           "2024-01-02T00:00:00")
    assert code == 1
    assert "object 'Copy', field 'dependsOn'" in output
    assert "instance(s)" not in output


# --- case 21: schedule limits and bounded backfills -------------------------------------------

@pytest.mark.parametrize(("schedule", "field", "quote"), [
    ({"period": "5 minutes"}, "period", "minimum scheduling interval of 15 minutes"),
    ({"period": "5 minits"}, "period", "unknown unit 'minits' (use seconds, minutes, hours, "
                                       "days, weeks, months or years)"),
    ({"period": "fifteen minutes"}, "period", "is not of the form 'N units'"),
    ({"endDateTime": "2023-12-31T00:00:00"}, "endDateTime",
     "is not after startDateTime 2024-01-01T00:00:00"),
])
def test_21_schedule_errors_quote_the_limit(schedule: dict[str, str], field: str,
                                            quote: str) -> None:
    _, report = load_doc(doc_of(copy("A"), {**SCHEDULE, **schedule}))
    [problem] = report.errors
    assert (problem.object_id, problem.field) == ("S", field)
    assert quote in problem.message


def test_21_a_backfill_larger_than_its_cap_is_refused_naming_the_cap() -> None:
    definition, report = load_doc(doc_of(copy("A")))
    assert report.ok
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = datetime(2025, 6, 1, tzinfo=UTC)  # 517 days (2024 is a leap year): 12,408 hours
    with pytest.raises(PlanError) as info:
        plan(definition, start, end)
    assert f"more than {DEFAULT_MAX_INSTANCES:,} instances, the cap (--max-instances)" in str(
        info.value)
    # explicit and bounded: a raised cap plans it, a lower cap refuses a smaller window
    assert len(plan(definition, start, end, max_instances=20_000).instances) == 12_408
    with pytest.raises(PlanError, match="more than 24 instances"):
        plan(definition, start, datetime(2024, 1, 2, 1, tzinfo=UTC), max_instances=24)
    assert len(plan(definition, start, datetime(2024, 1, 2, tzinfo=UTC),
                    max_instances=24).instances) == 24


def test_21_the_cap_counts_precondition_instances_too() -> None:
    definition, _ = load_doc(doc_of(copy("A", precondition={"ref": "P"}),
                                    {"id": "P", "type": "ShellCommandPrecondition",
                                     "command": "true"}))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(PlanError, match="more than 10 instances"):
        plan(definition, start, datetime(2024, 1, 1, 6, tzinfo=UTC), max_instances=10)
    assert len(plan(definition, start, datetime(2024, 1, 1, 5, tzinfo=UTC),
                    max_instances=10).instances) == 10


def test_21_the_cli_cap_is_explicit(tmp_path: Path) -> None:
    path = tmp_path / "hourly.json"
    path.write_text(json.dumps(doc_of(copy("A"))))
    code, output = run_cli("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                           "9999-01-01T00:00:00")
    assert code == 1
    assert output.strip() == (
        "error: the window [2024-01-01T00:00:00, 9999-01-01T00:00:00) holds more than 10,000 "
        "instances, the cap (--max-instances): plan a shorter window or raise the cap "
        "explicitly")
    code, output = run_cli("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                           "2024-01-01T03:00:00", "--max-instances", "3")
    assert code == 0 and output.strip().endswith("3 instance(s)")


# --- case 22: size limits ---------------------------------------------------------------------

def test_22_size_limits_are_clean_validation_errors(tmp_path: Path) -> None:
    doc = doc_of(copy("Wide", **{f"myField{i}": "x" for i in range(60)}),
                 copy("Big", command="x" * 10_241))
    path = tmp_path / "limits.json"
    path.write_text(json.dumps(doc))
    code, output = run_cli("validate", str(path), "--output", "json")
    assert code == 1
    body = json.loads(output)
    got = {(e["id"], e["field"]): e["message"] for e in body["errors"]}
    assert got[("Wide", None)] == "62 fields: an object may have at most 50"
    assert got[("Big", "command")].startswith("value is 10241 bytes: a field may hold at most "
                                              "10240 bytes")
    assert "Traceback" not in output and "pydantic" not in output.lower()


def test_22_an_oversized_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("w") as f:
        f.write('{"objects": [')
        f.write(",".join(json.dumps(copy(f"A{i}", myPad="p" * 1000)) for i in range(11_000)))
        f.write("]}")
    with pytest.raises(ParseError, match="bytes: headrace reads definition, parameter and "
                                         "values files of at most 10,485,760 bytes"):
        load(str(path))
    code, output = run_cli("validate", str(path))
    assert code == 1
    assert "at most 10,485,760 bytes" in output and "Traceback" not in output


def test_22_a_large_but_legal_definition_validates(tmp_path: Path) -> None:
    objects = [copy(f"A{i}", dependsOn={"ref": f"A{i - 1}"}) if i else copy("A0")
               for i in range(2_000)]
    _, report = load_doc(doc_of(*objects))
    assert report.ok, report.errors[:3]
    assert any("2002 objects: AWS allows 100 per pipeline" in w.message
               for w in report.warnings)


# --- deep nesting: a clean error, never a RecursionError ---------------------------------------

def test_22_a_long_dependency_chain_needs_no_deep_recursion() -> None:
    objects = [copy(f"A{i}", dependsOn={"ref": f"A{i + 1}"}) for i in range(3_000)]
    definition, report = load_doc(doc_of(*objects, copy("A3000")))
    assert report.ok, report.errors[:3]
    assert find_cycle(dependency_graph(definition)) is None
    looped = doc_of(*objects, copy("A3000", dependsOn={"ref": "A0"}))
    _, cyclic = load_doc(looped)
    [problem] = [p for p in cyclic.errors if "cycle" in p.message]
    assert problem.message.startswith("dependency cycle: A0 -> A1 -> A2 -> ")


def test_22_deeply_nested_expressions_are_clean_errors(tmp_path: Path) -> None:
    deep = "#{" + "(" * 3000 + "1" + ")" * 3000 + "}"
    _, report = load_doc(doc_of(copy("A", command=deep)))
    assert [(p.object_id, p.field, p.message) for p in report.errors] == [
        ("A", "command", "expression syntax error at character 102: the expression is nested "
                         "more than 100 levels deep")]
    chain = [copy(f"A{i}", myX="#{myNext.myX}", myNext={"ref": f"A{i + 1}"})
             for i in range(200)]
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(doc_of(*chain, copy("A200", myX="end"))))
    code, output = run_cli("eval", str(path), "--object", "A0", "--at",
                           "2024-01-01T00:00:00", "#{myX}")
    assert code == 1
    assert output.strip() == ("error: fields read through more than 32 other fields "
                              "(A0.myX -> A1.myX -> A2.myX -> ...)")
    code, output = run_cli("eval", str(path), "--object", "A190", "--at",
                           "2024-01-01T00:00:00", "#{myX}")
    assert (code, output.strip()) == (0, "end")
    code, output = run_cli("plan", str(path), "--start", "2024-01-01T00:00:00", "--end",
                           "2024-01-01T01:00:00")
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 21 and lines[-1] == "error: ... and 148 more problems"


def test_the_parser_refuses_deep_nesting_with_a_syntax_error() -> None:
    from engine.definition.expressions import parse_template
    from engine.errors import ExpressionSyntaxError

    with pytest.raises(ExpressionSyntaxError):
        parse_template("#{" + "(" * 3000 + "1" + ")" * 3000 + "}")
