"""Parameter objects and their values (reference section 5).

A value comes from, in order: an override given at activation or on the command line, the
definition's ``values`` (or a values file), the parameter's ``default``. An empty string counts as
no value: real values files ship ``""`` as a placeholder (awslabs oracle-backup), and AWS treats
an empty field as unset. ``#{myX}`` and ``#{*myX}`` both find the parameter ``*myX`` (real files
use both spellings for one masked parameter), and a value for an id that no parameter object
declares is accepted as a String (AWS's own samples rely on it).

Decisions where AWS is silent: a required (not ``optional``) parameter without a value is a
warning in ``validate`` and an error when about to run; an ``AWS::S3::ObjectKey`` value that is
not a URI is a warning (headrace also reads ``file://`` and other schemes); ``--parameter-values``
flags override the definition's ``values`` id by id (an override for ``myX`` replaces a value
given as ``*myX``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from engine.definition.reader import RawParameter
from engine.errors import Report

PARAMETER_TYPES = ("String", "Integer", "Double", "AWS::S3::ObjectKey")
#: Parameter types are read in any case: the service accepted "string" (real definitions
#: deployed through CI use it); headrace keeps the documented spelling.
_TYPE_BY_LOWER = {t.lower(): t for t in PARAMETER_TYPES}
#: Where a value came from: (file, line); the file is "--parameter-values" for the flag.
Origin = tuple[str | None, int | None]
FLAG = "--parameter-values"
_ID_RE = re.compile(r"^\*?my[A-Z_][A-Za-z0-9_]*$|^\*?my[A-Za-z0-9_]*$")
_KNOWN_ATTRS = {"id", "type", "description", "optional", "allowedValues", "default", "isArray",
                "watermark", "helpText", "helpLink"}
_TRUE = {"true"}
_BOOLS = {"true", "false"}


def _bool(text: str | None) -> bool:
    return (text or "").strip().lower() in _TRUE


@dataclass
class ParameterDecl:
    id: str
    type: str = "String"
    description: str | None = None
    optional: bool = False
    allowed_values: tuple[str, ...] = ()
    default: tuple[str, ...] | None = None
    is_array: bool = False
    line: int | None = None
    source: str | None = None

    @property
    def secret(self) -> bool:
        return self.id.startswith("*")


def _base(name: str) -> str:
    return name[1:] if name.startswith("*") else name


class Parameters:
    """Declared parameters plus supplied values, with typed lookup."""

    def __init__(self, decls: list[ParameterDecl], values: dict[str, list[str]],
                 origins: dict[str, Origin] | None = None) -> None:
        self.decls = {d.id: d for d in decls}
        self._by_base = {_base(d.id): d for d in decls}
        self.values = {k: v for k, v in values.items()}
        self._values_by_base = {_base(k): k for k in values}
        self.origins: dict[str, Origin] = dict(origins or {})

    @classmethod
    def from_raw(cls, raw: list[RawParameter], values: dict[str, list[str]],
                 report: Report, origins: dict[str, Origin] | None = None) -> Parameters:
        decls = []
        seen: set[str] = set()
        for p in raw:
            where: _Where = {"line": p.line, "file": p.source}
            if p.id in seen:
                report.error("parameter declared twice", p.id, "id", **where)
                continue
            seen.add(p.id)
            if not _ID_RE.match(p.id):
                report.error("a parameter id must start with 'my' (or '*my' for a masked "
                             "value)", p.id, "id", **where)
            for attr in p.attributes:
                if attr not in _KNOWN_ATTRS and not attr.startswith("my"):
                    report.warn(f"unknown parameter attribute {attr!r} (known: "
                                f"{', '.join(sorted(_KNOWN_ATTRS))})", p.id, attr, **where)
            given_type = p.attr("type") or "String"
            ptype = _TYPE_BY_LOWER.get(given_type.strip().lower())
            if ptype is None:
                report.error(f"parameter type {given_type!r} is not one of "
                             f"{', '.join(PARAMETER_TYPES)} (in any case)", p.id, "type",
                             **where)
                ptype = "String"
            for flag in ("optional", "isArray"):
                val = p.attr(flag)
                if val is not None and val.strip().lower() not in _BOOLS:
                    report.error(f"{flag} must be \"true\" or \"false\", got {val!r}", p.id, flag,
                                 **where)
            default = p.attributes.get("default")
            decls.append(ParameterDecl(
                id=p.id, type=ptype, description=p.attr("description"),
                optional=_bool(p.attr("optional")),
                allowed_values=tuple(p.attributes.get("allowedValues", ())),
                default=tuple(default) if default is not None else None,
                is_array=_bool(p.attr("isArray")), line=p.line, source=p.source))
        return cls(decls, values, origins)

    def with_overrides(self, overrides: dict[str, list[str]]) -> Parameters:
        merged = dict(self.values)
        for key, vals in overrides.items():
            # an override for myX replaces a value given as *myX and vice versa
            existing = self._values_by_base.get(_base(key))
            if existing is not None:
                merged.pop(existing, None)
            merged[key] = vals
        origins = dict(self.origins)
        origins.update({key: (FLAG, None) for key in overrides})
        return Parameters(list(self.decls.values()), merged, origins)

    # --- lookup --------------------------------------------------------------------------

    def decl(self, name: str) -> ParameterDecl | None:
        return self.decls.get(name) or self._by_base.get(_base(name))

    def raw_value(self, name: str) -> tuple[str, ...] | None:
        """The value (as strings) for ``name``, or None when it has none (empty counts as none)."""
        key = name if name in self.values else self._values_by_base.get(_base(name))
        if key is not None:
            vals = tuple(self.values[key])
            if vals and any(v != "" for v in vals):
                return vals
        decl = self.decl(name)
        if decl is not None and decl.default is not None and (
                decl.is_array or len(decl.default) != 1 or decl.default[0] != ""):
            return decl.default
        return None

    def known(self, name: str) -> bool:
        """Declared, or given a value (even an empty one)."""
        return self.decl(name) is not None or name in self.values or (
            _base(name) in self._values_by_base)

    def is_secret(self, name: str) -> bool:
        decl = self.decl(name)
        if decl is not None:
            return decl.secret
        key = self._values_by_base.get(_base(name))
        return name.startswith("*") or (key is not None and key.startswith("*"))

    def names(self) -> list[str]:
        return sorted(set(self.decls) | set(self.values))

    # --- checks --------------------------------------------------------------------------

    def check_values(self, report: Report, *, missing_is_error: bool) -> None:
        """Type and allowedValues violations (errors); required parameters without a value
        (warnings from ``validate``, errors when about to run)."""
        for decl in self.decls.values():
            vals = self.raw_value(decl.id)
            declared: _Where = {"line": decl.line, "file": decl.source}
            if vals is None:
                if not decl.optional:
                    msg = "required parameter has no value (give it in \"values\", " \
                          "--parameter-values or --parameter-values-uri, or add a \"default\")"
                    if missing_is_error:
                        report.error(msg, decl.id, "value", **declared)
                    else:
                        report.warn(msg, decl.id, "value", **declared)
                continue
            given = self._origin(decl)
            if len(vals) > 1 and not decl.is_array:
                report.error(f"{len(vals)} values given but the parameter is not isArray",
                             decl.id, "value", **given)
            for v in vals:
                if "#{" in v:
                    continue  # an expression: checked when evaluated
                problem = _type_problem(decl.type, v, _shown(decl, v))
                if problem and decl.type == "AWS::S3::ObjectKey":
                    report.warn(problem, decl.id, "value", **given)
                elif problem:
                    report.error(problem, decl.id, "value", **given)
                if decl.allowed_values and v not in decl.allowed_values:
                    report.error(f"value {_shown(decl, v)} is not one of the allowedValues "
                                 f"{', '.join(repr(a) for a in decl.allowed_values)}",
                                 decl.id, "value", **given)

    def check_secret_references(self, report: Report, problem_of: Callable[[str], str | None],
                                *, missing_is_error: bool) -> None:
        """Masked values that are references (``env:NAME``, ``file:/path``) name a variable
        that is set or a file that can be read here (``problem_of`` says why not): a warning
        from ``validate``, an error when about to run, as a value that is missing is."""
        undeclared = [k for k in self.values if self.decl(k) is None and self.is_secret(k)]
        for name in [*(d.id for d in self.decls.values() if d.secret), *undeclared]:
            decl = self.decl(name)
            where = self._origin(decl) if decl is not None else _where(self.origins.get(name))
            for value in self.raw_value(name) or ():
                problem = problem_of(value)
                if problem is None:
                    continue
                if missing_is_error:
                    report.error(problem, name, "value", **where)
                else:
                    report.warn(problem, name, "value", **where)

    def _origin(self, decl: ParameterDecl) -> _Where:
        """Where the value of ``decl`` was given (a values file, the flag, or its default)."""
        key = decl.id if decl.id in self.values else self._values_by_base.get(_base(decl.id))
        if key is not None and key in self.origins and self.raw_value(decl.id) is not None and (
                any(v != "" for v in self.values.get(key, ()))):
            file, line = self.origins[key]
            return {"line": line, "file": file}
        return {"line": decl.line, "file": decl.source}


class _Where(TypedDict):
    """Where a problem is, as ``Report.error`` and ``Report.warn`` take it."""

    line: int | None
    file: str | None


def _where(origin: Origin | None) -> _Where:
    file, line = origin or (None, None)
    return {"line": line, "file": file}


def _shown(decl: ParameterDecl, value: str) -> str:
    return "****" if decl.secret else repr(value)


def _type_problem(ptype: str, value: str, shown: str) -> str | None:
    if ptype == "Integer":
        try:
            int(value.strip())
        except ValueError:
            return f"value {shown} is not an Integer"
    elif ptype == "Double":
        try:
            float(value.strip())
        except ValueError:
            return f"value {shown} is not a Double"
    elif ptype == "AWS::S3::ObjectKey" and value and not re.match(r"^[a-z][a-z0-9+.-]*://",
                                                                 value):
        return f"value {shown} is not a URI such as s3://bucket/key or file:///path"
    return None


def typed(decl: ParameterDecl | None, value: str) -> object:
    """A parameter value as the expression language sees it: Integer -> int, Double -> float."""
    if decl is None or "#{" in value:
        return value
    try:
        if decl.type == "Integer":
            return int(value.strip())
        if decl.type == "Double":
            return float(value.strip())
    except ValueError:
        return value
    return value
