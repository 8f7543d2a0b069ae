"""What an activity or a precondition check receives for one attempt, and the registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from engine.clock import Clock
from engine.definition.scope import ObjectScope
from engine.errors import RunError
from engine.runtime.logs import AttemptLog
from engine.store import CopyRecord, InstanceRecord


class CopyLedger(Protocol):
    """Where incremental copies keep their watermark when the output cannot keep it with the
    data (files, S3, DynamoDB), and note each run for ``describe-copy`` and ``list-runs``:
    the store (:class:`engine.store.Store`)."""

    async def copy_state(self, copy_key: str) -> CopyRecord | None: ...

    async def record_copy_run(self, copy_key: str, *, source: str, dest: str, column: str,
                              state: str, rows: int, watermark: str | None,
                              instance_id: str | None = None) -> int: ...

    # a copy's runs take turns under a lease (engine.activities.incremental.one_at_a_time)
    async def acquire_lease(self, name: str, owner: str, expires_at: datetime,
                            now: datetime, *, steal_from: Iterable[str] = ()) -> str | None: ...

    async def release_lease(self, name: str, owner: str) -> None: ...


@dataclass
class AttemptContext:
    pipeline_id: str
    instance: InstanceRecord
    attempt: int
    #: the object's fields evaluated for this attempt (secrets in clear: never log them)
    fields: dict[str, Any]
    #: evaluated fields of another object (input/output data nodes, databases) for this instance
    resolve: Callable[[str], dict[str, Any]]
    scope: ObjectScope
    log: AttemptLog
    work_dir: Path
    clock: Clock
    #: extra environment for child processes (TRACEPARENT, ...)
    env: dict[str, str] = field(default_factory=dict)
    #: the data node a precondition checks (None for activities)
    node_id: str | None = None
    node_fields: dict[str, Any] | None = None
    #: counters the activity reports (rows, bytes) for the run summary and spans
    metrics: dict[str, Any] = field(default_factory=dict)
    #: names of fields whose value read a masked field or parameter: never show them
    secret_fields: set[str] = field(default_factory=set)
    #: names this instance's run in this store: the same across its attempts and a resume,
    #: new for a RERUN and for a pipeline activated afresh (another store, or recreated)
    run_key: str = ""
    #: the incremental copies' watermarks and runs (None: nowhere to keep them)
    copies: CopyLedger | None = None

    def field_list(self, name: str) -> list[str]:
        value = self.fields.get(name)
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def field_text(self, name: str) -> str | None:
        value = self.fields.get(name)
        if isinstance(value, list):
            return str(value[0]) if value else None
        return None if value is None else str(value)

    def refs(self, name: str) -> list[str]:
        value = self.fields.get(name)
        items = value if isinstance(value, list) else [value] if value is not None else []
        return [v["ref"] for v in items if isinstance(v, dict) and "ref" in v]


class ActivityFailed(RunError):
    """The activity ran and failed (non-zero exit, a failed copy); retryable."""


class NotRunnable(RunError):
    """The object's type cannot run in headrace (EMR family); never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


Runner = Callable[[AttemptContext], Awaitable[None]]
Check = Callable[[AttemptContext], Awaitable[bool]]

ACTIVITIES: dict[str, Runner] = {}
PRECONDITIONS: dict[str, Check] = {}


def activity(type_name: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        ACTIVITIES[type_name] = fn
        return fn
    return register


def precondition(type_name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        PRECONDITIONS[type_name] = fn
        return fn
    return register


def truthy(value: Any) -> bool:
    return str(value).strip().lower() == "true" if value is not None else False
