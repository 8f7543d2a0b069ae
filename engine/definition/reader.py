"""Read definition files as the AWS CLI reads them, into :class:`RawDefinition`.

Three shapes are accepted:

* the definition-file format: ``{"objects": [{"id", "name", "k": "v" | {"ref": id} | [...]}],
  "parameters": [{"id", attr: value}], "values": {id: value | [values]}}``;
* the API wire format (boto3, ``GetPipelineDefinition``): objects with
  ``fields: [{"key", "stringValue" | "refValue"}]``, ``parameterObjects``/``parameters`` with
  ``attributes``, and ``parameterValues: [{"id", "stringValue"}]``;
* a CloudFormation template (JSON or YAML) holding an ``AWS::DataPipeline::Pipeline``
  resource: see :mod:`engine.definition.cloudformation`.

Nothing is interpreted here beyond the shape: types, fields and references are the validator's.
Strict JSON is required unless ``lenient`` (see :mod:`engine.definition.jsontext`). Every
finding names its file.

Decisions where AWS is silent: files over 10 MiB are refused before they are read; a definition
written in YAML (``objects:`` ...) is read, with a warning that the AWS CLI reads JSON only;
numbers and booleans are accepted as their string form with a warning; an empty list means the
field is not set (warning); a NUL character in a value or key is refused (no field can carry it
to a command, a database or a store).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.definition.jsontext import MAX_JSON_DEPTH, JsonNumber, line_col, parse_json
from engine.definition.raw import FieldValue, RawDefinition, RawObject, RawParameter, Ref
from engine.errors import ParseError, Problem, Report

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_JSON_DEPTH",
    "FieldValue",
    "RawDefinition",
    "RawObject",
    "RawParameter",
    "Ref",
    "TemplateOptions",
    "id_lines",
    "is_missing_file",
    "json_kind",
    "line_col",
    "load_text",
    "parse_json",
    "parse_value_args",
    "read_definition",
    "read_parameter_objects",
    "read_parameter_values",
]

#: The largest file headrace reads (decision: AWS caps a definition at 100 objects of 15,360
#: bytes by default; 10 MiB leaves room for raised limits and still refuses a runaway file).
MAX_FILE_BYTES = 10 * 1024 * 1024


def load_text(location: str, *, max_bytes: int = MAX_FILE_BYTES) -> tuple[str, str]:
    """Read ``path`` or ``file://path``; return (text, display name).

    A file over ``max_bytes`` is refused before it is read; text that is not UTF-8 is refused
    with the line and column of the first bad byte."""
    from connectors.local import path_from_url  # the one file:// parser; only when reading

    path = path_from_url(location)
    try:
        size = Path(path).stat().st_size
        if size > max_bytes:
            raise ParseError([Problem("error", f"{size:,} bytes: headrace reads definition, "
                                      f"parameter and values files of at most {max_bytes:,} "
                                      "bytes", file=path)])
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ParseError([Problem("error", f"file not found: {path}")]) from None
    except IsADirectoryError:
        raise ParseError([Problem("error", f"cannot read {path}: it is a directory")]) from None
    except OSError as exc:
        raise ParseError([Problem("error", f"cannot read {path}: {exc.strerror}")]) from None
    except ValueError as exc:  # a NUL in the path
        raise ParseError([Problem("error", f"cannot read {path!r}: {exc}")]) from None
    try:
        return data.decode("utf-8"), path
    except UnicodeDecodeError as exc:
        raise ParseError([_not_utf8(data, exc, path)]) from None


def _not_utf8(data: bytes, exc: UnicodeDecodeError, path: str) -> Problem:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Problem("error", "the file is UTF-16 text (it starts with a UTF-16 byte-order "
                       "mark): save it as UTF-8", line=1, column=1, file=path)
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return Problem("error", f"not UTF-8 text: {exc.reason} (byte {exc.start}, 0x"
                   f"{data[exc.start]:02x})", line=line, column=column, file=path)


def is_missing_file(error: ParseError) -> bool:
    """True when a :class:`ParseError` from :func:`load_text` means the file could not be read
    at all (a usage error), rather than read and found wrong."""
    return any(p.message.startswith(("file not found:", "cannot read ")) for p in error.problems)


class Stamped:
    """A report whose findings are all moved to ``target`` with ``file`` set (unless they name
    a file of their own): every finding says which file it is in."""

    def __init__(self, target: Report, source: str) -> None:
        self.target, self.source, self.report = target, source, Report()

    def __enter__(self) -> Report:
        return self.report

    def __exit__(self, *exc: object) -> None:
        self.target.errors.extend(_with_file(p, self.source) for p in self.report.errors)
        self.target.warnings.extend(_with_file(p, self.source) for p in self.report.warnings)


def _with_file(problem: Problem, source: str) -> Problem:
    return problem if problem.file is not None else replace(problem, file=source)


def _stamp_error(exc: ParseError, source: str) -> ParseError:
    """A ParseError whose problems, and the warnings collected so far, name the file."""
    return ParseError([_with_file(p, source) for p in exc.problems],
                      [_with_file(p, source) for p in exc.warnings])


# --- shapes ----------------------------------------------------------------------------------

def id_lines(text: str) -> dict[str, int]:
    """Line of the first ``"id": "X"`` for each id, to point findings at objects."""
    lines: dict[str, int] = {}
    line, counted = 1, 0
    for m in re.finditer(r'"id"\s*:\s*"((?:[^"\\]|\\.)*)"', text):
        line += text.count("\n", counted, m.start())  # counted once, in order: linear
        counted = m.start()
        try:
            ident = json.loads(f'"{m.group(1)}"')
        except json.JSONDecodeError:
            continue
        if isinstance(ident, str):
            lines.setdefault(ident, line)
    return lines


def _key_lines(text: str, data: Any) -> dict[str, int]:
    """Line of each key of a values object (``{"values": {"myX": ...}}``)."""
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        return id_lines(text)
    lines: dict[str, int] = {}
    start = max(text.find('"values"'), 0)
    line, counted = text.count("\n", 0, start) + 1, start
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:', text[start:]):
        line += text.count("\n", counted, start + m.start())
        counted = start + m.start()
        try:
            key = json.loads(f'"{m.group(1)}"')
        except json.JSONDecodeError:
            continue
        if key in values:
            lines.setdefault(key, line)
    return lines


def _is_secret(*names: str | None) -> bool:
    return any(n is not None and n.startswith("*") for n in names)


def _scalar(value: Any, where: str, report: Report, object_id: str | None,
            key: str | None, line: int | None = None) -> str | None:
    if isinstance(value, JsonNumber):
        shown = "****" if _is_secret(object_id, key) else str(value)[:40]
        more = "..." if len(value) > 40 and not _is_secret(object_id, key) else ""
        report.warn(f"{where}: value should be a string, got the number {shown}{more}",
                    object_id, key, line=line)
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            report.error(f"{where}: the value holds a NUL character (\\u0000), which no field "
                         "can carry", object_id, key, line=line)
            return None
        return value
    if isinstance(value, bool):
        shown = "****" if _is_secret(object_id, key) else f"\"{str(value).lower()}\""
        report.warn(f"{where}: value should be the string {shown}", object_id, key, line=line)
        return str(value).lower()
    report.error(f"{where}: value must be a string, a {{\"ref\": ...}} or a list of them, got "
                 f"{json_kind(value)}", object_id, key, line=line)
    return None


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, JsonNumber):
        return "a number"
    return type(value).__name__


def _name_problem(name: Any, what: str) -> str | None:
    """Why a key or id cannot be used, or None."""
    if not isinstance(name, str) or not name:
        return f"{what} must be a non-empty string"
    if "\x00" in name:
        return f"{what} holds a NUL character (\\u0000)"
    return None


def _field_values(value: Any, object_id: str, key: str, report: Report,
                  line: int | None = None) -> list[FieldValue]:
    items = value if isinstance(value, list) else [value]
    out: list[FieldValue] = []
    for item in items:
        if isinstance(item, dict):
            target = item.get("ref")
            if set(item) == {"ref"} and isinstance(target, str) and target and (
                    "\x00" not in target):
                out.append(Ref(target))
            else:
                shown = "****" if _is_secret(key) else json.dumps(item)[:80]
                report.error("a reference must be an object with the single key \"ref\" and a "
                             f"non-empty string value, got {shown}", object_id, key, line=line)
        elif isinstance(item, list):
            report.error("a list inside a list is not a value (a multi-valued field is one "
                         "flat list)", object_id, key, line=line)
        else:
            s = _scalar(item, "field", report, object_id, key, line)
            if s is not None:
                out.append(s)
    return out


def _object_id(obj: dict[str, Any], index: int, report: Report, line: int | None) -> str | None:
    ident = obj.get("id")
    problem = _name_problem(ident, "\"id\"")
    if problem is None:
        return str(ident)
    if ident is None:
        report.error(f"objects[{index}] has no \"id\" (every object needs a non-empty id)",
                     line=line)
    else:
        report.error(f"objects[{index}]: {problem}, got {json_kind(ident)}", line=line)
    return None


def _name(obj: dict[str, Any], ident: str, report: Report, line: int | None) -> str:
    name = obj.get("name", ident)
    if not isinstance(name, str) or isinstance(name, JsonNumber) or "\x00" in name:
        report.error("name must be a string (without NUL characters)", ident, "name", line=line)
        return ident
    return name


def _objects(raw: list[Any], lines: dict[str, int], report: Report) -> list[RawObject]:
    objects: list[RawObject] = []
    for index, obj in enumerate(raw):
        if not isinstance(obj, dict):
            report.error(f"objects[{index}] is not a JSON object, got {json_kind(obj)}")
            continue
        if isinstance(obj.get("fields"), list):
            wire = _object_wire_format(obj, index, lines, report)
            if wire is not None:
                objects.append(wire)
            continue
        ident = _object_id(obj, index, report, None)
        if ident is None:
            continue
        line = lines.get(ident)
        name = _name(obj, ident, report, line)
        fields: dict[str, list[FieldValue]] = {}
        for key, value in obj.items():
            if key in ("id", "name"):
                continue
            problem = _name_problem(key, "a field name")
            if problem:
                report.error(problem, ident, None, line=line)
                continue
            if isinstance(value, list) and not value:
                report.warn("empty list: the field is treated as not set", ident, key, line=line)
                continue
            values = _field_values(value, ident, key, report, line)
            if values:
                fields[key] = values
        objects.append(RawObject(ident, name, fields, line))
    return objects


def _object_wire_format(obj: dict[str, Any], index: int, lines: dict[str, int],
                        report: Report) -> RawObject | None:
    ident = _object_id(obj, index, report, None)
    if ident is None:
        return None
    line = lines.get(ident)
    name = _name(obj, ident, report, line)
    for wire_key in obj:
        if wire_key not in ("id", "name", "fields"):
            report.warn(f"key {wire_key!r} is ignored: in the API wire format an object holds "
                        "only \"id\", \"name\" and \"fields\"", ident, str(wire_key), line=line)
    fields: dict[str, list[FieldValue]] = {}
    for position, entry in enumerate(obj["fields"]):
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or _name_problem(key, "key") is not None:
            report.error(f"fields[{position}] needs a \"key\" (a non-empty string)", ident,
                         line=line)
            continue
        assert isinstance(key, str)
        ref_value, string_value = entry.get("refValue"), entry.get("stringValue")
        if (isinstance(ref_value, str) and not isinstance(ref_value, JsonNumber) and ref_value
                and string_value is None and "\x00" not in ref_value):
            fields.setdefault(key, []).append(Ref(ref_value))
        elif isinstance(string_value, str) and ref_value is None:
            s = _scalar(string_value, "field", report, ident, key, line)
            if s is not None:
                fields.setdefault(key, []).append(s)
        else:
            report.error("a field needs exactly one of a string \"stringValue\" or a non-empty "
                         "\"refValue\"", ident, key, line=line)
    return RawObject(ident, name, fields, line)


def _parameters(raw: list[Any], lines: dict[str, int], report: Report,
                source: str) -> list[RawParameter]:
    params: list[RawParameter] = []
    for index, p in enumerate(raw):
        ident = p.get("id") if isinstance(p, dict) else None
        if not isinstance(p, dict) or _name_problem(ident, "id") is not None:
            report.error(f"parameters[{index}] has no \"id\" (a non-empty string)")
            continue
        assert isinstance(ident, str)
        line = lines.get(ident)
        attrs: dict[str, list[str]] = {}
        if isinstance(p.get("attributes"), list):  # wire format
            for entry in p["attributes"]:
                if isinstance(entry, dict) and isinstance(entry.get("key"), str) and isinstance(
                        entry.get("stringValue"), str):
                    s = _scalar(entry["stringValue"], f"parameter attribute {entry['key']!r}",
                                report, ident, entry["key"], line)
                    if s is not None:
                        attrs.setdefault(entry["key"], []).append(s)
                else:
                    report.error("a parameter attribute needs \"key\" and \"stringValue\"",
                                 ident, line=line)
        else:
            for key, value in p.items():
                if key == "id":
                    continue
                items = value if isinstance(value, list) else [value]
                out = []
                for item in items:
                    s = _scalar(item, f"parameter attribute {key!r}", report, ident, key, line)
                    if s is not None:
                        out.append(s)
                attrs[key] = out
        params.append(RawParameter(ident, attrs, line, source))
    return params


def _values(raw: Any, report: Report) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(raw, dict):
        for key, value in raw.items():
            if _name_problem(key, "a value's id") is not None:
                report.error("a value's id must be a non-empty string without NUL characters")
                continue
            items = value if isinstance(value, list) else [value]
            vals = []
            for item in items:
                s = _scalar(item, f"value of {key!r}", report, key, None)
                if s is not None:
                    vals.append(s)
            out[key] = vals
    elif isinstance(raw, list):  # wire format parameterValues
        for index, entry in enumerate(raw):
            if isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(
                    entry.get("stringValue"), str) and entry["id"]:
                s = _scalar(entry["stringValue"], f"value of {entry['id']!r}", report,
                            entry["id"], None)
                if s is not None:
                    out.setdefault(entry["id"], []).append(s)
            else:
                report.error(f"parameterValues[{index}] needs \"id\" and \"stringValue\"")
    else:
        report.error(f"values must be a JSON object of id -> value, got {json_kind(raw)}")
    return out


# --- what the file is ------------------------------------------------------------------------

def _looks_like_json(text: str) -> bool:
    stripped = text.lstrip("\ufeff \t\r\n")
    return stripped.startswith(("{", "["))


def _parse(text: str, source: str, lenient: bool, report: Report) -> tuple[Any, str]:
    """The file's data and what it is: ``json``, ``yaml`` or ``template``."""
    from engine.definition import cloudformation

    if not text.strip("\ufeff \t\r\n"):
        raise ParseError([Problem("error", "the file is empty (a definition is a JSON object "
                                  "with \"objects\")", line=1, column=1)], report.warnings)
    if not _looks_like_json(text):
        data = cloudformation.parse_yaml(text, source, report)
        if cloudformation.is_template(data):
            return data, "template"
        return data, "yaml"
    data = parse_json(text, source, lenient=lenient, report=report)
    if cloudformation.is_template(data):
        # parsed again with the position of every object, for findings at template lines
        return cloudformation.parse_json_template(text, source, lenient=lenient), "template"
    return data, "json"


