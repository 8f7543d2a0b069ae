"""What the store keeps: pipelines, definition versions, instances, attempts, requests.

Status names are AWS Data Pipeline's (reference section 6.1). Times are aware UTC datetimes in
memory and ``YYYY-MM-DDTHH:MM:SS.ffffff`` text in the database (portable between SQLite and
PostgreSQL, and sortable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    WAITING_ON_DEPENDENCIES = "WAITING_ON_DEPENDENCIES"
    WAITING_FOR_RUNNER = "WAITING_FOR_RUNNER"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CASCADE_FAILED = "CASCADE_FAILED"
    CANCELED = "CANCELED"
    TIMEDOUT = "TIMEDOUT"
    SKIPPED = "SKIPPED"


#: An instance in one of these states will not change again unless a user acts (RERUN).
TERMINAL = frozenset({Status.FINISHED, Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED,
                      Status.TIMEDOUT, Status.SKIPPED})
#: Dependents of an instance in one of these states can never run (without a rerun).
BROKEN = frozenset({Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED, Status.TIMEDOUT})


class PipelineState(StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    DEACTIVATING = "DEACTIVATING"
    INACTIVE = "INACTIVE"
    FINISHED = "FINISHED"


class AttemptStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    #: the engine stopped (SIGTERM, crash) while the attempt ran; the instance is retried
    INTERRUPTED = "INTERRUPTED"


class Action(StrEnum):
    """User actions of SetStatus (reference section 6.4)."""

    RERUN = "RERUN"
    MARK_FINISHED = "MARK_FINISHED"
    TRY_CANCEL = "TRY_CANCEL"
    PAUSE = "PAUSE"
    RESUME = "RESUME"


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_text(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class PipelineRecord:
    id: str
    name: str
    unique_id: str
    description: str = ""
    state: PipelineState = PipelineState.PENDING
    created_at: datetime | None = None
    latest_version: int | None = None
    active_version: int | None = None
    activated_at: datetime | None = None
    first_activated_at: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: for a DEACTIVATING pipeline: cancel running instances (True) or let them finish
    cancel_active: bool = True


@dataclass
class InstanceRecord:
    pipeline_id: str
    id: str
    object_id: str
    type: str
    category: str
    scheduled_start: datetime
    scheduled_end: datetime
    eligible_at: datetime
    status: Status = Status.WAITING_ON_DEPENDENCIES
    attempts: int = 0
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    error: str | None = None
    node: str | None = None
    depends_on: list[str] = field(default_factory=list)
    version: int = 1
    late_fired: bool = False
    cascade_failed_on: str | None = None
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    retry_at: datetime | None = None
    updated_at: datetime | None = None
    #: attempts made before the latest RERUN (the retry budget counts from here)
    attempt_base: int = 0
    schedule_type: str = "cron"
    #: the span of the instance's latest run (hex ids), for links from later instances
    trace_id: str | None = None
    span_id: str | None = None
    #: ``workerGroup`` (or the ``runsOn`` resource id); None: the ``default`` group
    worker_group: str | None = None
    #: queued for a worker since (database time, epoch seconds); None: not queued
    queued_at: float | None = None
    #: the worker holding the instance's lease, and when that lease lapses (database time)
    worker_id: str | None = None
    lease_until: float | None = None
    #: the fencing token: incremented by every claim
    lease_version: int = 0
    #: TRY_CANCEL asked while a worker held the instance: the worker stops the attempt
    cancel_reason: str | None = None
    #: checks made so far by the running attempt of a precondition polled by workers
    checks: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def schedule_type_ondemand(self) -> bool:
        return self.schedule_type == "ondemand"

    def apply(self, status: Status, fields: Mapping[str, Any]) -> None:
        """Take on a status change (and its fields) that the store has accepted."""
        self.status = status
        for key, value in fields.items():
            setattr(self, key, value)


@dataclass
class AttemptRecord:
    pipeline_id: str
    instance_id: str
    number: int
    status: AttemptStatus = AttemptStatus.RUNNING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    trace_id: str | None = None
    log_path: str | None = None
    host: str | None = None
    #: the worker process that ran it, under which lease version (None: an engine's own)
    worker_id: str | None = None
    lease_version: int | None = None

    @property
    def id(self) -> str:
        return f"{self.instance_id}_Attempt={self.number}"


@dataclass(frozen=True)
class Fence:
    """A worker's claim on one instance: the store accepts its writes only while that worker
    still holds the instance under this lease version (the fencing token)."""

    worker_id: str
    token: int

    def where(self) -> tuple[str, tuple[Any, ...]]:
        return "worker_id = ? AND lease_version = ?", (self.worker_id, self.token)


@dataclass
class RequestRecord:
    """A user action waiting for the engine that runs the pipeline to carry it out."""

    id: int
    pipeline_id: str
    target: str
    action: Action
    created_at: datetime
