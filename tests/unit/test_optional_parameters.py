"""An optional parameter left without a value is empty, not an error (the RDStoS3 sample's
optional security groups), and unresolved names in objects headrace ignores stay warnings."""

from __future__ import annotations

import json

from engine.definition import load
from engine.definition.scope import evaluate_field

BASE = {
    "objects": [
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "Box", "type": "Ec2Resource", "securityGroups": "#{myGroups}",
         "keyPair": "#{myUnknownKey}"},
        {"id": "Say", "type": "ShellCommandActivity", "workerGroup": "w",
         "command": "echo [#{myNote}]", "scriptArgument": "#{myArgs}"},
    ],
    "parameters": [
        {"id": "myGroups", "type": "String", "isArray": "true", "optional": "true"},
        {"id": "myNote", "type": "String", "optional": "true"},
        {"id": "myArgs", "type": "String", "isArray": "true", "optional": "true"},
    ],
}


def _load(definition: dict) -> tuple:
    return load("optional.json", strict=True, text=json.dumps(definition))


def test_optional_parameters_without_values_load_strictly_and_evaluate_empty() -> None:
    definition, report = _load(BASE)
    assert report.errors == []
    assert evaluate_field(definition, "Say", "command")[0] == "echo []"
    assert evaluate_field(definition, "Say", "scriptArgument")[0] == []


def test_a_required_parameter_without_a_value_is_still_an_error_when_strict() -> None:
    changed = json.loads(json.dumps(BASE))
    del changed["parameters"][1]["optional"]
    _, report = _load(changed)
    assert [(p.object_id, p.field) for p in report.errors] == [
        ("Say", "command"), ("myNote", "value")]


def test_unresolved_names_in_ignored_objects_are_warnings_even_when_strict() -> None:
    _, report = _load(BASE)
    assert report.errors == []
    assert any(p.object_id == "Box" and p.field == "keyPair" and "myUnknownKey" in p.message
               for p in report.warnings)
