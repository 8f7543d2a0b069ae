"""CloudFormation's intrinsic functions, resolved the way a stack creation would, from the
template's parameters and the values the user gives (``--template-parameters KEY=VALUE``).

``Ref`` of a template parameter takes the given value, else its ``Default``; ``Ref`` of another
resource (a bucket's or a topic's name), ``Fn::GetAtt`` (keyed ``LogicalId.Attribute``) and
``Fn::ImportValue`` (keyed by the export's name) are what only a live stack knows, so they come
from the same option or are an :class:`Unresolved` naming the key to supply. ``Fn::Sub``,
``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::If`` (with ``Fn::Equals``, ``Fn::And``,
``Fn::Or``, ``Fn::Not`` and ``Condition`` in ``Conditions``), ``Fn::FindInMap`` and
``Fn::Base64`` are computed here.

Decisions where AWS is silent (for a template read outside CloudFormation): the pseudo
parameters default to ``AWS::Region`` us-east-1, ``AWS::AccountId`` 123456789012,
``AWS::StackName`` headrace, ``AWS::Partition`` aws, ``AWS::URLSuffix`` amazonaws.com, and any
of them can be given with the same option; a parameter of an ``AWS::SSM::Parameter::Value<...>``
type must be given (its Default is the name of an SSM parameter, not a value).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

PSEUDO_DEFAULTS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "headrace",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/headrace/"
                    "00000000-0000-0000-0000-000000000000",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = "AWS::NoValue"
#: The most functions one value may nest (a real template nests three or four).
MAX_NESTING = 32


class Unresolved(Exception):
    """A value the template does not determine: the message says what to supply."""


class _NoValue:
    """``Ref: AWS::NoValue``: the property (or list item) is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


