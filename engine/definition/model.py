"""Pydantic models of the object types, built from the type table in :mod:`types`.

Every value in a definition is a string (or a reference); an object's *resolved* fields (its
expressions evaluated for one instance, as :func:`engine.plan.resolve_fields` gives them) are
turned into a typed model here: ``maximumRetries`` an ``int``, ``retryDelay`` a
:class:`~engine.schedule.Period`, ``stage`` a ``bool``, ``startDateTime`` a ``datetime``,
references the referenced id, multi-valued fields lists. Validation of constant values happens
earlier (:mod:`validate`); this is where a value that came out of an expression is checked,
so ``"maximumRetries": "#{myRetries}"`` with ``myRetries = lots`` is refused when planned,
naming the object and field.

Field names that are not Python identifiers (``*password``) are reached by alias:
``model.model_dump(by_alias=True)`` gives the definition's names back. User fields (``my...``)
and fields headrace ignores are kept as extra attributes, as strings.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from engine.definition.types import TYPES, FieldSpec
from engine.errors import PlanError, ScheduleError
from engine.schedule import Period, parse_period, parse_timestamp

#: How a masked value looks in resolved fields; it is not type-checked (its text is hidden).
MASK = "****"


class ObjectModel(BaseModel):
    """Base of every generated model: extra fields kept, instances immutable."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True,
                              arbitrary_types_allowed=True)


def _text(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"ref"}:
        return str(value["ref"])
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = _text(value).strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _text(value).strip()
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"{text!r} is not \"true\" or \"false\"")
    return text == "true"


def _period(value: Any) -> Period:
    if isinstance(value, Period):
        return value
    try:
        return parse_period(_text(value))
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return parse_timestamp(_text(value))
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def _enum(values: tuple[str, ...]):  # type: ignore[no-untyped-def]
    canonical = {v.lower(): v for v in values}

    def check(value: Any) -> str:
        text = _text(value).strip()
        if text.lower() not in canonical:
            raise ValueError(f"{text!r} is not one of {', '.join(values)}")
        return canonical[text.lower()]
    return check


def _ref(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"ref"}:
        return str(value["ref"])
    raise ValueError("expected a reference {\"ref\": \"<object id>\"}")


def _scalar_type(spec: FieldSpec) -> Any:
    match spec.kind:
        case "int":
            return Annotated[int, BeforeValidator(_int)]
        case "float":
            return Annotated[float, BeforeValidator(_float)]
        case "bool":
            return Annotated[bool, BeforeValidator(_bool)]
        case "period":
            return Annotated[Period, BeforeValidator(_period)]
        case "datetime":
            return Annotated[datetime, BeforeValidator(_datetime)]
        case "enum":
            return Annotated[str, BeforeValidator(_enum(spec.values))]
        case "ref":
            return Annotated[str, BeforeValidator(_ref)]
        case _:
            return Annotated[str, BeforeValidator(_text)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _single(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"takes one value, got {len(value)}")
        return value[0]
    return value


def attribute_name(field_name: str) -> str:
    """The Python attribute of a definition field: ``*password`` -> ``password_secret``."""
    name = field_name.lstrip("*")
    if field_name.startswith("*"):
        name += "_secret"
    if keyword.iskeyword(name) or name in ObjectModel.model_fields or hasattr(BaseModel, name):
        name += "_"
    return name


@cache
def model_for(type_name: str) -> type[ObjectModel]:
    """The pydantic model of one object type (``KeyError`` for an unknown type)."""
    spec = TYPES[type_name]
    fields: dict[str, Any] = {}
    for name, fs in spec.all_fields.items():
        item = _scalar_type(fs)
        if fs.multi:
            annotation: Any = Annotated[list[item], BeforeValidator(_as_list)]  # type: ignore[valid-type]
        else:
            annotation = Annotated[item, BeforeValidator(_single)]
        fields[attribute_name(name)] = (annotation | None, Field(default=None, alias=name))
    model = create_model(type_name, __base__=ObjectModel, **fields)
    model.__doc__ = f"A {type_name} object with its fields typed (see engine.definition.types)."
    return model


def typed_fields(type_name: str, resolved: Mapping[str, object], *,
                 object_id: str | None = None) -> ObjectModel:
    """Resolved fields of an object as its type's model.

    Masked values (``****``) are left out of the typed fields. A value of the wrong kind is a
    :class:`PlanError` naming the object, the field and what would be valid (one line per
    field)."""
    data = {k: v for k, v in resolved.items() if not _is_masked(v)}
    try:
        return model_for(type_name).model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else None
            message = str(error.get("ctx", {}).get("error") or error["msg"])
            where = f"object {object_id!r}, " if object_id else ""
            lines.append(f"{where}field {field!r}: {message}")
        raise PlanError("\n".join(lines)) from None


def _is_masked(value: object) -> bool:
    return value == MASK or (isinstance(value, list) and MASK in value)
