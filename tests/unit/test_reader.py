"""Reading definitions: the file format and the API wire format give the same Definition,
multi-valued fields keep their order, parent chains run through untyped objects to Default,
secrets are masked, ``${...}`` is left alone, and broken JSON is located by line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.definition import Definition, LoadOptions, load
from engine.definition.reader import (
    MAX_JSON_DEPTH,
    Ref,
    load_text,
    parse_json,
    parse_value_args,
    read_definition,
)
from engine.definition.serialize import to_file_format
from engine.errors import ParseError, Report
from engine.plan import resolve_fields
from engine.schedule import parse_timestamp

CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
PIZZA = CONFORMANCE / ("harrystech__arthur-redshift-etl__python_etl_templates_text_"
                       "pizza_pipeline.json")
WIRE = CONFORMANCE / "awslabs__data-pipeline-samples__samples_RDStoRedshiftSqoop_setup_setup.json"
HELLO = CONFORMANCE / "awslabs__data-pipeline-samples__samples_helloworld_helloworld.json"
NOT_STRICT = CONFORMANCE / ("awslabs__data-pipeline-samples__samples_OnDemandWithLamdaFunctions_"
                            "ondemand.json")


#: a Default that makes a pipeline ondemand: no Schedule needed
ONDEMAND = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"}


def load_doc(doc: dict[str, Any], **kwargs: Any) -> tuple[Definition, Report]:
    return load("<test>", text=json.dumps(doc), **kwargs)


# --- a translation written from the AWS CLI's documented rules, independent of the reader ------

def file_to_wire(doc: dict[str, Any]) -> dict[str, Any]:
    def fields(obj: dict[str, Any]) -> list[dict[str, str]]:
        out = []
        for key, value in obj.items():
            if key in ("id", "name"):
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    out.append({"key": key, "refValue": item["ref"]})
                else:
                    out.append({"key": key, "stringValue": item})
        return out

    wire: dict[str, Any] = {"pipelineObjects": [
        {"id": o["id"], "name": o.get("name", o["id"]), "fields": fields(o)}
        for o in doc["objects"]]}
    wire["parameterObjects"] = [
        {"id": p["id"], "attributes": [
            {"key": k, "stringValue": v} for k, vs in p.items() if k != "id"
            for v in (vs if isinstance(vs, list) else [vs])]}
        for p in doc.get("parameters", [])]
    wire["parameterValues"] = [
        {"id": k, "stringValue": v} for k, vs in doc.get("values", {}).items()
        for v in (vs if isinstance(vs, list) else [vs])]
    return wire


def wire_to_file(doc: dict[str, Any]) -> dict[str, Any]:
    objects = []
    for obj in doc["objects"]:
        item: dict[str, Any] = {"id": obj["id"], "name": obj["name"]}
        for f in obj["fields"]:
            value = {"ref": f["refValue"]} if "refValue" in f else f["stringValue"]
            if f["key"] in item:
                previous = item[f["key"]]
                item[f["key"]] = [*previous, value] if isinstance(previous, list) else [
                    previous, value]
            else:
                item[f["key"]] = value
        objects.append(item)
    params = [{"id": p["id"], **{a["key"]: a["stringValue"] for a in p["attributes"]}}
              for p in doc.get("parameters", [])]
    values: dict[str, Any] = {}
    for v in doc.get("parameterValues", []):
        values[v["id"]] = v["stringValue"]
    return {"objects": objects, "parameters": params, "values": values}


def snapshot(definition: Definition) -> dict[str, Any]:
    """Everything the engine reads from a Definition, as plain data."""
    return {
        "objects": {oid: (obj.name, definition.effective(oid)) for oid, obj in
                    definition.objects.items()},
        "parameters": {k: (d.type, d.optional, d.is_array, d.default, d.allowed_values)
                       for k, d in definition.parameters.decls.items()},
        "values": definition.parameters.values,
    }


@pytest.mark.parametrize("path", [PIZZA, HELLO], ids=["pizza", "helloworld"])
def test_file_and_wire_format_give_the_same_definition(path: Path) -> None:
    doc = json.loads(path.read_text())
    from_file, file_report = load_doc(doc)
    from_wire, wire_report = load_doc(file_to_wire(doc))
    assert snapshot(from_file) == snapshot(from_wire)
    assert [p.message for p in file_report.errors] == [p.message for p in wire_report.errors]
    assert to_file_format(from_file) == to_file_format(from_wire)


def test_the_wire_format_conformance_file_reads_like_its_file_format_twin() -> None:
    doc = json.loads(WIRE.read_text())
    from_wire, _ = load(str(WIRE))
    from_file, _ = load_doc(wire_to_file(doc))
    assert snapshot(from_wire) == snapshot(from_file)
    assert from_wire.type_of("ActivityId_6vvjv") == "EmrActivity"
    assert from_wire.refs("ActivityId_6vvjv", "runsOn") == ["EmrClusterId_itsxt"]
    # the file's parameterValues are the definition's values
    assert from_wire.parameters.raw_value("myRdsTable") == ("songs",)


def test_multi_valued_fields_keep_their_order_in_both_formats() -> None:
    doc = {"objects": [
        {"id": "Last", "type": "ShellCommandActivity", "command": "true",
         "dependsOn": [{"ref": "C"}, {"ref": "A"}, {"ref": "B"}],
         "scriptArgument": ["z", "a", "m", "a"]},
        *({"id": x, "type": "ShellCommandActivity", "command": "true"} for x in "ABC")]}
    for variant in (doc, file_to_wire(doc)):
        definition, _ = load_doc(variant)
        assert definition.refs("Last", "dependsOn") == ["C", "A", "B"]
        assert definition.field("Last", "scriptArgument") == ["z", "a", "m", "a"]
        fields = resolve_fields(definition, "Last", {})
        assert fields["scriptArgument"] == ["z", "a", "m", "a"]
        assert fields["dependsOn"] == [{"ref": "C"}, {"ref": "A"}, {"ref": "B"}]


def test_parent_chains_run_through_untyped_objects_to_default() -> None:
    definition, report = load(str(PIZZA))
    assert report.ok, report.errors
    assert definition.parent_chain("ArthurUpgrade") == [
        "ArthurUpgrade", "ArthurCommandParent", "Ec2CommandGrandParent", "Default"]
    # own parent's field overrides Default's; the grandparent's reaches the child; Default
    # supplies the rest
    assert definition.first("ArthurUpgrade", "maximumRetries") == "0"
    assert definition.first("Bootstrap", "maximumRetries") == "2"
    assert definition.refs("ArthurUpgrade", "runsOn") == ["ArthurDriverEC2Resource"]
    assert definition.refs("Bootstrap", "runsOn") == ["ArthurDriverEC2Resource"]
    assert definition.refs("ArthurUpgrade", "schedule") == ["ETLSchedule"]
    # an untyped parent gives its fields, never its own parent link
    assert definition.first("SuccessNotification", "topicArn").startswith("arn:aws:sns:")
    assert definition.type_of("ShellCommandParent") is None
    assert definition.refs("SendHealthCheckAfterEtl", "onFail") == [
        "FailureNotification", "PagerNotification"]
    # an object without parent inherits Default directly; Default inherits nothing
    assert definition.parent_chain("ETLSchedule") == ["ETLSchedule", "Default"]
    assert definition.parent_chain("Default") == ["Default"]
    assert definition.effective("NoSuchObject") == {}


def test_names_default_to_the_id_and_extra_top_level_keys_are_ignored() -> None:
    definition, report = load_doc({
        "metadata": {"templateName": "x"},
        "objects": [ONDEMAND, {"id": "A", "type": "ShellCommandActivity", "command": "true"},
                    {"id": "B", "name": "Named", "type": "ShellCommandActivity",
                     "command": "true"}]})
    assert report.ok
    assert definition.objects["A"].name == "A"
    assert definition.objects["B"].name == "Named"


def test_shell_and_template_placeholders_are_left_untouched() -> None:
    definition, report = load_doc({"objects": [
        ONDEMAND, {"id": "A", "type": "ShellCommandActivity",
         "command": "cp ${INPUT1_STAGING_DIR}/x ${OUTPUT1_STAGING_DIR}/$1 # ${object_store.s3}"
                    " #{myDir}"}],
        "values": {"myDir": "d"}})
    assert report.ok, report.errors
    fields = resolve_fields(definition, "A", {"@scheduledStartTime":
                                              parse_timestamp("2024-01-01T00:00:00")})
    assert fields["command"] == (
        "cp ${INPUT1_STAGING_DIR}/x ${OUTPUT1_STAGING_DIR}/$1 # ${object_store.s3} d")


def test_secret_fields_and_parameters_are_masked_in_resolved_fields() -> None:
    definition, report = load_doc({
        "objects": [
            ONDEMAND,
            {"id": "Db", "type": "JdbcDatabase", "connectionString": "jdbc:x://h/#{myDb}",
             "username": "u", "*password": "#{*myPassword}", "jdbcDriverClass": "x"},
            {"id": "Db2", "type": "JdbcDatabase", "connectionString": "jdbc:x://h/#{myDb}",
             "username": "u", "*password": "literal-pw", "jdbcDriverClass": "x"},
            {"id": "A", "type": "ShellCommandActivity",
             "command": "psql --password=#{myPassword} #{myDb}"}],
        "parameters": [{"id": "*myPassword"}, {"id": "myDb"}],
        "values": {"*myPassword": "hunter2", "myDb": "sales"}})
    assert report.ok, report.errors
    db = resolve_fields(definition, "Db", {})
    assert db["*password"] == "****"
    assert db["connectionString"] == "jdbc:x://h/sales"
    assert resolve_fields(definition, "Db2", {})["*password"] == "****"
    # #{myPassword} finds the parameter *myPassword, and the field that read it is masked
    assert resolve_fields(definition, "A", {})["command"] == "****"
    assert resolve_fields(definition, "A", {}, mask=False)["command"] == (
        "psql --password=hunter2 sales")
    assert definition.mask("the password is hunter2 or literal-pw") == (
        "the password is **** or ****")


def test_parameter_and_values_files_as_the_aws_cli_takes_them(tmp_path: Path) -> None:
    definition_file = tmp_path / "d.json"
    definition_file.write_text(json.dumps({
        "objects": [{"id": "A", "type": "ShellCommandActivity", "command": "#{myA} #{myB}"}],
        "parameters": [{"id": "myA", "default": "from-definition"}],
        "values": {"myB": "file-value"}}))
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"parameters": [{"id": "myA", "default": "from-params-file"},
                                                 {"id": "myB"}]}))
    values = tmp_path / "v.json"
    values.write_text(json.dumps({"values": {"myB": ["x", "y"]}}))
    definition, _ = load(f"file://{definition_file}", LoadOptions(
        parameter_objects=f"file://{params}", parameter_values_uri=str(values)))
    # the parameter-objects file replaces the definition's parameters; the values file its
    # values
    assert definition.parameters.raw_value("myA") == ("from-params-file",)
    assert definition.parameters.raw_value("myB") == ("x", "y")
    definition, _ = load(str(definition_file), LoadOptions(parameter_values=["myB=1",
                                                                              "myB=2"]))
    assert definition.parameters.raw_value("myB") == ("1", "2")


def test_parameter_value_flags_repeat_a_key_for_an_array() -> None:
    assert parse_value_args(["a=1", "b=x=y", "a=2", "c="]) == {
        "a": ["1", "2"], "b": ["x=y"], "c": [""]}
    with pytest.raises(ParseError, match="expects id=value"):
        parse_value_args(["novalue"])


# --- broken input -----------------------------------------------------------------------------

def test_not_strict_json_gets_line_and_column_and_reads_with_lenient() -> None:
    with pytest.raises(ParseError) as info:
        load(str(NOT_STRICT))
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (4, 82)
    assert "--lenient" in problem.message
    definition, report = load(str(NOT_STRICT), LoadOptions(lenient=True))
    assert report.ok, report.errors
    repairs = [w for w in report.warnings if "--lenient" in w.message]
    assert {w.file for w in repairs} == {str(NOT_STRICT)}
    assert {w.message for w in repairs} == {
        "raw control character '\\n' inside a string (accepted by --lenient)",
        "trailing comma (accepted by --lenient)"}
    assert all(w.line and w.column for w in repairs)
    assert (repairs[1].line, repairs[1].column) == (12, 33)
    # the raw newlines are kept as newlines inside the values
    assert any("\n" in v for obj in definition for vs in obj.fields.values() for v in vs
               if isinstance(v, str))


@pytest.mark.parametrize(("text", "line", "column"), [
    ('{"objects": [\n  {"id": "A",}\n]}', 2, 14),
    ('{"objects": [\n  {"id": "A"}\n', 3, 1),
    ('{"objects": [{"id": "A", "x": "a\nb"}]}', 1, 33),
    ("", 1, 1),
])
def test_parse_errors_carry_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(ParseError) as info:
        read_definition(text, "d.json")
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (line, column)
    assert problem.file == "d.json"
    assert str(problem).startswith(f"error: d.json, line {line}, column {column}: ")


def test_lenient_repairs_only_what_it_says() -> None:
    report = Report()
    data = parse_json('{"a": ["x", "y",],\n "b": "1\n2", "c": "q,]",}', "f", lenient=True,
                      report=report)
    assert data == {"a": ["x", "y"], "b": "1\n2", "c": "q,]"}
    assert {w.file for w in report.warnings} == {"f"}
    assert [(w.line, w.column, w.message.split(" (")[0])
            for w in report.warnings] == [
        (1, 16, "trailing comma"), (2, 9, "raw control character '\\n' inside a string"),
        (3, 15, "trailing comma")]


def test_deep_nesting_and_oversized_files_are_refused_cleanly(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ParseError) as info:
        parse_json(deep, "deep.json")
    assert f"more than {MAX_JSON_DEPTH} levels" in info.value.problems[0].message
    assert info.value.problems[0].line == 1
    big = tmp_path / "big.json"
    big.write_text("x" * 2048)
    with pytest.raises(ParseError, match=r"2,048 bytes: headrace reads .* at most 1,000 bytes"):
        load_text(str(big), max_bytes=1000)


def test_unreadable_files_are_named() -> None:
    with pytest.raises(ParseError, match=r"file not found: /nonexistent/x\.json"):
        load_text("file:///nonexistent/x.json")
    with pytest.raises(ParseError, match="it is a directory"):
        load_text("/tmp")


@pytest.mark.parametrize(("doc", "message"), [
    ([], "the top level must be a JSON object"),
    ({"objects": {}}, 'no "objects" list'),
    ({"values": {}}, 'no "objects" list'),
])
def test_wrong_shapes_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        read_definition(json.dumps(doc))


def test_shape_problems_name_the_object_and_field() -> None:
    report = Report()
    raw = read_definition(json.dumps({"objects": [
        {"id": "A", "retries": 3, "stage": True, "bad": {"ref": "x", "other": 1},
         "nested": [["a"]], "none": None, "*password": 12345678},
        {"name": "no id"},
        "not an object",
        {"id": "W", "fields": [{"key": "a", "stringValue": "1", "refValue": "B"},
                               {"stringValue": "x"}]}]}), report=report)
    assert [o.id for o in raw.objects] == ["A", "W"]
    assert raw.objects[0].fields["retries"] == ["3"]
    assert raw.objects[0].fields["stage"] == ["true"]
    errors = {(p.object_id, p.field): p.message for p in report.errors}
    assert "single key \"ref\"" in errors[("A", "bad")]
    assert "a list inside a list" in errors[("A", "nested")]
    assert "got null" in errors[("A", "none")]
    assert "exactly one of" in errors[("W", "a")]
    assert any("objects[1] has no \"id\"" in p.message for p in report.errors)
    assert any("objects[2] is not a JSON object" in p.message for p in report.errors)
    warnings = {(p.object_id, p.field): p.message for p in report.warnings}
    assert "got the number 3" in warnings[("A", "retries")]
    assert "12345678" not in warnings[("A", "*password")]
    assert all(p.line == 1 for p in report.errors if p.object_id == "A")


def test_duplicate_keys_warn_and_the_last_wins() -> None:
    report = Report()
    raw = read_definition('{"objects": [{"id": "A", "k": "1", "k": "2"}]}', report=report)
    assert raw.objects[0].fields["k"] == ["2"]
    assert any("appears twice" in w.message for w in report.warnings)


def test_refs_are_refs_and_strings_are_strings() -> None:
    raw = read_definition(json.dumps({"objects": [
        {"id": "A", "input": {"ref": "B"}, "output": "B"}]}))
    assert raw.objects[0].fields["input"] == [Ref("B")]
    assert raw.objects[0].fields["output"] == ["B"]
