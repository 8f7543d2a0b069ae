"""Read definition files as the AWS CLI reads them, into :class:`RawDefinition`.

Two shapes are accepted:

* the definition-file format: ``{"objects": [{"id", "name", "k": "v" | {"ref": id} | [...]}],
  "parameters": [{"id", attr: value}], "values": {id: value | [values]}}``;
* the API wire format (boto3, CloudFormation, ``GetPipelineDefinition``): objects with
  ``fields: [{"key", "stringValue" | "refValue"}]``, ``parameterObjects``/``parameters`` with
  ``attributes``, and ``parameterValues: [{"id", "stringValue"}]``.

Nothing is interpreted here beyond the shape: types, fields and references are the validator's.
Strict JSON is required unless ``lenient``, which repairs raw control characters inside strings
and trailing commas, with a warning (and line) for each repair.

Decisions where AWS is silent: files over 10 MiB and JSON nested deeper than 64 levels are
refused (clean errors instead of exhausting memory or the parser's stack); a key repeated in one
JSON object warns and the last one wins (Python's and the AWS CLI's JSON reading); numbers and
booleans are accepted as their string form with a warning; an empty list means the field is not
set (warning); an unpaired ``\\u`` surrogate escape is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ParseError, Problem, Report


@dataclass(frozen=True)
class Ref:
    """A ``{"ref": id}`` field value."""

    id: str

    def __str__(self) -> str:
        return f"{{ref: {self.id}}}"


FieldValue = str | Ref


@dataclass
class RawObject:
    id: str
    name: str
    fields: dict[str, list[FieldValue]]
    line: int | None = None

    @property
    def type(self) -> str | None:
        values = self.fields.get("type")
        if values and isinstance(values[0], str):
            return values[0]
        return None


@dataclass
class RawParameter:
    id: str
    attributes: dict[str, list[str]]
    line: int | None = None

    def attr(self, name: str) -> str | None:
        values = self.attributes.get(name)
        return values[0] if values else None


@dataclass
class RawDefinition:
    objects: list[RawObject] = field(default_factory=list)
    parameters: list[RawParameter] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    source: str = "<definition>"


#: The largest file headrace reads (decision: AWS caps a definition at 100 objects of 15,360
#: bytes by default; 10 MiB leaves room for raised limits and still refuses a runaway file).
MAX_FILE_BYTES = 10 * 1024 * 1024
#: JSON nesting deeper than this is refused (a definition needs 4 levels; Python's own parser
#: would otherwise fail with a RecursionError).
MAX_JSON_DEPTH = 64


def load_text(location: str, *, max_bytes: int = MAX_FILE_BYTES) -> tuple[str, str]:
    """Read ``path`` or ``file://path``; return (text, display name).

    A file over ``max_bytes`` is refused before it is read."""
    path = location[len("file://"):] if location.startswith("file://") else location
    try:
        size = Path(path).stat().st_size
        if size > max_bytes:
            raise ParseError([Problem("error", f"{path} is {size:,} bytes: headrace reads "
                                      f"definition, parameter and values files of at most "
                                      f"{max_bytes:,} bytes")])
        return Path(path).read_text(encoding="utf-8"), path
    except FileNotFoundError:
        raise ParseError([Problem("error", f"file not found: {path}")]) from None
    except UnicodeDecodeError as exc:
        raise ParseError([Problem("error", f"{path} is not UTF-8 text: {exc.reason} at byte "
                                  f"{exc.start}")]) from None
    except IsADirectoryError:
        raise ParseError([Problem("error", f"cannot read {path}: it is a directory")]) from None
    except OSError as exc:
        raise ParseError([Problem("error", f"cannot read {path}: {exc.strerror}")]) from None


def is_missing_file(error: ParseError) -> bool:
    """True when a :class:`ParseError` from :func:`load_text` means the file could not be read
    at all (a usage error), rather than read and found wrong."""
    return any(p.message.startswith(("file not found:", "cannot read ")) for p in error.problems)


# --- JSON with line numbers, strict or lenient ------------------------------------------------

def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _repair(text: str, source: str, report: Report) -> str:
    """Escape raw control characters inside strings and drop trailing commas (lenient mode)."""
    out: list[str] = []
    in_string = False
    escaped = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ord(ch) < 0x20:
                line, col = _line_col(text, i)
                report.warn(f"{source}: raw control character {ch!r} inside a string "
                            "(accepted by --lenient)", line=line, column=col)
                ch = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\u{ord(ch):04x}")
            out.append(ch)
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "]}":
                line, col = _line_col(text, i)
                report.warn(f"{source}: trailing comma (accepted by --lenient)",
                            line=line, column=col)
            else:
                out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _no_duplicate_keys(source: str, report: Report):  # type: ignore[no-untyped-def]
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                report.warn(f"{source}: key {key!r} appears twice in one JSON object; the last "
                            "one is used")
            result[key] = value
        return result
    return hook


def _too_deep(text: str) -> tuple[int, int] | None:
    """Line and column where brackets nest deeper than :data:`MAX_JSON_DEPTH`, if they do."""
    depth = 0
    in_string = escaped = False
    for pos, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return _line_col(text, pos)
        elif ch in "]}":
            depth -= 1
    return None


def parse_json(text: str, source: str, *, lenient: bool = False,
               report: Report | None = None) -> Any:
    """Parse JSON; on failure raise :class:`ParseError` with line and column."""
    report = report if report is not None else Report()
    if lenient:
        text = _repair(text, source, report)
    deep = _too_deep(text)
    if deep is not None:
        raise ParseError([Problem("error", f"{source}: JSON nested more than {MAX_JSON_DEPTH} "
                                  "levels deep (a definition needs four)", line=deep[0],
                                  column=deep[1])], report.warnings)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys(source, report))
    except json.JSONDecodeError as exc:
        hint = ""
        if not lenient and ("control character" in exc.msg or "Expecting property name" in exc.msg
                            or "Expecting value" in exc.msg):
            hint = (" (not strict JSON; --lenient accepts raw newlines in strings and trailing "
                    "commas)")
        raise ParseError([Problem("error", f"{source}: {exc.msg}{hint}", line=exc.lineno,
                                  column=exc.colno)], report.warnings) from None
    if _has_surrogate(data):
        m = _LONE_SURROGATE.search(text)
        line, column = _line_col(text, m.start()) if m else (None, None)
        raise ParseError([Problem("error", f"{source}: a \\u escape is an unpaired UTF-16 "
                                  "surrogate, which is not a character", line=line,
                                  column=column)], report.warnings)
    return data


_LONE_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                             r"|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


# --- shapes ----------------------------------------------------------------------------------

def _id_lines(text: str) -> dict[str, int]:
    """Line of the first ``"id": "X"`` for each id, to point errors at objects."""
    lines: dict[str, int] = {}
    for m in re.finditer(r'"id"\s*:\s*"((?:[^"\\]|\\.)*)"', text):
        try:
            ident = json.loads(f'"{m.group(1)}"')
        except json.JSONDecodeError:
            continue
        lines.setdefault(ident, text.count("\n", 0, m.start()) + 1)
    return lines


def _is_secret(*names: str | None) -> bool:
    return any(n is not None and n.startswith("*") for n in names)


def _scalar(value: Any, where: str, report: Report, object_id: str | None,
            key: str | None, line: int | None = None) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        shown = "****" if _is_secret(object_id, key) else f"\"{str(value).lower()}\""
        report.warn(f"{where}: value should be the string {shown}", object_id, key, line=line)
        return str(value).lower()
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            report.error(f"{where}: NaN and Infinity are not values", object_id, key, line=line)
            return None
        shown = "****" if _is_secret(object_id, key) else str(value)
        report.warn(f"{where}: value should be a string, got the number {shown}", object_id,
                    key, line=line)
        return str(value)
    report.error(f"{where}: value must be a string, a {{\"ref\": ...}} or a list of them, got "
                 f"{_json_kind(value)}", object_id, key, line=line)
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _field_values(value: Any, object_id: str, key: str, report: Report,
                  line: int | None = None) -> list[FieldValue]:
    items = value if isinstance(value, list) else [value]
    out: list[FieldValue] = []
    for item in items:
        if isinstance(item, dict):
            if set(item) == {"ref"} and isinstance(item["ref"], str) and item["ref"]:
                out.append(Ref(item["ref"]))
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


def _objects_file_format(raw: list[Any], lines: dict[str, int], report: Report) -> list[RawObject]:
    objects: list[RawObject] = []
    for index, obj in enumerate(raw):
        if not isinstance(obj, dict):
            report.error(f"objects[{index}] is not a JSON object")
            continue
        if "fields" in obj and isinstance(obj.get("fields"), list):
            objects.append(_object_wire_format(obj, index, lines, report))
            continue
        ident = obj.get("id")
        if not isinstance(ident, str) or not ident:
            report.error(f"objects[{index}] has no \"id\" (every object needs a non-empty id)")
            continue
        line = lines.get(ident)
        name = obj.get("name", ident)
        if not isinstance(name, str):
            report.error("name must be a string", ident, "name", line=line)
            name = ident
        fields: dict[str, list[FieldValue]] = {}
        for key, value in obj.items():
            if key in ("id", "name"):
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
                        report: Report) -> RawObject:
    ident = obj.get("id")
    if not isinstance(ident, str) or not ident:
        report.error(f"objects[{index}] has no \"id\"")
        ident = f"<objects[{index}]>"
    line = lines.get(ident)
    name = obj.get("name", ident)
    if not isinstance(name, str):
        report.error("name must be a string", ident, "name", line=line)
        name = ident
    for key in obj:
        if key not in ("id", "name", "fields"):
            report.warn(f"key {key!r} is ignored: in the API wire format an object holds only "
                        "\"id\", \"name\" and \"fields\"", ident, key, line=line)
    fields: dict[str, list[FieldValue]] = {}
    for position, entry in enumerate(obj.get("fields", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry[
                "key"]:
            report.error(f"fields[{position}] needs a \"key\"", ident, line=line)
            continue
        key = entry["key"]
        ref_value, string_value = entry.get("refValue"), entry.get("stringValue")
        if isinstance(ref_value, str) and ref_value and string_value is None:
            fields.setdefault(key, []).append(Ref(ref_value))
        elif isinstance(string_value, str) and ref_value is None:
            fields.setdefault(key, []).append(string_value)
        else:
            report.error("a field needs exactly one of a string \"stringValue\" or a non-empty "
                         "\"refValue\"", ident, key, line=line)
    return RawObject(ident, name, fields, line)


def _parameters(raw: list[Any], lines: dict[str, int], report: Report) -> list[RawParameter]:
    params: list[RawParameter] = []
    for index, p in enumerate(raw):
        if not isinstance(p, dict) or not isinstance(p.get("id"), str) or not p["id"]:
            report.error(f"parameters[{index}] has no \"id\"")
            continue
        ident = p["id"]
        attrs: dict[str, list[str]] = {}
        if isinstance(p.get("attributes"), list):  # wire format
            for entry in p["attributes"]:
                if isinstance(entry, dict) and isinstance(entry.get("key"), str) and isinstance(
                        entry.get("stringValue"), str):
                    attrs.setdefault(entry["key"], []).append(entry["stringValue"])
                else:
                    report.error("a parameter attribute needs \"key\" and \"stringValue\"",
                                 ident, line=lines.get(ident))
        else:
            for key, value in p.items():
                if key == "id":
                    continue
                items = value if isinstance(value, list) else [value]
                out = []
                for item in items:
                    s = _scalar(item, f"parameter attribute {key!r}", report, ident, key,
                                lines.get(ident))
                    if s is not None:
                        out.append(s)
                attrs[key] = out
        params.append(RawParameter(ident, attrs, lines.get(ident)))
    return params


def _values(raw: Any, report: Report, source: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(raw, dict):
        for key, value in raw.items():
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
                    entry.get("stringValue"), str):
                out.setdefault(entry["id"], []).append(entry["stringValue"])
            else:
                report.error(f"{source}: parameterValues[{index}] needs \"id\" and "
                             "\"stringValue\"")
    else:
        report.error(f"{source}: values must be a JSON object of id -> value")
    return out


def read_definition(text: str, source: str = "<definition>", *, lenient: bool = False,
                    report: Report | None = None) -> RawDefinition:
    """Parse a definition file in either format. Shape errors go to ``report``."""
    report = report if report is not None else Report()
    data = parse_json(text, source, lenient=lenient, report=report)
    if not isinstance(data, dict):
        raise ParseError([Problem("error", f"{source}: the top level must be a JSON object with "
                                  "\"objects\"")], report.warnings)
    lines = _id_lines(text)
    objects_raw = data.get("objects", data.get("pipelineObjects"))
    if not isinstance(objects_raw, list):
        raise ParseError([Problem("error", f"{source}: no \"objects\" list (a definition file "
                                  "holds {\"objects\": [...], \"parameters\": [...], "
                                  "\"values\": {...}})")], report.warnings)
    definition = RawDefinition(source=source)
    definition.objects = _objects_file_format(objects_raw, lines, report)
    params_raw = data.get("parameters", data.get("parameterObjects", []))
    if isinstance(params_raw, list):
        definition.parameters = _parameters(params_raw, lines, report)
    else:
        report.error(f"{source}: \"parameters\" must be a list")
    if "values" in data:
        definition.values = _values(data["values"], report, source)
    elif "parameterValues" in data:
        definition.values = _values(data["parameterValues"], report, source)
    return definition


def read_parameter_objects(text: str, source: str, *, lenient: bool = False,
                           report: Report | None = None) -> list[RawParameter]:
    """A ``--parameter-objects`` file: ``{"parameters": [...]}`` (or a bare list)."""
    report = report if report is not None else Report()
    data = parse_json(text, source, lenient=lenient, report=report)
    raw = data.get("parameters", data.get("parameterObjects")) if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise ParseError([Problem("error", f"{source}: expected {{\"parameters\": [...]}}")],
                         report.warnings)
    return _parameters(raw, _id_lines(text), report)


def read_parameter_values(text: str, source: str, *, lenient: bool = False,
                          report: Report | None = None) -> dict[str, list[str]]:
    """A ``--parameter-values-uri`` file: ``{"values": {...}}`` (or wire-format list)."""
    report = report if report is not None else Report()
    data = parse_json(text, source, lenient=lenient, report=report)
    if isinstance(data, dict) and "values" in data:
        return _values(data["values"], report, source)
    if isinstance(data, dict) and "parameterValues" in data:
        return _values(data["parameterValues"], report, source)
    raise ParseError([Problem("error", f"{source}: expected {{\"values\": {{...}}}}")],
                     report.warnings)


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
