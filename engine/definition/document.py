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

from engine.definition.parameters import Origin, Parameters
from engine.definition.raw import FieldValue, RawDefinition, RawObject, RawValues, Ref
from engine.definition.types import TYPES, Category, TypeSpec, category_of
from engine.errors import Report

DEFAULT_ID = "Default"


class Definition:
    """Objects by id, effective (inherited) fields, parameters and values."""

    def __init__(self, raw: RawDefinition, parameters: Parameters) -> None:
        self.raw = raw
        self.parameters = parameters
        self.objects: dict[str, RawObject] = {}
        for obj in raw.objects:
            self.objects.setdefault(obj.id, obj)
        self._effective: dict[str, dict[str, list[FieldValue]]] = {}

    @classmethod
    def build(cls, raw: RawDefinition, report: Report,
              parameter_objects: list | None = None,
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
        """Own fields over parent chain over Default. ``parent`` itself is not inherited."""
        cached = self._effective.get(object_id)
        if cached is not None:
            return cached
        if object_id not in self.objects:
            return {}
        merged: dict[str, list[FieldValue]] = {}
        for index, ancestor in enumerate(self.parent_chain(object_id)):
            for key, values in self.objects[ancestor].fields.items():
                if key == "parent" and index > 0:
                    continue
                if key == "type" and index > 0 and ancestor == DEFAULT_ID and (
                        values == [DEFAULT_ID]):
                    continue
                merged.setdefault(key, values)
        self._effective[object_id] = merged
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
            for key, vals in obj.fields.items():
                if key.startswith("*"):
                    out.update(v for v in vals if isinstance(v, str) and "#{" not in v)
        return {v for v in out if len(v.strip()) >= 3}

    def mask(self, text: str) -> str:
        """``text`` with every secret of :meth:`secret_values` replaced by ``****``."""
        for secret in sorted(self.secret_values(), key=len, reverse=True):
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
