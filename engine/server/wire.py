"""The API's wire shapes: objects as ``{"id", "name", "fields": [{"key", "stringValue" |
"refValue"}]}``, parameters as ``{"id", "attributes": [...]}``, values as ``[{"id",
"stringValue"}]``; and described objects with the ``@`` fields AWS returns for components,
instances and attempts.

Reading a wire definition is not done here: the request's objects go, as they are, to the one
definition reader (``engine.definition.load``), which takes the wire format as well as files.
"""

from __future__ import annotations

import json
from typing import Any

from engine.schedule import format_timestamp
from engine.service import ObjectView

Field = dict[str, str]


def _fields_of(values: Any, key: str) -> list[Field]:
    items = values if isinstance(values, list) else [values]
    out: list[Field] = []
    for item in items:
        if isinstance(item, dict) and "ref" in item:
            out.append({"key": key, "refValue": str(item["ref"])})
        else:
            out.append({"key": key, "stringValue": item if isinstance(item, str)
                        else json.dumps(item)})
    return out


def object_fields(fields: dict[str, Any]) -> list[Field]:
    """A file-format object's fields (without id and name) as wire fields."""
    out: list[Field] = []
    for key, values in fields.items():
        if key in ("id", "name"):
            continue
        out.extend(_fields_of(values, key))
    return out


def to_wire(body: dict[str, Any]) -> dict[str, Any]:
    """A stored definition (file format) as GetPipelineDefinition answers it."""
    objects = [{"id": obj["id"], "name": str(obj.get("name", obj["id"])),
                "fields": object_fields(obj)} for obj in body.get("objects", [])]
    parameters = []
    for param in body.get("parameters", []):
        attributes = []
        for key, values in param.items():
            if key == "id":
                continue
            for value in values if isinstance(values, list) else [values]:
                attributes.append({"key": key, "stringValue": str(value)})
        parameters.append({"id": param["id"], "attributes": attributes})
    values = []
    for key, given in body.get("values", {}).items():
        for value in given if isinstance(given, list) else [given]:
            values.append({"id": key, "stringValue": str(value)})
    return {"pipelineObjects": objects, "parameterObjects": parameters,
            "parameterValues": values}


def definition_text(params: dict[str, Any]) -> str:
    """The definition members of a Put/ValidatePipelineDefinition request, as text for the
    definition reader (which reads the wire format)."""
    return json.dumps({"pipelineObjects": params.get("pipelineObjects") or [],
                       "parameterObjects": params.get("parameterObjects") or [],
                       "parameterValues": params.get("parameterValues") or []}, indent=1)


def _time(key: str, value: Any) -> list[Field]:
    return [{"key": key, "stringValue": format_timestamp(value)}] if value is not None else []


def _text(key: str, value: Any) -> list[Field]:
    return [] if value is None else [{"key": key, "stringValue": str(value)}]


def _ref(key: str, value: str | None) -> list[Field]:
    return [] if not value else [{"key": key, "refValue": value}]


def described(view: ObjectView, pipeline_id: str) -> dict[str, Any]:
    """A described object: its fields (the component's, evaluated when asked) and the
    runtime ``@`` fields of its sphere."""
    fields = object_fields(view.fields)
    fields += [{"key": "@sphere", "stringValue": view.sphere},
               {"key": "@pipelineId", "stringValue": pipeline_id}]
    if view.sphere == "COMPONENT":
        if view.paused:
            fields.append({"key": "@status", "stringValue": "PAUSED"})
        return {"id": view.id, "name": view.name, "fields": fields}
    inst = view.instance
    assert inst is not None
    fields += _ref("@componentParent", inst.object_id)
    fields += _time("@scheduledStartTime", inst.scheduled_start)
    fields += _time("@scheduledEndTime", inst.scheduled_end)
    attempt = view.attempt
    if attempt is not None:
        fields += _ref("@instanceParent", inst.id)
        fields += _text("@status", attempt.status.value)
        fields += _time("@actualStartTime", attempt.started_at)
        fields += _time("@actualEndTime", attempt.ended_at)
        fields += _text("@attemptNumber", attempt.number)
        fields += _text("errorMessage", attempt.error)
        fields += _text("@exitCode", attempt.exit_code)
        fields += _text("@hostname", attempt.host)
        fields += _text("@traceId", attempt.trace_id)
        fields += _text("@logLocation", attempt.log_path)
        return {"id": view.id, "name": view.name, "fields": fields}
    fields += _text("@status", inst.status.value)
    fields += _time("@actualStartTime", inst.actual_start)
    fields += _time("@actualEndTime", inst.actual_end)
    fields += _text("@attemptCount", inst.attempts)
    fields += _text("@version", inst.version)
    if view.attempts:
        fields += _ref("@headAttempt", view.attempts[-1].id)
        fields += _text("@traceId", view.attempts[-1].trace_id)
    fields += _text("errorMessage", inst.error)
    fields += _ref("@cascadeFailedOn", inst.cascade_failed_on)
    for waited in view.waiting_on:
        fields += _ref("@waitingOn", waited)
    return {"id": view.id, "name": view.name, "fields": fields}
