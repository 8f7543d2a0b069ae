"""headrace's table of the API's input shapes equals botocore's service model, member by
member (types, required members, lengths, enums, list bounds), and the check reports what AWS
reports without repeating a value."""

from __future__ import annotations

from typing import Any

import pytest

from engine.server import shapes


def _model() -> dict[str, Any]:
    from botocore.exceptions import UnknownServiceError
    from botocore.loaders import Loader

    try:
        return dict(Loader().load_service_model("datapipeline", "service-2"))
    except UnknownServiceError:
        pytest.skip("this botocore no longer ships the datapipeline model (the table stays)")


def _compare(ours: shapes.Shape, name: str, model: dict[str, Any], path: str) -> None:
    theirs = model["shapes"][name]
    kind = theirs["type"]
    expected = {"string": shapes.Str, "boolean": shapes.Bool, "integer": shapes.Int,
                "timestamp": shapes.Timestamp, "list": shapes.ListOf, "map": shapes.MapOf,
                "structure": shapes.Struct}[kind]
    assert isinstance(ours, expected), path
    if isinstance(ours, shapes.Str):
        assert ours.min == theirs.get("min") and ours.max == theirs.get("max"), path
        assert ours.xml == ("pattern" in theirs), path
        assert ours.enum == tuple(theirs.get("enum", ())), path
    elif isinstance(ours, shapes.ListOf):
        assert ours.min == theirs.get("min") and ours.max == theirs.get("max"), path
        _compare(ours.member, theirs["member"]["shape"], model, f"{path}[]")
    elif isinstance(ours, shapes.MapOf):
        _compare(ours.key, theirs["key"]["shape"], model, f"{path}.key")
        _compare(ours.value, theirs["value"]["shape"], model, f"{path}.value")
    elif isinstance(ours, shapes.Struct):
        assert set(ours.members) == set(theirs["members"]), path
        assert set(ours.required) == set(theirs.get("required", [])), path
        for member, spec in theirs["members"].items():
            _compare(ours.members[member], spec["shape"], model, f"{path}.{member}")


def test_every_operation_of_the_model_is_in_the_table() -> None:
    model = _model()
    assert set(shapes.INPUTS) == set(model["operations"])
    assert len(shapes.INPUTS) == 19


@pytest.mark.parametrize("operation", sorted(shapes.INPUTS))
def test_input_shape_equals_the_model(operation: str) -> None:
    model = _model()
    _compare(shapes.INPUTS[operation], model["operations"][operation]["input"]["shape"],
             model, operation)


def test_problems_name_the_path_not_the_value() -> None:
    found = shapes.problems("PutPipelineDefinition", {
        "pipelineId": "df-1",
        "pipelineObjects": [{"id": "A", "name": "A",
                             "fields": [{"key": "*password", "stringValue": "s" * 10241}]}]})
    assert found == ["Value at 'pipelineObjects.1.member.fields.1.member.stringValue' failed to "
                     "satisfy constraint: Member must have length less than or equal to 10240"]
    assert "sss" not in shapes.message(found)
    assert shapes.problems("CreatePipeline", {"name": "n"}) == [
        "Value null at 'uniqueId' failed to satisfy constraint: Member must not be null"]
    assert shapes.problems("QueryObjects", {"pipelineId": "p", "sphere": "INSTANCE",
                                            "limit": True})
    assert shapes.problems("AddTags", {"pipelineId": "p", "tags": [
        {"key": f"k{i}", "value": "v"} for i in range(11)]})
    assert shapes.problems("SetTaskStatus", {"taskId": "t", "taskStatus": "DONE"})
    assert shapes.problems("ListPipelines", {"marker": None, "unknown": 1}) == []


def test_many_problems_are_counted_and_cut() -> None:
    objects = [{"id": "", "name": "", "fields": []} for _ in range(30)]
    found = shapes.problems("ValidatePipelineDefinition", {"pipelineId": "p",
                                                           "pipelineObjects": objects})
    text = shapes.message(found)
    assert text.startswith(f"{len(found)} validation errors detected: ")
    assert len(found) > shapes.MAX_REPORTED and "and" in text.rsplit(";", 1)[-1]