class TemplateOptions:
    """How to read a CloudFormation template: which pipeline resource, and the values of its
    parameters, of other resources and of what only a live stack knows (``KEY=VALUE``)."""

    def __init__(self, resource: str | None = None,
                 parameters: dict[str, str] | None = None) -> None:
        self.resource = resource
        self.parameters = dict(parameters or {})


def read_definition(text: str, source: str = "<definition>", *, lenient: bool = False,
                    report: Report | None = None,
                    template: TemplateOptions | None = None) -> RawDefinition:
    """Parse a definition file in any accepted shape. Shape findings go to ``report``; a file
    that cannot be read as a definition at all raises :class:`ParseError`."""
    report = report if report is not None else Report()
    with Stamped(report, source) as local:
        try:
            return _read_definition(text, source, lenient, local, template)
        except ParseError as exc:
            raise _stamp_error(exc, source) from None


def _read_definition(text: str, source: str, lenient: bool, report: Report,
                     template: TemplateOptions | None) -> RawDefinition:
    data, kind = _parse(text, source, lenient, report)
    lines: dict[str, int] = {}
    param_lines: dict[str, int] = {}
    definition = RawDefinition(source=source)
    if kind == "template":
        from engine.definition.cloudformation import read_template

        options = template or TemplateOptions()
        pipeline = read_template(data, source, report, options.resource, options.parameters)
        data, lines, param_lines = pipeline.data, pipeline.lines, pipeline.parameter_lines
        definition.secrets = pipeline.secrets
        definition.unresolved = pipeline.unresolved
        definition.value_lines = pipeline.value_lines
        definition.kind = "CloudFormation template"
    elif kind == "yaml":
        from engine.definition.cloudformation import yaml_lines

        if not isinstance(data, dict) or not ({"objects", "pipelineObjects"} & set(data)):
            raise ParseError([Problem(
                "error", "this is YAML, not JSON, and neither a definition (\"objects\") nor a "
                "CloudFormation template (\"Resources\" with an AWS::DataPipeline::Pipeline)",
                line=1, column=1)], report.warnings)
        report.warn("the definition is YAML: headrace reads it, but the AWS CLI reads "
                    "definitions as JSON only", line=1, column=1)
        lines = param_lines = yaml_lines(data)
        definition.kind = "definition (YAML)"
    else:
        lines = param_lines = id_lines(text)
    if not isinstance(data, dict):
        raise ParseError([Problem("error", "the top level must be a JSON object with "
                                  f"\"objects\", got {json_kind(data)}", line=1, column=1)],
                         report.warnings)
    objects_raw = data.get("objects", data.get("pipelineObjects"))
    if not isinstance(objects_raw, list):
        raise ParseError([Problem("error", "no \"objects\" list (a definition file holds "
                                  "{\"objects\": [...], \"parameters\": [...], \"values\": "
                                  "{...}})", line=1, column=1)], report.warnings)
    definition.objects = _objects(objects_raw, lines, report)
    params_raw = data.get("parameters", data.get("parameterObjects", []))
    if isinstance(params_raw, list):
        definition.parameters = _parameters(params_raw, param_lines, report, source)
    else:
        report.error(f"\"parameters\" must be a list, got {json_kind(params_raw)}")
    if "values" in data:
        definition.values = _values(data["values"], report)
        definition.value_lines = _key_lines(text, data) if kind == "json" else param_lines
    elif "parameterValues" in data:
        definition.values = _values(data["parameterValues"], report)
        definition.value_lines = definition.value_lines or param_lines
    return definition


