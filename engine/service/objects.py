"""The object verbs: describe components, instances and attempts; query them with selectors;
evaluate an expression in an object's context.

Ids name the sphere, as AWS's do: a component is the definition's own id (``Copy``), an
instance ``@Copy_2024-01-01T00:00:00``, an attempt ``@Copy_2024-01-01T00:00:00_Attempt=1``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.clock import Clock
from engine.definition import Definition
from engine.definition.scope import EvalContext, ObjectScope, evaluate_text, render
from engine.definition.serialize import masked
from engine.errors import DefinitionError, ExpressionError
from engine.plan import resolve_fields
from engine.runtime.context import Limits, PipelineRuntime
from engine.runtime.runner import load_version
from engine.service.errors import InvalidRequest, ObjectNotFound
from engine.service.pipelines import PipelineService
from engine.service.query import (
    SPHERES,
    Selector,
    component_matches,
    store_filters,
)
from engine.store import AttemptRecord, InstanceRecord, PipelineRecord, Store
from engine.store.queries import (
    find_attempt_keys,
    find_instance_ids,
    get_attempts,
    get_instances,
    get_statuses,
)

ATTEMPT_SEPARATOR = "_Attempt="
#: QueryObjects answers at most this many ids a page, whatever ``limit`` asks
MAX_QUERY_LIMIT = 1000
DEFAULT_QUERY_LIMIT = 100
#: definitions kept parsed, by (pipeline, version): versions never change once stored
_CACHE_SIZE = 64


@dataclass
class ObjectView:
    """One described object. ``fields`` are the component's fields in the definition-file
    shape (secrets as ``****``), evaluated for this instance when ``evaluated``."""

    id: str
    name: str
    sphere: str
    fields: dict[str, Any]
    evaluated: bool = False
    instance: InstanceRecord | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    attempt: AttemptRecord | None = None
    paused: bool = False
    #: ids of the instances this one waits on (not yet FINISHED)
    waiting_on: list[str] = field(default_factory=list)


def attempt_key(object_id: str) -> tuple[str, int] | None:
    """(instance id, number) of an attempt id, else None."""
    head, sep, tail = object_id.rpartition(ATTEMPT_SEPARATOR)
    if sep and head and tail.isdigit():
        return head, int(tail)
    return None


def _encode_marker(kind: str, value: Any) -> str:
    raw = json.dumps([kind, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_marker(marker: str | None, kind: str) -> Any:
    if not marker:
        return None
    try:
        found, value = json.loads(base64.urlsafe_b64decode(marker.encode()))
    except (ValueError, TypeError):
        raise InvalidRequest("marker is not one this service handed out") from None
    if found != kind:
        raise InvalidRequest("marker belongs to a query of another sphere")
    return value


class Objects:
    """Describe, query and evaluate against one store. Keeps parsed definitions (small LRU)
    so describing instances does not re-validate the definition per call."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or Clock()
        self.pipelines = PipelineService(store, clock=self.clock)
        self._definitions: dict[tuple[str, int], tuple[dict[str, Any], Definition]] = {}

    # --- definitions of a pipeline ---------------------------------------------------------

    @staticmethod
    def _version(record: PipelineRecord) -> int | None:
        return record.active_version or record.latest_version

    async def _body(self, pipeline_id: str, version: int) -> dict[str, Any]:
        return await self.store.get_definition(pipeline_id, version)

    async def _definition(self, pipeline_id: str, version: int) -> Definition:
        """The stored version, parsed and valid for running (parameter values complete)."""
        key = (pipeline_id, version)
        body = await self.store.get_definition(pipeline_id, version)
        cached = self._definitions.get(key)
        if cached is not None and cached[0] == body:
            return cached[1]
        try:
            definition = await load_version(self.store, pipeline_id, version)
        except DefinitionError as exc:
            raise InvalidRequest(f"pipeline {pipeline_id} version {version} cannot be "
                                 f"evaluated: {exc}") from None
        if len(self._definitions) >= _CACHE_SIZE:
            self._definitions.pop(next(iter(self._definitions)))
        self._definitions[key] = (body, definition)
        return definition

    def _runtime(self, record: PipelineRecord, definition: Definition,
                 version: int) -> PipelineRuntime:
        return PipelineRuntime(record.id, definition, version, self.store, self.clock, None,
                               Limits(), Path("."))

    # --- describe --------------------------------------------------------------------------

    async def describe(self, pipeline_id: str, object_ids: list[str], *,
                       evaluate: bool = False) -> list[ObjectView]:
        """The objects in the order asked. An id that names nothing is
        :class:`ObjectNotFound`."""
        record = await self.pipelines.pipeline(pipeline_id)
        version = self._version(record)
        body = masked(await self._body(pipeline_id, version)) if version else {"objects": []}
        components = {o["id"]: o for o in body.get("objects", [])}
        keys = {oid: attempt_key(oid) for oid in object_ids}
        wanted = [oid for oid in object_ids if oid not in components]
        wanted += [k[0] for k in keys.values() if k is not None]
        instances = await get_instances(self.store, pipeline_id, wanted)
        attempts = await get_attempts(self.store, pipeline_id, list(instances))
        waits = await get_statuses(self.store, pipeline_id, sorted(
            {d for inst in instances.values() for d in inst.depends_on}))
        paused = await self.store.paused(pipeline_id) if any(
            oid in components for oid in object_ids) else set()
        definition = await self._definition(pipeline_id, version) if (
            evaluate and version and instances) else None
        runtime = self._runtime(record, definition, version or 1) if definition else None
        out: list[ObjectView] = []
        for oid in object_ids:
            if oid in components:
                fields = {k: v for k, v in components[oid].items() if k not in ("id", "name")}
                out.append(ObjectView(oid, str(components[oid].get("name", oid)), "COMPONENT",
                                      fields, paused=oid in paused))
                continue
            inst = instances.get(oid)
            key = keys[oid]
            if inst is None and key is not None and key[0] in instances:
                parent = instances[key[0]]
                attempt = next((a for a in attempts.get(parent.id, [])
                                if a.number == key[1]), None)
                if attempt is not None:
                    out.append(ObjectView(oid, oid, "ATTEMPT", self._component_fields(
                        components, parent), instance=parent, attempt=attempt))
                    continue
            if inst is None:
                raise ObjectNotFound(f"pipeline {pipeline_id!r} has no instance {oid!r}")
            view = ObjectView(oid, oid, "INSTANCE", self._component_fields(components, inst),
                              instance=inst, attempts=attempts.get(inst.id, []),
                              waiting_on=[d for d in inst.depends_on
                                          if waits.get(d, "FINISHED") != "FINISHED"])
            if runtime is not None and definition is not None:
                view.fields = resolve_fields(definition, inst.object_id,
                                             runtime.runtime_fields(inst), errors=[])
                view.evaluated = True
            out.append(view)
        return out

    @staticmethod
    def _component_fields(components: dict[str, dict[str, Any]],
                          inst: InstanceRecord) -> dict[str, Any]:
        component = components.get(inst.object_id, {})
        return {k: v for k, v in component.items() if k not in ("id", "name")}

    # --- query -----------------------------------------------------------------------------

    async def query(self, pipeline_id: str, sphere: str, selectors: list[Selector], *,
                    limit: int | None = None,
                    marker: str | None = None) -> tuple[list[str], str | None]:
        """Ids of the sphere's objects passing every selector, a page at a time: the ids and
        the marker of the next page (None when this is the last)."""
        if sphere not in SPHERES:
            raise InvalidRequest(f"sphere must be one of {', '.join(SPHERES)}, got {sphere!r}")
        if limit is not None and limit < 1:
            raise InvalidRequest(f"limit must be at least 1, got {limit}")
        size = min(limit or DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT)
        record = await self.pipelines.pipeline(pipeline_id)
        if sphere == "COMPONENT":
            return await self._query_components(record, selectors, size, marker)
        filters = store_filters(selectors, sphere)
        if sphere == "INSTANCE":
            after = _decode_marker(marker, "i")
            ids = await find_instance_ids(self.store, pipeline_id, filters, after=after,
                                          limit=size + 1)
            more = len(ids) > size
            ids = ids[:size]
            return ids, _encode_marker("i", ids[-1]) if more else None
        raw_after = _decode_marker(marker, "a")
        after_key = (str(raw_after[0]), int(raw_after[1])) if raw_after else None
        keys = await find_attempt_keys(self.store, pipeline_id, filters, after=after_key,
                                       limit=size + 1)
        more = len(keys) > size
        keys = keys[:size]
        ids = [f"{iid}{ATTEMPT_SEPARATOR}{n}" for iid, n in keys]
        return ids, _encode_marker("a", list(keys[-1])) if more else None

    async def _query_components(self, record: PipelineRecord, selectors: list[Selector],
                                size: int, marker: str | None) -> tuple[list[str], str | None]:
        version = self._version(record)
        if version is None:
            return [], None
        body = await self._body(record.id, version)
        paused = await self.store.paused(record.id)
        matching = []
        for obj in body.get("objects", []):
            parent = obj.get("parent")
            parents = [p["ref"] for p in (parent if isinstance(parent, list) else [parent])
                       if isinstance(p, dict) and "ref" in p]
            status = "PAUSED" if obj["id"] in paused else None
            if component_matches(selectors, obj["id"], str(obj.get("name", obj["id"])),
                                 parents, status):
                matching.append(obj["id"])
        offset = int(_decode_marker(marker, "c") or 0)
        page = matching[offset:offset + size]
        more = offset + size < len(matching)
        return page, _encode_marker("c", offset + size) if more else None

    # --- evaluate --------------------------------------------------------------------------

    async def evaluate(self, pipeline_id: str, object_id: str, expression: str) -> str:
        """``expression`` with its ``#{...}`` evaluated as the object sees it (an instance: its
        runtime fields; a component: no scheduled times). A value read from a secret is
        ``****``; a list comes back as JSON."""
        record = await self.pipelines.pipeline(pipeline_id)
        version = self._version(record)
        if version is None:
            raise InvalidRequest(f"pipeline {pipeline_id} has no definition")
        definition = await self._definition(pipeline_id, version)
        key = attempt_key(object_id)
        instance_id = key[0] if key else object_id
        found = await get_instances(self.store, pipeline_id, [instance_id])
        ctx = EvalContext(definition)
        if instance_id in found:
            inst = found[instance_id]
            rt = self._runtime(record, definition, version)
            node = None
            if inst.node is not None:
                nodes = await get_instances(self.store, pipeline_id, [inst.node])
                if inst.node in nodes:
                    node = ObjectScope(ctx, nodes[inst.node].object_id,
                                       rt.runtime_fields(nodes[inst.node]))
            scope = ObjectScope(ctx, inst.object_id, rt.runtime_fields(inst), node)
        elif object_id in definition:
            scope = ObjectScope(ctx, object_id, {"@pipelineId": pipeline_id, "@id": object_id,
                                                 "@sphere": "COMPONENT"})
        else:
            raise ObjectNotFound(f"pipeline {pipeline_id!r} has no object {object_id!r}")
        try:
            value = evaluate_text(expression, scope)
        except ExpressionError as exc:
            raise InvalidRequest(definition.mask(str(exc))) from None
        except KeyError as exc:
            raise InvalidRequest(definition.mask(f"unknown name {exc.args[0]!r}")) from None
        if ctx.secret_used:
            return "****"
        if isinstance(value, list):
            return json.dumps([render(v) for v in value])
        return str(render(value))
