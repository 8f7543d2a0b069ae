"""What the actors of one pipeline share: definition, store, clock, board, limits, notifier."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from connectors.errors import ConfigError
from connectors.sql import resolve_secret
from engine.clock import Clock
from engine.definition import Definition
from engine.definition.scope import EvalContext, ObjectScope
from engine.errors import ExpressionEvalError
from engine.plan import resolve_fields
from engine.runtime.board import StatusBoard
from engine.runtime.dispatch import Dispatch
from engine.store import InstanceRecord, Store
from engine.telemetry.spans import PipelineTelemetry

#: AWS's limit table: 5 active instances per object (adjustable); headrace's default for
#: objects that do not set maxActiveInstances.
DEFAULT_MAX_ACTIVE_INSTANCES = 5


def read_secret(value: str) -> str:
    """The secret a masked value as written stands for: a reference (``env:NAME``,
    ``file:/path``) read now (a rotated file is read afresh by the next attempt), anything else
    as it is. One that cannot be read is an evaluation error: the attempt fails, not retried,
    naming the object and the field, and the variable or file (never a value)."""
    try:
        return resolve_secret(value)
    except ConfigError as exc:
        raise ExpressionEvalError(exc.message) from None


def process_owner() -> str:
    """``hostname:pid``, the identity of this engine process in leases."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Limits:
    """Named concurrency limits: engine-wide, per component (maxActiveInstances), per worker
    group. ``groups`` caps the attempts running at once for a ``workerGroup`` (or a
    ``runsOn`` resource id), as a Task Runner's thread count capped a group on AWS; a group
    not named there is bound by the engine-wide limit only. ``repr`` shows how busy each is."""

    def __init__(self, engine: int = 32, groups: Mapping[str, int] | None = None) -> None:
        self.engine = anyio.CapacityLimiter(engine)
        self._components: dict[str, anyio.CapacityLimiter] = {}
        self._groups = {name: anyio.CapacityLimiter(size) for name, size in (groups or {}).items()}

    def __repr__(self) -> str:
        busy = {k: v.borrowed_tokens for k, v in self._components.items() if v.borrowed_tokens}
        groups = {k: f"{v.borrowed_tokens}/{v.total_tokens}" for k, v in self._groups.items()}
        return (f"<Limits engine {self.engine.borrowed_tokens}/{self.engine.total_tokens} "
                f"components {busy} groups {groups}>")

    def component(self, object_id: str, size: int) -> anyio.CapacityLimiter:
        limiter = self._components.get(object_id)
        if limiter is None:
            limiter = self._components[object_id] = anyio.CapacityLimiter(size)
        return limiter

    def worker_group(self, name: str | None) -> anyio.CapacityLimiter | None:
        """The limiter of a configured group; None when the group has no cap of its own."""
        return self._groups.get(name) if name else None


@dataclass
class PipelineRuntime:
    pipeline_id: str
    definition: Definition
    version: int
    store: Store
    clock: Clock
    notifier: Any
    limits: Limits
    log_root: Path
    board: StatusBoard = field(default_factory=StatusBoard)
    owner: str = field(default_factory=process_owner)
    paused: set[str] = field(default_factory=set)
    #: instance id -> record, as this process last wrote or read it
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    #: shutting down: attempts end INTERRUPTED (retried on restart), not CANCELED
    stopping: bool = False
    events: list[str] = field(default_factory=list)
    #: do the attempt log's file work inline instead of in threads (virtual-time tests)
    inline_io: bool = False
    #: set when some of the pipeline's work goes to worker processes through the store
    dispatch: Dispatch | None = None
    _telemetry: PipelineTelemetry | None = field(default=None, repr=False)

    @property
    def telemetry(self) -> PipelineTelemetry:
        """The run's spans (made on first use; inert while telemetry is off)."""
        if self._telemetry is None:
            self._telemetry = PipelineTelemetry(self)
        return self._telemetry

    def runtime_fields(self, inst: InstanceRecord, **extra: object) -> dict[str, object]:
        """The ``@`` fields an expression sees for this instance."""
        values: dict[str, object] = {
            "@scheduledStartTime": inst.scheduled_start,
            "@scheduledEndTime": inst.scheduled_end,
            "@pipelineId": self.pipeline_id,
            "@id": inst.id,
            "@sphere": "INSTANCE",
            "@status": inst.status.value,
            "@componentParent": inst.object_id,
            "@attemptCount": inst.attempts,
        }
        if inst.actual_start is not None:
            values["@actualStartTime"] = inst.actual_start
        if inst.actual_end is not None:
            values["@actualEndTime"] = inst.actual_end
        if inst.error:
            values["errorMessage"] = inst.error
        if inst.cascade_failed_on:
            values["@cascadeFailedOn"] = inst.cascade_failed_on
        values.update(extra)
        return values

    def scope(self, inst: InstanceRecord, node: ObjectScope | None = None, /,
              **extra: object) -> ObjectScope:
        return ObjectScope(EvalContext(self.definition), inst.object_id,
                           self.runtime_fields(inst, **extra), node)

    def resolve(self, object_id: str, inst: InstanceRecord, node: ObjectScope | None = None,
                /, **extra: object) -> dict[str, object]:
        """Every field of ``object_id``, evaluated (unmasked) in the context of ``inst``, the
        secrets given by reference (``env:NAME``, ``file:/path``) read wherever a masked value
        is read."""
        return resolve_fields(self.definition, object_id, self.runtime_fields(inst, **extra),
                              node, mask=False, read_secret=read_secret)

    def now(self) -> datetime:
        return self.clock.now()
