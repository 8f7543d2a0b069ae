"""An ``AWS::DataPipeline::Pipeline`` resource of a CloudFormation template, as a definition in
the API wire format (what the resource's ``PipelineObjects``, ``ParameterObjects`` and
``ParameterValues`` are: the ``PutPipelineDefinition`` request CloudFormation makes).

Every finding names the template's own line: the line of the pipeline object (or parameter)
in the template, not of a converted copy. A value the template does not determine is an error
naming the object, the field and the ``--template-parameters`` key to supply; the field is then
left out, and the other fields and objects are still read, so every finding comes in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.definition.cloudformation.intrinsics import (
    REMOVED,
    Resolver,
    Unresolved,
    is_function,
)
from engine.definition.jsontext import LocatedDict
from engine.errors import ParseError, Problem, Report

PIPELINE_TYPE = "AWS::DataPipeline::Pipeline"
PIPELINE_PROPERTIES = ("Name", "Description", "Activate", "ParameterObjects",
                       "ParameterValues", "PipelineObjects", "PipelineTags")


@dataclass
class TemplatePipeline:
    """The pipeline of a template: wire-format data, and where each id is in the template."""

    data: dict[str, Any]
    logical_id: str
    lines: dict[str, int] = field(default_factory=dict)
    parameter_lines: dict[str, int] = field(default_factory=dict)
    value_lines: dict[str, int] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    unresolved: set[tuple[str, str]] = field(default_factory=set)


def is_template(data: Any) -> bool:
    """A CloudFormation template: a mapping with ``Resources`` (or a format version)."""
    return isinstance(data, dict) and (isinstance(data.get("Resources"), dict)
                                       or "AWSTemplateFormatVersion" in data)


def pipeline_resources(template: Mapping[str, Any]) -> list[str]:
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        return []
    return [str(lid) for lid, res in resources.items()
            if isinstance(res, dict) and res.get("Type") == PIPELINE_TYPE]


def _line(value: Any) -> int | None:
    return value.line if isinstance(value, LocatedDict) else None


def choose_resource(template: Mapping[str, Any], wanted: str | None,
                    report: Report) -> str:
    """The logical id of the pipeline to read (``--resource`` when given)."""
    pipelines = pipeline_resources(template)
    resources = template.get("Resources")
    if wanted is not None:
        if wanted in pipelines:
            return wanted
        if isinstance(resources, dict) and wanted in resources:
            kind = resources[wanted].get("Type") if isinstance(resources[wanted],
                                                                 dict) else None
            why = f"is a {kind}, not an {PIPELINE_TYPE}"
        else:
            why = "is not a resource of the template"
        listed = ", ".join(pipelines) or "none"
        raise ParseError([Problem("error", f"--resource {wanted} {why} (its pipeline "
                                  f"resources: {listed})", line=1, column=1)], report.warnings)
    if not pipelines:
        names = ", ".join(f"{lid} ({res.get('Type')})" for lid, res in (
            resources.items() if isinstance(resources, dict) else [])
            if isinstance(res, dict))
        raise ParseError([Problem("error", f"a CloudFormation template without an "
                                  f"{PIPELINE_TYPE} resource (its resources: {names or 'none'})",
                                  line=1, column=1)], report.warnings)
    if len(pipelines) > 1:
        assert isinstance(resources, dict)
        lines = ", ".join(f"{lid} (line {_line(resources[lid])})"
                          if _line(resources[lid]) else lid for lid in pipelines)
        raise ParseError([Problem("error", f"the template holds {len(pipelines)} pipelines: "
                                  f"{lines}; choose one with --resource LOGICAL_ID",
                                  line=1, column=1)], report.warnings)
    return pipelines[0]


class _Reader:
    def __init__(self, resolver: Resolver, report: Report) -> None:
        self.resolver, self.report = resolver, report

    def value(self, raw: Any, what: str, object_id: str | None, key: str | None,
              line: int | None) -> Any:
        """``raw`` resolved; an error (and None) when it cannot be."""
        try:
            return self.resolver.resolve(raw)
        except Unresolved as exc:
            self.report.error(f"{what}: {exc}", object_id, key, line=line)
            return None

    def text(self, raw: Any, what: str, object_id: str | None, key: str | None,
             line: int | None) -> str | None:
        value = self.value(raw, what, object_id, key, line)
        if value is None or value is REMOVED:
            return None
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, str | int | float):
            return str(value)
        self.report.error(f"{what} must be a string, got "
                          f"{'a list' if isinstance(value, list) else 'a mapping'}",
                          object_id, key, line=line)
        return None

    def items(self, raw: Any, prop: str, owner: str | None, line: int | None) -> list[Any]:
        """The items of a list property, each kept as written (with its line) unless it is a
        function (``Fn::If`` choosing an item): those are resolved, and removed items dropped."""
        if is_function(raw):
            raw = self.value(raw, prop, owner, None, line)
            if raw is None:
                return []
        if not isinstance(raw, list):
            self.report.error(f"{prop} must be a list", owner, None, line=line)
            return []
        out = []
        for item in raw:
            if is_function(item):
                item_line = _line(item) or line
                resolved = self.value(item, prop, owner, None, item_line)
                if resolved is None or resolved is REMOVED:
                    continue
                if isinstance(resolved, dict):
                    located = LocatedDict(resolved)
                    located.line = item_line
                    resolved = located
                out.append(resolved)
            else:
                out.append(item)
        return out


def read_template(template: Mapping[str, Any], source: str, report: Report,
                  resource: str | None, given: Mapping[str, str]) -> TemplatePipeline:
    """The chosen pipeline resource of ``template`` in the API wire format."""
    logical_id = choose_resource(template, resource, report)
    resources = template["Resources"]
    res = resources[logical_id]
    resolver = Resolver(template, given)
    reader = _Reader(resolver, report)
    res_line = _line(res)
    condition = res.get("Condition")
    if isinstance(condition, str):
        try:
            if not resolver.condition(condition):
                report.warn(f"resource {logical_id} is created only when condition "
                            f"{condition} is true, and with these parameters it is false "
                            "(headrace reads it anyway)", line=res_line)
        except Unresolved as exc:
            report.error(f"resource {logical_id}'s Condition: {exc}", line=res_line)
    props = res.get("Properties")
    if not isinstance(props, dict):
        raise ParseError([Problem("error", f"resource {logical_id} has no Properties",
                                  line=res_line)], report.warnings)
    for key in props:
        if key not in PIPELINE_PROPERTIES:
            report.warn(f"{PIPELINE_TYPE} has no property {key!r} (it has "
                        f"{', '.join(PIPELINE_PROPERTIES)})", line=_line(props) or res_line)
    if "PipelineObjects" not in props:
        raise ParseError([Problem("error", f"resource {logical_id} has no PipelineObjects",
                                  line=_line(props) or res_line)], report.warnings)
    pipeline = TemplatePipeline(data={}, logical_id=logical_id)
    objects = [_pipeline_object(item, index, reader, pipeline)
               for index, item in enumerate(reader.items(props["PipelineObjects"],
                                                         "PipelineObjects", None, res_line))]
    parameters = [_parameter_object(item, index, reader, pipeline)
                  for index, item in enumerate(reader.items(props.get("ParameterObjects", []),
                                                            "ParameterObjects", None, res_line))]
    values = [_parameter_value(item, index, reader, pipeline)
              for index, item in enumerate(reader.items(props.get("ParameterValues", []),
                                                        "ParameterValues", None, res_line))]
    pipeline.data = {"objects": [o for o in objects if o is not None],
                     "parameterObjects": [p for p in parameters if p is not None],
                     "parameterValues": [v for v in values if v is not None]}
    for name, problem in sorted(resolver.invalid.items()):
        report.error(problem, line=_line(resolver.parameters.get(name)))
    unused = sorted(set(given) - resolver.used)
    if unused:
        report.warn(f"--template-parameters {', '.join(unused)}: not used by pipeline "
                    f"{logical_id} (the template's parameters: "
                    f"{', '.join(resolver.parameters) or 'none'})")
    pipeline.secrets = resolver.secrets
    return pipeline


def _entry_id(item: Any, index: int, prop: str, reader: _Reader) -> tuple[str | None, int | None]:
    line = _line(item)
    if not isinstance(item, dict):
        reader.report.error(f"{prop}[{index}] must be a mapping with an Id", line=line)
        return None, line
    ident = reader.text(item.get("Id"), f"{prop}[{index}].Id", None, None, line)
    if not ident:
        if item.get("Id") is None:
            reader.report.error(f"{prop}[{index}] has no Id", line=line)
        return None, line
    return ident, line


_Entry = tuple[Mapping[str, Any], str, int | None]


def _keyed_entries(item: Mapping[str, Any], prop: str, values: str, ident: str,
                   line: int | None, reader: _Reader) -> list[_Entry]:
    """The ``{Key, ...}`` entries of ``Fields`` or ``Attributes`` with their resolved key and
    line; malformed ones are reported and skipped."""
    out: list[_Entry] = []
    for position, entry in enumerate(reader.items(item.get(prop, []), prop, ident, line)):
        entry_line = _line(entry) or line
        if not isinstance(entry, dict):
            reader.report.error(f"{prop}[{position}] must be a mapping with Key and {values}",
                                ident, None, line=entry_line)
            continue
        key = reader.text(entry.get("Key"), f"{prop}[{position}].Key", ident, None, entry_line)
        if not key:
            if entry.get("Key") is None:
                reader.report.error(f"{prop}[{position}] has no Key", ident, None,
                                    line=entry_line)
            continue
        out.append((entry, key, entry_line))
    return out


def _pipeline_object(item: Any, index: int, reader: _Reader,
                     pipeline: TemplatePipeline) -> dict[str, Any] | None:
    ident, line = _entry_id(item, index, "PipelineObjects", reader)
    if ident is None:
        return None
    if line is not None:
        pipeline.lines.setdefault(ident, line)
    name = reader.text(item.get("Name", ident), "Name", ident, "name", line) or ident
    for key in item:
        if key not in ("Id", "Name", "Fields"):
            reader.report.warn(f"a pipeline object has Id, Name and Fields; {key!r} is ignored",
                               ident, None, line=line)
    fields: list[dict[str, str]] = []
    for entry, key, entry_line in _keyed_entries(item, "Fields", "StringValue or RefValue",
                                                 ident, line, reader):
        for extra in entry:
            if extra not in ("Key", "StringValue", "RefValue"):
                reader.report.warn(f"a field has Key and StringValue or RefValue; {extra!r} is "
                                   "ignored", ident, key, line=entry_line)
        has_string, has_ref = "StringValue" in entry, "RefValue" in entry
        if has_string == has_ref:
            reader.report.error("a field needs exactly one of StringValue and RefValue",
                                ident, key, line=entry_line)
            continue
        which = "StringValue" if has_string else "RefValue"
        value = reader.text(entry[which], which, ident, key, entry_line)
        if value is None:
            pipeline.unresolved.add((ident, key))
            continue
        fields.append({"key": key, "stringValue" if has_string else "refValue": value})
    return {"id": ident, "name": name, "fields": fields}


def _parameter_object(item: Any, index: int, reader: _Reader,
                      pipeline: TemplatePipeline) -> dict[str, Any] | None:
    ident, line = _entry_id(item, index, "ParameterObjects", reader)
    if ident is None:
        return None
    if line is not None:
        pipeline.parameter_lines.setdefault(ident, line)
    attributes = []
    for entry, key, entry_line in _keyed_entries(item, "Attributes", "StringValue", ident,
                                                 line, reader):
        value = reader.text(entry.get("StringValue"), "StringValue", ident, key, entry_line)
        if value is not None:
            attributes.append({"key": key, "stringValue": value})
        elif entry.get("StringValue") is None:
            reader.report.error("a parameter attribute needs a StringValue", ident, key,
                                line=entry_line)
    return {"id": ident, "attributes": attributes}


def _parameter_value(item: Any, index: int, reader: _Reader,
                     pipeline: TemplatePipeline) -> dict[str, Any] | None:
    ident, line = _entry_id(item, index, "ParameterValues", reader)
    if ident is None:
        return None
    if line is not None:
        pipeline.value_lines.setdefault(ident, line)
    value = reader.text(item.get("StringValue"), "StringValue", ident, "value", line)
    if value is None:
        if item.get("StringValue") is None:
            reader.report.error("a parameter value needs a StringValue", ident, "value",
                                line=line)
        return None
    return {"id": ident, "stringValue": value}
