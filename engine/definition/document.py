"""A read definition with inheritance applied: the object graph the rest of the engine queries.

Inheritance (reference section 1.2): an object's fields are its own, then its ``parent`` chain's,
then ``Default``'s. Default is the root of every chain: an object whose chain ends without a
parent inherits Default (the arthur templates rely on fields reaching activities through two
levels of untyped parents). Own fields override inherited ones, field by field.

``"type": "Default"`` on the Default object (CloudFormation's reference example and every
CloudFormation-managed pipeline carry it; the service accepted it) names the object, not a
type: it is not inherited.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

from connectors.errors import ConfigError
from engine.definition.parameters import Origin, Parameters
from engine.definition.raw import (
    FieldValue,
    RawDefinition,
    RawObject,
    RawParameter,
    RawValues,
    Ref,
)
from engine.definition.types import TYPES, Category, TypeSpec, category_of
from engine.errors import Report

DEFAULT_ID = "Default"

#: What a chain passes on: field -> values, and field -> the object whose own field it is.
_View = tuple[dict[str, list[FieldValue]], dict[str, str]]


class Definition:
    """Objects by id, effective (inherited) fields, parameters and values."""

    def __init__(self, raw: RawDefinition, parameters: Parameters) -> None:
        self.raw = raw
        self.parameters = parameters
        self.objects: dict[str, RawObject] = {}
        for obj in raw.objects:
            self.objects.setdefault(obj.id, obj)
        self._effective: dict[str, dict[str, list[FieldValue]]] = {}
        self._views: dict[str, _View | None] = {}
        # Default with a parent of its own puts Default inside chains: walk those the slow way
        self._slow_inheritance = DEFAULT_ID in self.objects and (
            "parent" in self.objects[DEFAULT_ID].fields)

    @classmethod
    def build(cls, raw: RawDefinition, report: Report,
              parameter_objects: list[RawParameter] | None = None,
              values: RawValues | None = None,
              overrides: dict[str, list[str]] | None = None) -> Definition:
        """Combine a raw definition with separate parameter/value files and overrides.

        A parameter-objects file replaces the definition's own parameters, and a values file
        replaces its values, as the AWS CLI does.
        """
        params_raw = parameter_objects if parameter_objects is not None else raw.parameters
        if values is None:
            values = RawValues(raw.values, raw.value_lines, raw.source)
        origins: dict[str, Origin] = {key: (values.source, values.lines.get(key))
                                      for key in values.values}
        params = Parameters.from_raw(params_raw, values.values, report, origins)
        if overrides:
            params = params.with_overrides(overrides)
        return cls(raw, params)

    def with_overrides(self, overrides: dict[str, list[str]]) -> Definition:
        return Definition(self.raw, self.parameters.with_overrides(overrides))

    # --- objects -------------------------------------------------------------------------

    def __contains__(self, object_id: str) -> bool:
        return object_id in self.objects

    def __iter__(self) -> Iterator[RawObject]:
        return iter(self.objects.values())

    def parent_chain(self, object_id: str) -> list[str]:
        """``[object, parent, grandparent, ..., Default]`` (cycles and dangling refs cut)."""
        chain = [object_id]
        seen = {object_id}
        current = self.objects.get(object_id)
        while current is not None:
            parents = current.fields.get("parent")
            target = parents[0] if parents else None
            if not isinstance(target, Ref) or target.id in seen or target.id not in self.objects:
                break
            chain.append(target.id)
            seen.add(target.id)
            current = self.objects[target.id]
        if object_id != DEFAULT_ID and DEFAULT_ID in self.objects and DEFAULT_ID not in seen:
            chain.append(DEFAULT_ID)
        return chain

    def effective(self, object_id: str) -> dict[str, list[FieldValue]]:
        """Own fields over parent chain over Default. ``parent`` itself is not inherited.

        Each object's inherited view is built once from its parent's (memoized), so a chain of
        10,000 objects costs 10,000 small merges, not 10,000 walks of the chain; a chain that
        loops (an error of its own) is walked the slow way."""
        cached = self._effective.get(object_id)
        if cached is not None:
            return cached
        obj = self.objects.get(object_id)
        if obj is None:
            return {}
        view = self._view_above(object_id)
        if view is None:
            merged = self._effective_by_walking(object_id)
        else:
            merged = dict(obj.fields)
            for key, values in view[0].items():
                merged.setdefault(key, values)
        self._effective[object_id] = merged
        return merged

    def owner(self, object_id: str, name: str) -> str:
        """The object in the parent chain whose own field ``name`` is (``object_id`` when no
        ancestor has it)."""
        obj = self.objects.get(object_id)
        if obj is None or name in obj.fields:
            return object_id
        view = self._view_above(object_id)
        if view is None:
            for ancestor in self.parent_chain(object_id)[1:]:
                if name in self._inheritable(ancestor):
                    return ancestor
            return object_id
        return view[1].get(name, object_id)

    # --- inheritance, memoized -----------------------------------------------------------

    def _parent_id(self, object_id: str) -> str | None:
        parents = self.objects[object_id].fields.get("parent")
        target = parents[0] if parents else None
        if isinstance(target, Ref) and target.id in self.objects:
            return target.id
        return None

    def _inheritable(self, object_id: str) -> dict[str, list[FieldValue]]:
        """What an object passes on to its children: its fields but ``parent`` (and the
        Default object's ``"type": "Default"``)."""
        out = {k: v for k, v in self.objects[object_id].fields.items() if k != "parent"}
        if object_id == DEFAULT_ID and out.get("type") == [DEFAULT_ID]:
            del out["type"]
        return out

    def _view_above(self, object_id: str) -> _View | None:
        """The fields (and their owners) ``object_id`` inherits: its parent's view, or
        Default's fields for an object without a parent. None: walk the chain instead."""
        if self._slow_inheritance:
            return None
        parent = self._parent_id(object_id)
        if parent is not None:
            return self._view(parent)
        if object_id == DEFAULT_ID:
            return {}, {}
        return self._default_view()

    def _default_view(self) -> _View:
        if DEFAULT_ID not in self.objects:
            return {}, {}
        fields = self._inheritable(DEFAULT_ID)
        return fields, dict.fromkeys(fields, DEFAULT_ID)

    def _view(self, object_id: str) -> _View | None:
        """Everything ``object_id``'s chain passes on, built from the nearest memoized
        ancestor down; None when the chain loops."""
        memo = self._views
        if object_id in memo:
            return memo[object_id]
        path: list[str] = []
        on_path: set[str] = set()
        current: str | None = object_id
        base: _View | None
        while True:
            assert current is not None
            if current in memo:
                base = memo[current]
                break
            if current in on_path:  # a loop: every object on the path is walked the slow way
                base = None
                break
            path.append(current)
            on_path.add(current)
            parent = self._parent_id(current)
            if parent is None:
                base = ({}, {}) if current == DEFAULT_ID else self._default_view()
                break
            current = parent
        for oid in reversed(path):
            if base is None:
                memo[oid] = None
                continue
            fields = self._inheritable(oid)
            owners = dict.fromkeys(fields, oid)
            for key, values in base[0].items():
                if key not in fields:
                    fields[key] = values
                    owners[key] = base[1][key]
            base = (fields, owners)
            memo[oid] = base
        return memo[object_id]

    def _effective_by_walking(self, object_id: str) -> dict[str, list[FieldValue]]:
        merged: dict[str, list[FieldValue]] = {}
        for index, ancestor in enumerate(self.parent_chain(object_id)):
            for key, values in self.objects[ancestor].fields.items():
                if key == "parent" and index > 0:
                    continue
                if key == "type" and index > 0 and ancestor == DEFAULT_ID and (
                        values == [DEFAULT_ID]):
                    continue
                merged.setdefault(key, values)
        return merged

    def field(self, object_id: str, name: str) -> list[FieldValue]:
        return self.effective(object_id).get(name, [])

    def first(self, object_id: str, name: str) -> FieldValue | None:
        values = self.field(object_id, name)
        return values[0] if values else None

    def refs(self, object_id: str, name: str) -> list[str]:
        return [v.id for v in self.field(object_id, name) if isinstance(v, Ref)]

    def type_of(self, object_id: str) -> str | None:
        value = self.first(object_id, "type")
        return value if isinstance(value, str) else None

    def spec(self, object_id: str) -> TypeSpec | None:
        return TYPES.get(self.type_of(object_id) or "")

    def category(self, object_id: str) -> Category | None:
        return category_of(self.type_of(object_id))

    def of_category(self, *categories: Category) -> list[str]:
        return [oid for oid in self.objects if self.category(oid) in categories]

    @cached_property
    def parents(self) -> frozenset[str]:
        """Objects that are the parent of another object."""
        return frozenset(p for oid in self.objects if oid != (p := self._parent_id(oid) or oid))

    @cached_property
    def _action_referrers(self) -> dict[str, list[str]]:
        """Action or precondition id -> the typed objects whose effective ``onFail``,
        ``onSuccess``, ``onLateAction`` or ``precondition`` names it (in definition order)."""
        out: dict[str, list[str]] = {}
        for oid in self.objects:
            if self.type_of(oid) is None:
                continue
            named: set[str] = set()
            for key in ("onFail", "onSuccess", "onLateAction", "precondition"):
                named.update(self.refs(oid, key))
            for target in named:
                out.setdefault(target, []).append(oid)
        return out

    def action_referrers(self, object_id: str) -> list[str]:
        return list(self._action_referrers.get(object_id, ()))

    # --- pipeline-wide settings ----------------------------------------------------------

    @cached_property
    def schedule_type_text(self) -> str | None:
        value = self.first(DEFAULT_ID, "scheduleType") if DEFAULT_ID in self.objects else None
        return value if isinstance(value, str) else None

    def consumers(self, object_id: str) -> list[str]:
        """Objects that name ``object_id`` in ``input``, ``dependsOn`` or ``precondition``."""
        out = []
        for oid in self.objects:
            for key in ("input", "dependsOn", "precondition"):
                if object_id in self.refs(oid, key):
                    out.append(oid)
                    break
        return out

    def secret_values(self) -> set[str]:
        """Every literal secret the definition holds: values and defaults of ``*`` parameters
        and constant values of ``*`` fields (three characters or more: scrubbing shorter ones
        would garble every message). Used to scrub messages before they are shown."""
        params = self.parameters
        out: set[str] = set(self.raw.secrets)
        for decl in params.decls.values():
            if decl.secret and decl.default:
                out.update(decl.default)
        for key, vals in params.values.items():
            if params.is_secret(key):
                out.update(vals)
        for obj in self.objects.values():
            for key, field_values in obj.fields.items():
                if key.startswith("*"):
                    out.update(v for v in field_values if isinstance(v, str) and "#{" not in v)
        out.update(_referenced_secrets(out))
        for obj in self.objects.values():  # passwords of the named connections it uses
            for value in obj.fields.get("connectionString", ()):
                if isinstance(value, str) and "#{" not in value and "://@" in value:
                    from connectors.sql import connection_passwords  # pydantic: when needed

                    out.update(connection_passwords(value))
        return {v for v in out if len(v.strip()) >= 3}

    def mask(self, text: str, secrets: list[str] | None = None) -> str:
        """``text`` with every secret of :meth:`secret_values` replaced by ``****``
        (``secrets``: those values, longest first, when the caller masks many texts)."""
        if secrets is None:
            secrets = sorted(self.secret_values(), key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, "****")
        return text

    def referrers(self, object_id: str) -> list[tuple[str, str]]:
        """(object id, field) pairs whose own fields reference ``object_id``."""
        out = []
        for obj in self.objects.values():
            for key, values in obj.fields.items():
                if any(isinstance(v, Ref) and v.id == object_id for v in values):
                    out.append((obj.id, key))
        return out


def _referenced_secrets(values: set[str]) -> set[str]:
    """The secrets that the references among ``values`` (``env:NAME``, ``file:/path``) name,
    as they read now: masked wherever the definition's own secrets are."""
    found: set[str] = set()
    candidates = [v for v in values if v.startswith(("env:", "file:"))]
    if not candidates:
        return found
    from connectors.sql import resolve_secret, secret_reference  # pydantic: when needed

    for value in candidates:
        if secret_reference(value) is None:
            continue
        try:
            found.add(resolve_secret(value))
        except ConfigError:
            continue  # nothing to mask: the run refuses it, naming the reference
    return found