REMOVED = _NoValue()

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def is_function(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and (
        next(iter(value)) in ("Ref", "Condition") or str(next(iter(value))).startswith("Fn::"))


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    raise Unresolved(f"{what} must be a string, got {_kind(value)}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a string"


class Resolver:
    """Resolves the intrinsic functions of one template. ``given`` holds the user's
    ``--template-parameters``; every key read is recorded in ``used``, and the values of
    NoEcho parameters in ``secrets``."""

    def __init__(self, template: Mapping[str, Any], given: Mapping[str, str]) -> None:
        self.given = dict(given)
        self.used: set[str] = set()
        self.secrets: set[str] = set()
        params = template.get("Parameters")
        self.parameters: dict[str, Any] = dict(params) if isinstance(params, dict) else {}
        resources = template.get("Resources")
        self.resources: dict[str, Any] = dict(resources) if isinstance(resources, dict) else {}
        mappings = template.get("Mappings")
        self.mappings: dict[str, Any] = dict(mappings) if isinstance(mappings, dict) else {}
        conditions = template.get("Conditions")
        self.conditions: dict[str, Any] = dict(conditions) if isinstance(conditions,
                                                                         dict) else {}
        self._condition_values: dict[str, bool] = {}
        self._evaluating: list[str] = []
        self._parameter_values: dict[str, str | list[str]] = {}
        #: parameter -> why its value is refused (AllowedValues, AllowedPattern): reported
        #: once for the parameter by the template reader, as CloudFormation does
        self.invalid: dict[str, str] = {}

    # --- values --------------------------------------------------------------------------

    def resolve(self, value: Any, depth: int = 0) -> Any:
        """``value`` with every function computed (:data:`REMOVED` for ``AWS::NoValue``)."""
        if depth > MAX_NESTING:
            raise Unresolved(f"functions nested more than {MAX_NESTING} deep")
        if is_function(value):
            name, argument = next(iter(value.items()))
            handler = self._FUNCTIONS.get(name)
            if handler is None:
                raise Unresolved(f"{name} is not a function headrace can compute (it computes "
                                 f"{', '.join(sorted(self._FUNCTIONS))})")
            return handler(self, argument, depth + 1)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                resolved = self.resolve(item, depth + 1)
                if resolved is not REMOVED:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            items = [self.resolve(item, depth + 1) for item in value]
            return [item for item in items if item is not REMOVED]
        return value

    def text(self, value: Any, what: str, depth: int = 0) -> str:
        return _text(self.resolve(value, depth), what)

    def _ref(self, argument: Any, depth: int) -> Any:
        name = self.text(argument, "Ref's argument", depth)
        return self.ref(name)

    def ref(self, name: str) -> Any:
        if name == NO_VALUE:
            return REMOVED
        if name in PSEUDO_DEFAULTS or name == "AWS::NotificationARNs":
            self.used.add(name)
            if name in self.given:
                return self.given[name]
            return [] if name == "AWS::NotificationARNs" else PSEUDO_DEFAULTS[name]
        if name in self.parameters:
            return self.parameter(name)
        if name in self.resources:
            return self._live(name, f"Ref {name} is the name (or id) of the template's resource "
                                    f"{name}{self._resource_type(name)}, which only a live "
                                    "stack knows")
        raise Unresolved(f"Ref {name!r} names neither a parameter nor a resource of the "
                         "template")

    def _resource_type(self, name: str) -> str:
        resource = self.resources.get(name)
        kind = resource.get("Type") if isinstance(resource, dict) else None
        return f" ({kind})" if isinstance(kind, str) else ""

    def _live(self, key: str, why: str) -> str:
        self.used.add(key)
        if key in self.given:
            return self.given[key]
        raise Unresolved(f"{why}: give it with --template-parameters {key}=VALUE")

    def parameter(self, name: str) -> str | list[str]:
        """A template parameter's value: given, else its Default (checked like CloudFormation
        does: AllowedValues, AllowedPattern, list types split on commas)."""
        if name in self._parameter_values:
            return self._parameter_values[name]
        decl = self.parameters.get(name)
        decl = decl if isinstance(decl, dict) else {}
        declared_type = decl.get("Type")
        kind: str = declared_type if isinstance(declared_type, str) else "String"
        self.used.add(name)
        if name in self.given:
            text = self.given[name]
        elif "Default" in decl and not kind.startswith("AWS::SSM::Parameter::Value<"):
            text = _text(decl["Default"], f"the Default of parameter {name}")
        elif kind.startswith("AWS::SSM::Parameter::Value<"):
            raise Unresolved(f"template parameter {name} is an SSM parameter ({kind}), whose "
                             f"value only AWS can look up: give it with --template-parameters "
                             f"{name}=VALUE")
        else:
            raise Unresolved(f"template parameter {name} has no value and no Default: give "
                             f"it with --template-parameters {name}=VALUE")
        if str(decl.get("NoEcho", "")).lower() == "true" and len(text.strip()) >= 3:
            self.secrets.add(text)
        problem = self._check_allowed(name, decl, text)
        if problem:
            self.invalid[name] = problem
        value: str | list[str] = text
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            value = [item.strip() if kind.startswith("List<") else item
                     for item in text.split(",")] if text else []
        self._parameter_values[name] = value
        return value

    @staticmethod
    def _check_allowed(name: str, decl: Mapping[str, Any], text: str) -> str | None:
        shown = "****" if str(decl.get("NoEcho", "")).lower() == "true" else repr(text)
        allowed = decl.get("AllowedValues")
        if isinstance(allowed, list) and allowed and text not in [str(a) for a in allowed]:
            return (f"template parameter {name}: {shown} is not one of its AllowedValues "
                    f"({', '.join(repr(str(a)) for a in allowed)})")
        pattern = decl.get("AllowedPattern")
        if isinstance(pattern, str):
            try:
                matched = re.fullmatch(pattern, text) is not None
            except re.error:
                return None  # a Java pattern Python cannot read: not checked
            if not matched:
                return (f"template parameter {name}: {shown} does not match its "
                        f"AllowedPattern {pattern!r}")
        return None

    # --- functions -----------------------------------------------------------------------

    def _get_att(self, argument: Any, depth: int) -> Any:
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        elif isinstance(argument, list) and len(argument) == 2:
            logical_id = self.text(argument[0], "Fn::GetAtt's resource", depth)
            attribute = self.text(argument[1], "Fn::GetAtt's attribute", depth)
        else:
            raise Unresolved("Fn::GetAtt takes [LogicalId, Attribute] or \"LogicalId.Attribute\"")
        if not logical_id or not attribute:
            raise Unresolved("Fn::GetAtt takes [LogicalId, Attribute] or \"LogicalId.Attribute\"")
        where = "" if logical_id in self.resources else " (no such resource in the template)"
        return self._live(f"{logical_id}.{attribute}",
                          f"Fn::GetAtt {logical_id}.{attribute}{where} is known only to a live "
                          "stack")

    def _import_value(self, argument: Any, depth: int) -> Any:
        name = self.text(argument, "Fn::ImportValue's export name", depth)
        return self._live(name, f"Fn::ImportValue {name!r} is another stack's export")

    def _sub(self, argument: Any, depth: int) -> Any:
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            template_text = self.text(argument[0], "Fn::Sub's string", depth)
            variables = {str(k): v for k, v in argument[1].items()}
        elif isinstance(argument, str):
            template_text, variables = str(argument), {}
        else:
            raise Unresolved("Fn::Sub takes a string, or [string, {variables}]")

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            name = inner.strip()
            if name in variables:
                return self.text(variables[name], f"Fn::Sub variable {name}", depth)
            if "." in name and name.split(".", 1)[0] in self.resources:
                return _text(self._get_att(name, depth), f"Fn::Sub ${{{name}}}")
            resolved = self.ref(name)
            if isinstance(resolved, list):
                raise Unresolved(f"Fn::Sub ${{{name}}} is a list, not a string")
            return _text(resolved, f"Fn::Sub ${{{name}}}")
        return _SUB_VARIABLE.sub(replace, template_text)

    def _join(self, argument: Any, depth: int) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise Unresolved("Fn::Join takes [delimiter, [values]]")
        delimiter = self.text(argument[0], "Fn::Join's delimiter", depth)
        items = self.resolve(argument[1], depth)
        if not isinstance(items, list):
            raise Unresolved(f"Fn::Join's values must be a list, got {_kind(items)}")
        return delimiter.join(_text(item, "a value of Fn::Join") for item in items)

    def _select(self, argument: Any, depth: int) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise Unresolved("Fn::Select takes [index, [values]]")
        index_text = self.text(argument[0], "Fn::Select's index", depth)
        if not index_text.strip().isdigit() or len(index_text.strip()) > 9:
            raise Unresolved(f"Fn::Select's index {index_text!r} is not a whole number")
        items = self.resolve(argument[1], depth)
        if not isinstance(items, list):
            raise Unresolved(f"Fn::Select's values must be a list, got {_kind(items)}")
        index = int(index_text)
        if index >= len(items):
            raise Unresolved(f"Fn::Select index {index} is past the end of a list of "
                             f"{len(items)}")
        return items[index]

    def _split(self, argument: Any, depth: int) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise Unresolved("Fn::Split takes [delimiter, string]")
        delimiter = self.text(argument[0], "Fn::Split's delimiter", depth)
        if not delimiter:
            raise Unresolved("Fn::Split's delimiter is empty")
        return self.text(argument[1], "Fn::Split's string", depth).split(delimiter)

    def _find_in_map(self, argument: Any, depth: int) -> Any:
        if not (isinstance(argument, list) and len(argument) in (3, 4)):
            raise Unresolved("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]")
        names = [self.text(a, "a key of Fn::FindInMap", depth) for a in argument[:3]]
        level: Any = self.mappings
        for name in names:
            if not isinstance(level, dict) or name not in level:
                raise Unresolved(f"Fn::FindInMap {'/'.join(names)}: no {name!r} in the "
                                 "template's Mappings")
            level = level[name]
        return self.resolve(level, depth)

    def _base64(self, argument: Any, depth: int) -> Any:
        return base64.b64encode(self.text(argument, "Fn::Base64's value",
                                          depth).encode()).decode()

    def _if(self, argument: Any, depth: int) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3):
            raise Unresolved("Fn::If takes [ConditionName, value if true, value if false]")
        name = self.text(argument[0], "Fn::If's condition name", depth)
        return self.resolve(argument[1] if self.condition(name) else argument[2], depth)

    # --- conditions ----------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self.conditions:
            raise Unresolved(f"condition {name!r} is not in the template's Conditions")
        if name in self._evaluating:
            raise Unresolved(f"conditions refer to each other in a circle: "
                             f"{' -> '.join([*self._evaluating, name])}")
        self._evaluating.append(name)
        try:
            value = self.truth(self.conditions[name], 0)
        finally:
            self._evaluating.pop()
        self._condition_values[name] = value
        return value

    def truth(self, value: Any, depth: int) -> bool:
        if depth > MAX_NESTING:
            raise Unresolved(f"conditions nested more than {MAX_NESTING} deep")
        if not is_function(value):
            text = _text(self.resolve(value, depth), "a condition")
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise Unresolved(f"a condition must be a function, got {text!r}")
        name, argument = next(iter(value.items()))
        if name == "Condition":
            return self.condition(self.text(argument, "Condition's name", depth))
        if name == "Fn::Equals":
            if not (isinstance(argument, list) and len(argument) == 2):
                raise Unresolved("Fn::Equals takes [value, value]")
            left, right = (self.resolve(a, depth + 1) for a in argument)
            return bool(_comparable(left) == _comparable(right))
        if name == "Fn::Not":
            if not (isinstance(argument, list) and len(argument) == 1):
                raise Unresolved("Fn::Not takes [condition]")
            return not self.truth(argument[0], depth + 1)
        if name in ("Fn::And", "Fn::Or"):
            if not isinstance(argument, list) or not argument:
                raise Unresolved(f"{name} takes a list of conditions")
            results = (self.truth(a, depth + 1) for a in argument)
            return all(results) if name == "Fn::And" else any(results)
        return _text(self.resolve(value, depth), "a condition").lower() == "true"

    _FUNCTIONS: ClassVar[dict[str, Callable[[Resolver, Any, int], Any]]] = {
        "Ref": _ref, "Fn::GetAtt": _get_att, "Fn::ImportValue": _import_value,
        "Fn::Sub": _sub, "Fn::Join": _join, "Fn::Select": _select, "Fn::Split": _split,
        "Fn::FindInMap": _find_in_map, "Fn::Base64": _base64, "Fn::If": _if,
    }


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return value
