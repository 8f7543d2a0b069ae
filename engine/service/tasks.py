"""The Task Runner verbs: an external task runner takes the queued work of its worker group
through the API, on the same leasing as ``headrace worker`` (so both can serve one group).

- PollForTask claims one queued instance of the group (a lease in database time, its fencing
  token incremented), records its attempt RUNNING, and hands over the activity's fields and
  the objects they refer to, evaluated for the instance. The task id names the claim.
- ReportTaskProgress renews the lease, and answers ``canceled`` once the scheduler asked for the
  instance to stop (TRY_CANCEL); an unknown or lost claim is TaskNotFound.
- SetTaskStatus ends the attempt under the claim: FINISHED, FAILED (retried as
  ``maximumRetries`` and ``retryDelay`` say, as a worker's attempt is), or FALSE for a
  precondition that does not hold yet (checked again after ``retryDelay``). An instance whose
  cancel was asked ends CANCELED.
- ReportTaskRunnerHeartbeat records the runner in ``hr_workers`` (``list-workers`` shows it).

The lease of a task is the activity's ``reportProgressTimeout`` when it sets one, else
:data:`DEFAULT_TASK_LEASE_SECONDS`: a runner that stops reporting for that long loses the task,
and the reaper queues it again.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio

from engine.clock import Clock
from engine.definition import Definition
from engine.errors import NotFound
from engine.runtime.attempt import Outcome, RetryPolicy
from engine.runtime.context import Limits, PipelineRuntime
from engine.runtime.fields import field_period
from engine.runtime.precondition import PollPlan
from engine.runtime.runner import load_version, store_dir
from engine.schedule import format_timestamp
from engine.service.errors import TaskNotFound
from engine.store import Store, queue
from engine.store.records import AttemptRecord, AttemptStatus, Fence, InstanceRecord, Status
from engine.telemetry.setup import headrace_version

DEFAULT_TASK_LEASE_SECONDS = 300.0
#: how long PollForTask waits for work before answering that there is none
POLL_WAIT_SECONDS = 5.0
_POLL_STEP = 0.25


@dataclass(frozen=True)
class TaskId:
    pipeline_id: str
    instance_id: str
    worker_id: str
    token: int

    def encode(self) -> str:
        raw = json.dumps([self.pipeline_id, self.instance_id, self.worker_id, self.token])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> TaskId:
        try:
            padded = text + "=" * (-len(text) % 4)
            pid, iid, worker, token = json.loads(base64.urlsafe_b64decode(padded))
            return cls(str(pid), str(iid), str(worker), int(token))
        except (ValueError, TypeError, binascii.Error):
            raise TaskNotFound(f"no task {text[:100]!r}: not a task id this service handed "
                               "out") from None

    @property
    def fence(self) -> Fence:
        return Fence(self.worker_id, self.token)


@dataclass
class Task:
    task_id: str
    pipeline_id: str
    attempt_id: str
    #: object id -> {"id", "name", "fields": {key: value | [values]}} (values: text or refs)
    objects: dict[str, dict[str, Any]]


def runner_id(hostname: str | None) -> str:
    """The holder name of a task runner's claims (its hostname)."""
    return f"taskrunner:{hostname or 'unknown'}"


