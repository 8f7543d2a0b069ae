"""Parameters: declarations, where values come from, types and allowedValues, masked ids,
required parameters without a value (a warning in validate, an error when about to run), and
values for ids no parameter object declares."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.definition import Definition, LoadOptions, load
from engine.definition.scope import EvalContext, ObjectScope
from engine.errors import Report

ONDEMAND = {"id": "Default", "scheduleType": "ondemand", "workerGroup": "wg"}


def load_doc(objects: list[dict[str, Any]], parameters: list[dict[str, Any]] | None = None,
             values: dict[str, Any] | None = None, *, strict: bool = False,
             flags: list[str] | None = None) -> tuple[Definition, Report]:
    doc: dict[str, Any] = {"objects": [ONDEMAND, *objects]}
    if parameters is not None:
        doc["parameters"] = parameters
    if values is not None:
        doc["values"] = values
    return load("<test>", LoadOptions(parameter_values=flags or []), text=json.dumps(doc),
                strict=strict)


def shell(command: str, **fields: Any) -> dict[str, Any]:
    return {"id": "A", "type": "ShellCommandActivity", "command": command, **fields}


def value(definition: Definition, text: str) -> object:
    from engine.definition.expressions import parse_template

    return parse_template(text).evaluate(ObjectScope(EvalContext(definition), "A"))


def problems(report: Report, severity: str = "errors") -> dict[tuple[str | None, str | None],
                                                                  str]:
    return {(p.object_id, p.field): p.message for p in getattr(report, severity)}


def test_value_sources_in_order_flag_then_values_then_default() -> None:
    params = [{"id": "myA", "default": "dflt"}, {"id": "myB", "default": "dflt"},
              {"id": "myC", "default": "dflt"}]
    definition, report = load_doc([shell("#{myA} #{myB} #{myC}")], params,
                                  {"myA": "file", "myB": "file"}, flags=["myA=flag"])
    assert report.ok, report.errors
    assert value(definition, "#{myA} #{myB} #{myC}") == "flag file dflt"


def test_an_empty_value_counts_as_none() -> None:
    definition, report = load_doc([shell("#{myA}")], [{"id": "myA", "default": "dflt"},
                                                      {"id": "myB"}],
                                  {"myA": "", "myB": ""})
    assert value(definition, "#{myA}") == "dflt"
    assert problems(report, "warnings")[("myB", "value")].startswith(
        "required parameter has no value")


def test_required_parameter_without_value_warns_in_validate_and_fails_strict() -> None:
    params = [{"id": "myNeeded", "description": "x"}, {"id": "myOptional", "optional": "true"}]
    _, report = load_doc([shell("echo")], params)
    assert report.ok
    warnings = problems(report, "warnings")
    assert "required parameter has no value" in warnings[("myNeeded", "value")]
    assert ("myOptional", "value") not in warnings
    _, strict = load_doc([shell("echo")], params, strict=True)
    assert "required parameter has no value" in problems(strict)[("myNeeded", "value")]
    assert ("myOptional", "value") not in problems(strict)


def test_unresolved_reference_warns_in_validate_and_fails_strict() -> None:
    _, report = load_doc([shell("echo #{myX}")])
    assert report.ok
    assert "'myX' resolves to nothing" in problems(report, "warnings")[("A", "command")]
    _, strict = load_doc([shell("echo #{myX}")], strict=True)
    assert "'myX' resolves to nothing" in problems(strict)[("A", "command")]
    _, declared = load_doc([shell("echo #{myX}")], [{"id": "myX"}], strict=True)
    assert "parameter 'myX' has no value" in problems(declared)[("A", "command")]


@pytest.mark.parametrize(("ptype", "given", "message"), [
    ("Integer", "six", "value 'six' is not an Integer"),
    ("Integer", "1.5", "value '1.5' is not an Integer"),
    ("Double", "lots", "value 'lots' is not a Double"),
])
def test_parameter_type_violations_are_errors(ptype: str, given: str, message: str) -> None:
    _, report = load_doc([shell("#{myP}")], [{"id": "myP", "type": ptype}], {"myP": given})
    assert problems(report)[("myP", "value")] == message


def test_typed_parameters_reach_expressions_as_numbers() -> None:
    definition, report = load_doc([shell("#{myN + 1} #{myD * 2}")],
                                  [{"id": "myN", "type": "Integer"},
                                   {"id": "myD", "type": "Double"}],
                                  {"myN": "41", "myD": "0.25"})
    assert report.ok, report.errors
    assert value(definition, "#{myN + 1} #{myD * 2}") == "42 0.5"


def test_s3_object_key_parameters_want_a_uri() -> None:
    _, report = load_doc([shell("#{myK}")], [{"id": "myK", "type": "AWS::S3::ObjectKey"}],
                         {"myK": "bucket/key"})
    assert "is not a URI" in problems(report, "warnings")[("myK", "value")]
    _, ok = load_doc([shell("#{myK}")], [{"id": "myK", "type": "AWS::S3::ObjectKey"}],
                     {"myK": "s3://bucket/key"})
    assert ("myK", "value") not in problems(ok, "warnings")


def test_allowed_values_violation_names_the_allowed_ones() -> None:
    params = [{"id": "myMode", "allowedValues": ["OVERWRITE_EXISTING", "TRUNCATE"]}]
    _, report = load_doc([shell("#{myMode}")], params, {"myMode": "APPEND"})
    assert problems(report)[("myMode", "value")] == (
        "value 'APPEND' is not one of the allowedValues 'OVERWRITE_EXISTING', 'TRUNCATE'")
    _, ok = load_doc([shell("#{myMode}")], params, {"myMode": "TRUNCATE"})
    assert ok.ok


def test_unknown_parameter_type_and_bad_flags_are_errors() -> None:
    _, report = load_doc([shell("x")], [{"id": "myA", "type": "Long", "optional": "maybe"},
                                        {"id": "notMy"}, {"id": "myA"}])
    errors = problems(report)
    assert "'Long' is not one of String, Integer, Double, AWS::S3::ObjectKey" in errors[
        ("myA", "type")]
    assert "optional must be \"true\" or \"false\"" in errors[("myA", "optional")]
    assert "must start with 'my'" in errors[("notMy", "id")]
    assert errors[("myA", "id")] == "parameter declared twice"


def test_arrays_need_is_array() -> None:
    definition, report = load_doc([shell("x", scriptArgument="#{myList}")],
                                  [{"id": "myList", "isArray": "true"}],
                                  {"myList": ["a", "b"]})
    assert report.ok
    assert value(definition, "#{myList}") == ["a", "b"]
    _, single = load_doc([shell("x")], [{"id": "myOne"}], {"myOne": ["a", "b"]})
    assert problems(single)[("myOne", "value")] == "2 values given but the parameter is not " \
                                                   "isArray"


def test_values_for_undeclared_ids_are_accepted_as_strings() -> None:
    definition, report = load_doc([shell("sqoop #{myRdsEndpoint}")],
                                  flags=["myRdsEndpoint=db.example"], strict=True)
    assert report.ok, report.errors
    assert value(definition, "#{myRdsEndpoint}") == "db.example"


def test_masked_parameters_resolve_with_or_without_the_star() -> None:
    definition, report = load_doc([shell("#{*myPw}/#{myPw}")], [{"id": "*myPw"}],
                                  {"*myPw": "hunter2"})
    assert report.ok, report.errors
    ctx = EvalContext(definition)
    from engine.definition.expressions import parse_template

    got = parse_template("#{*myPw}/#{myPw}").evaluate(ObjectScope(ctx, "A"))
    assert got == "hunter2/hunter2"
    assert ctx.secret_used
    # an override given without the star replaces the starred value
    definition, _ = load_doc([shell("#{myPw}")], [{"id": "*myPw"}], {"*myPw": "old"},
                             flags=["myPw=new"])
    assert value(definition, "#{myPw}") == "new"


def test_masked_values_never_appear_in_messages() -> None:
    _, report = load_doc([shell("#{*myPw}")],
                         [{"id": "*myPw", "type": "Integer", "allowedValues": ["1", "2"]}],
                         {"*myPw": "hunter2"})
    messages = " ".join(p.message for p in report.errors + report.warnings)
    assert "is not an Integer" in messages and "allowedValues" in messages
    assert "hunter2" not in messages
    assert "****" in messages


def test_parameter_objects_file_replaces_and_values_in_same_file_apply(tmp_path: Any) -> None:
    definition_file = tmp_path / "d.json"
    definition_file.write_text(json.dumps({
        "objects": [ONDEMAND, shell("#{myA}")],
        "parameters": [{"id": "myA", "type": "Integer"}],
        "values": {"myA": "x"}}))
    _, report = load(str(definition_file))
    assert "is not an Integer" in problems(report)[("myA", "value")]
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"parameters": [{"id": "myA", "type": "String"}]}))
    _, replaced = load(str(definition_file), LoadOptions(parameter_objects=str(params)))
    assert replaced.ok, replaced.errors


def test_too_many_parameters_is_a_warning() -> None:
    params = [{"id": f"myP{i}", "optional": "true"} for i in range(51)]
    _, report = load_doc([shell("x")], params)
    assert report.ok
    assert any("51 parameters: AWS allows 50" in w.message for w in report.warnings)


def test_a_bracketed_list_of_array_parameters_flattens() -> None:
    from engine.plan import resolve_fields

    definition, report = load_doc([shell("x", scriptArgument="[#{myL1}, #{myL2}]")],
                                  [{"id": "myL1", "isArray": "true"},
                                   {"id": "myL2", "isArray": "true"}],
                                  {"myL1": ["1", "2"], "myL2": ["3", "4"]})
    assert report.ok, report.errors
    assert resolve_fields(definition, "A", {})["scriptArgument"] == ["1", "2", "3", "4"]
