"""A definition back to the definition-file format (what ``get-pipeline-definition`` prints and
the store keeps): objects with single values as strings, repeated fields as lists, references as
``{"ref": id}``; parameters with their attributes; values (after any overrides)."""

from __future__ import annotations

from typing import Any

from engine.definition.document import Definition
from engine.definition.reader import FieldValue, Ref


def _value(v: FieldValue) -> Any:
    return {"ref": v.id} if isinstance(v, Ref) else v


def to_file_format(definition: Definition) -> dict[str, Any]:
    objects = []
    for obj in definition.raw.objects:
        item: dict[str, Any] = {"id": obj.id, "name": obj.name}
        for key, values in obj.fields.items():
            item[key] = _value(values[0]) if len(values) == 1 else [_value(v) for v in values]
        objects.append(item)
    parameters = []
    for decl in definition.parameters.decls.values():
        item = {"id": decl.id, "type": decl.type}
        if decl.description is not None:
            item["description"] = decl.description
        if decl.optional:
            item["optional"] = "true"
        if decl.is_array:
            item["isArray"] = "true"
        if decl.allowed_values:
            item["allowedValues"] = list(decl.allowed_values)
        if decl.default is not None:
            item["default"] = (list(decl.default) if decl.is_array or len(decl.default) != 1
                               else decl.default[0])
        parameters.append(item)
    parameter_values: dict[str, Any] = {}
    for key, vals in definition.parameters.values.items():
        parameter_values[key] = vals[0] if len(vals) == 1 else list(vals)
    out: dict[str, Any] = {"objects": objects}
    if parameters:
        out["parameters"] = parameters
    if parameter_values:
        out["values"] = parameter_values
    return out


def masked(body: dict[str, Any]) -> dict[str, Any]:
    """A copy with ``*`` fields and the values and defaults of ``*`` parameters shown as
    ``****``."""
    secret_params = {p["id"] for p in body.get("parameters", []) if p["id"].startswith("*")}
    secret_params |= {k for k in body.get("values", {}) if k.startswith("*")}
    bases = {s.lstrip("*") for s in secret_params}
    objects = []
    for obj in body.get("objects", []):
        objects.append({k: ("****" if k.startswith("*") and not isinstance(v, dict) else v)
                        for k, v in obj.items()})
    values = {k: ("****" if k in secret_params or k.lstrip("*") in bases else v)
              for k, v in body.get("values", {}).items()}
    out = dict(body)
    out["objects"] = objects
    if "values" in body:
        out["values"] = values
    if "parameters" in body:
        out["parameters"] = [
            {**p, "default": "****"} if p["id"] in secret_params and "default" in p else p
            for p in body["parameters"]]
    return out