class TaskRunners:
    def __init__(self, store: Store, *, poll_wait: float = POLL_WAIT_SECONDS) -> None:
        self.store = store
        self.poll_wait = poll_wait
        self._definitions: dict[tuple[str, int], Definition] = {}

    # --- the verbs -------------------------------------------------------------------------

    async def poll(self, worker_group: str, hostname: str | None) -> Task | None:
        """Claim a queued instance of ``worker_group`` (waiting up to :attr:`poll_wait`)."""
        holder = runner_id(hostname)
        with anyio.move_on_after(self.poll_wait):
            while True:
                rec = await queue.claim_one(self.store, holder, worker_group,
                                            DEFAULT_TASK_LEASE_SECONDS)
                if rec is not None:
                    task = await self._hand_out(rec, holder, hostname)
                    if task is not None:
                        return task
                    continue
                await anyio.sleep(_POLL_STEP)
        return None

    async def progress(self, task_id: str) -> bool:
        """Renew the task's lease; True when the scheduler asked for it to stop."""
        task = TaskId.decode(task_id)
        rt, rec = await self._runtime(task)
        renewal = await queue.renew_one(self.store, task.pipeline_id, task.instance_id,
                                        task.fence, _lease(rt, rec))
        if renewal is None:
            raise TaskNotFound(f"task {task.instance_id} is not held under this id any "
                               "more (ended, or its lease lapsed and it was queued again)")
        return renewal.cancel_reason is not None

    async def set_status(self, task_id: str, status: str, error_id: str | None = None,
                         message: str | None = None) -> None:
        task = TaskId.decode(task_id)
        rt, rec = await self._runtime(task)
        if rec.worker_id != task.worker_id or rec.lease_version != task.token:
            raise TaskNotFound(f"task {task.instance_id} is not held under this id any more")
        attempt = await self._running_attempt(task)
        now = rt.now()
        attempt.ended_at = now
        error = message or error_id
        if rec.cancel_reason:
            attempt.status, attempt.error = AttemptStatus.CANCELED, rec.cancel_reason
            ended = await self.store.end_attempt(
                attempt, {"status": Status.CANCELED, "error": rec.cancel_reason,
                          "actual_end": now}, fence=task.fence)
        elif status == "FALSE" and rec.category == "precondition":
            ended = await self._not_yet(rt, rec, attempt, task, now)
        elif status == "FINISHED":
            attempt.status = AttemptStatus.FINISHED
            ended = await self.store.end_attempt(
                attempt, {"status": Status.FINISHED, "actual_end": now, "error": None},
                fence=task.fence)
        else:
            attempt.status, attempt.error = AttemptStatus.FAILED, error or "the task failed"
            outcome = Outcome(False, attempt.error, status=AttemptStatus.FAILED)
            next_status, fields = RetryPolicy.of(rt, rec).after(outcome, rec, now)
            ended = await self.store.end_attempt(attempt, {"status": next_status, **fields},
                                                 fence=task.fence)
        if not ended:
            raise TaskNotFound(f"task {task.instance_id} is not held under this id any more")

    async def heartbeat(self, taskrunner_id: str, worker_group: str | None,
                        hostname: str | None) -> None:
        await queue.register_worker(self.store, taskrunner_id, hostname or "unknown",
                                    [worker_group or queue.DEFAULT_GROUP], 1,
                                    headrace_version(), kind="taskrunner")

    # --- helpers ---------------------------------------------------------------------------

    async def _hand_out(self, rec: InstanceRecord, holder: str,
                        hostname: str | None) -> Task | None:
        task = TaskId(rec.pipeline_id, rec.id, holder, rec.lease_version)
        rt, _ = await self._runtime(task, rec)
        if rec.status == Status.RUNNING:  # a precondition's next check: its attempt goes on
            attempt = await self._running_attempt(task)
        else:
            attempt = AttemptRecord(rec.pipeline_id, rec.id, rec.attempts + 1,
                                    started_at=rt.now(), host=hostname or holder,
                                    worker_id=holder, lease_version=rec.lease_version)
            if not await self.store.start_attempt(rec, attempt, task.fence,
                                                  actual_start=rec.actual_start or rt.now(),
                                                  retry_at=None, checks=0):
                await queue.release(self.store, rec.pipeline_id, rec.id, task.fence)
                return None
            rec.attempts = attempt.number
        renewed = await queue.renew_one(self.store, rec.pipeline_id, rec.id, task.fence,
                                        _lease(rt, rec))
        if renewed is None:
            return None
        return Task(task.encode(), rec.pipeline_id, attempt.id, _objects(rt, rec))

    async def _runtime(self, task: TaskId,
                       rec: InstanceRecord | None = None) -> tuple[PipelineRuntime,
                                                                   InstanceRecord]:
        try:
            rec = rec or await self.store.get_instance(task.pipeline_id, task.instance_id)
            pipeline = await self.store.get_pipeline(task.pipeline_id)
        except NotFound:
            raise TaskNotFound(f"no task for {task.instance_id}: its pipeline or instance is "
                               "gone") from None
        version = rec.version or pipeline.active_version or 1
        definition = self._definitions.get((task.pipeline_id, version))
        if definition is None:
            definition = await load_version(self.store, task.pipeline_id, version)
            self._definitions[(task.pipeline_id, version)] = definition
        rt = PipelineRuntime(task.pipeline_id, definition, version, self.store, Clock(), None,
                             Limits(), store_dir(self.store) / "logs", owner=task.worker_id)
        if rec.node is not None:
            rt.instances[rec.node] = await self.store.get_instance(task.pipeline_id, rec.node)
        return rt, rec

    async def _running_attempt(self, task: TaskId) -> AttemptRecord:
        running = [a for a in await self.store.list_attempts(task.pipeline_id,
                                                             task.instance_id)
                   if a.status == AttemptStatus.RUNNING]
        if not running:
            raise TaskNotFound(f"task {task.instance_id} has no running attempt")
        return running[-1]

    async def _not_yet(self, rt: PipelineRuntime, rec: InstanceRecord,
                       attempt: AttemptRecord, task: TaskId, now: datetime) -> bool:
        """A precondition the runner found false: checked again when the plan says, or
        failed when it says polling ends."""
        plan = PollPlan.of(rt, rec, attempt.started_at or now)
        checks = rec.checks + 1
        step = plan.after_false(checks, now)
        if isinstance(step, str):
            attempt.status, attempt.error = AttemptStatus.FAILED, step
            return await self.store.end_attempt(
                attempt, {"status": Status.FAILED, "actual_end": now, "error": step},
                fence=task.fence)
        return await queue.release(self.store, rec.pipeline_id, rec.id, task.fence,
                                   requeue_in=max(0.0, (step - now).total_seconds()),
                                   checks=checks)


def _lease(rt: PipelineRuntime, rec: InstanceRecord) -> float:
    period = field_period(rt, rec, "reportProgressTimeout")
    return period.as_timedelta().total_seconds() if period else DEFAULT_TASK_LEASE_SECONDS


def _objects(rt: PipelineRuntime, rec: InstanceRecord) -> dict[str, dict[str, Any]]:
    """The instance's object and every object its fields refer to, evaluated for it."""
    extra = {"@actualStartTime": rec.actual_start, "currentRetryCount": rec.attempts - 1}
    todo, out = [rec.object_id], {}
    while todo:
        oid = todo.pop(0)
        if oid in out or oid not in rt.definition:
            continue
        fields = rt.resolve(oid, rec, **extra)
        plain = {k: _plain(v) for k, v in fields.items() if k not in ("id", "name")}
        out[oid] = {"id": oid, "name": str(fields.get("name", oid)), "fields": plain}
        for value in plain.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and "ref" in item:
                    todo.append(str(item["ref"]))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and "ref" in value:
        return {"ref": str(value["ref"])}
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)