def _read_json_like(text: str, source: str, lenient: bool, report: Report) -> tuple[Any, str]:
    if _looks_like_json(text):
        return parse_json(text, source, lenient=lenient, report=report), "json"
    from engine.definition import cloudformation

    return cloudformation.parse_yaml(text, source, report), "yaml"


def read_parameter_objects(text: str, source: str, *, lenient: bool = False,
                           report: Report | None = None) -> list[RawParameter]:
    """A ``--parameter-objects`` file: ``{"parameters": [...]}`` (or a bare list)."""
    report = report if report is not None else Report()
    with Stamped(report, source) as local:
        try:
            data, _ = _read_json_like(text, source, lenient, local)
        except ParseError as exc:
            raise _stamp_error(exc, source) from None
        raw = data.get("parameters", data.get("parameterObjects")) if isinstance(
            data, dict) else data
        if not isinstance(raw, list):
            raise ParseError([Problem("error", "expected {\"parameters\": [...]}", line=1,
                                      column=1, file=source)],
                             [_with_file(w, source) for w in local.warnings])
        return _parameters(raw, id_lines(text), local, source)


def read_parameter_values(text: str, source: str, *, lenient: bool = False,
                          report: Report | None = None) -> tuple[dict[str, list[str]],
                                                                 dict[str, int]]:
    """A ``--parameter-values-uri`` file: ``{"values": {...}}`` (or the wire-format list).
    Returns the values and the line of each id."""
    report = report if report is not None else Report()
    with Stamped(report, source) as local:
        try:
            data, kind = _read_json_like(text, source, lenient, local)
        except ParseError as exc:
            raise _stamp_error(exc, source) from None
        lines = _key_lines(text, data) if kind == "json" else {}
        if isinstance(data, dict) and "values" in data:
            return _values(data["values"], local), lines
        if isinstance(data, dict) and "parameterValues" in data:
            return _values(data["parameterValues"], local), id_lines(text)
        raise ParseError([Problem("error", "expected {\"values\": {...}}", line=1, column=1,
                                  file=source)], [_with_file(w, source) for w in local.warnings])


def parse_value_args(pairs: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """``--parameter-values k=v k=v2``: a repeated key makes an array, in order."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ParseError([Problem("error", f"--parameter-values expects id=value, got "
                                      f"{pair!r}")])
        out.setdefault(key, []).append(value)
    return out

