"""One attempt of one instance: recorded, run, ended (reference section 6.2).

An :class:`Attempt` runs the work of an instance once: an activity, or the checks of a
precondition. It needs the pipeline's runtime (definition, store, clock, telemetry) and an
:class:`AttemptHost` for the two things that depend on who drives it (where attempt logs go,
when the pipeline was first activated); not the pipeline supervisor or the instance actor. The
instance actor of the single-process engine drives it; a worker process that claimed one
attempt from a shared store can drive it the same way.

The life of an attempt, each step written to the store before it is acted on:

1. :meth:`Attempt.begin`: the attempt is recorded RUNNING together with its instance, unless
   the instance moved on meanwhile (then the driver reads it again).
2. :meth:`Attempt.run`: attempt log and span, the attempt's context, the body under
   ``attemptTimeout``; what it raised becomes an :class:`Outcome` (retryable or not). When the
   attempt is cancelled, the record is written in a shielded scope: INTERRUPTED when the engine
   is stopping (the instance waits for a runner again), CANCELED otherwise, with the reason.
3. :meth:`Attempt.settle`: the :class:`RetryPolicy` (``maximumRetries``, ``retryDelay``)
   turns the outcome into the instance's next status, recorded with the attempt's end.

:func:`interrupt_lost_attempts` is the other end: attempts left RUNNING by a process that died.

A driver stops an attempt by cancelling the task that runs :meth:`Attempt.run` (the instance
actor does so for TRY_CANCEL, a Terminate action or a shutdown; a worker whose lease renewal
failed would do the same), and says why through ``cancel_reason``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import anyio
from opentelemetry import trace

from engine.activities.base import AttemptContext, NotRunnable, Runner
from engine.activities.process import kill_orphaned_group
from engine.errors import HeadraceError
from engine.plan import MASK, resolve_fields
from engine.runtime.context import PipelineRuntime
from engine.runtime.fields import field_int, field_period
from engine.runtime.logs import AttemptLog, blocking
from engine.store import queue
from engine.store.records import AttemptRecord, AttemptStatus, Fence, InstanceRecord, Status
from engine.telemetry.spans import propagation_env

log = logging.getLogger("headrace.runtime")

#: environment variable naming the attempt in every process an attempt starts
ATTEMPT_MARK = "HEADRACE_ATTEMPT_ID"
#: environment variable naming the worker process that runs the attempt (worker mode only)
WORKER_MARK = "HEADRACE_WORKER_ID"
DEFAULT_MAXIMUM_RETRIES = 2  # [old-docs] 3 tries in all
DEFAULT_RETRY_DELAY = timedelta(minutes=10)  # [old-docs]

#: the work of an attempt, given its context
Body = Callable[[AttemptContext], Awaitable[None]]


@dataclass
class Outcome:
    ok: bool
    error: str | None = None
    transient: bool = True
    status: AttemptStatus = AttemptStatus.FINISHED
    exit_code: int | None = None


class AttemptHost(Protocol):
    """What an attempt needs from whoever drives it."""

    @property
    def activation(self) -> datetime | None:
        """The pipeline's first activation (part of the run key of its loads)."""
        ...

    def log_root_for(self, rec: InstanceRecord) -> Path:
        """The directory under which ``rec``'s attempt logs go (its ``pipelineLogUri``)."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """``maximumRetries``, ``retryDelay`` and ``attemptTimeout`` of an activity."""

    max_retries: int
    delay: timedelta
    timeout: timedelta | None

    @classmethod
    def of(cls, rt: PipelineRuntime, rec: InstanceRecord) -> RetryPolicy:
        max_retries = field_int(rt, rec, "maximumRetries", DEFAULT_MAXIMUM_RETRIES) or 0
        retry_delay = field_period(rt, rec, "retryDelay")
        timeout = field_period(rt, rec, "attemptTimeout")
        return cls(max_retries, retry_delay.as_timedelta() if retry_delay else DEFAULT_RETRY_DELAY,
                   timeout.as_timedelta() if timeout else None)

    def after(self, outcome: Outcome, rec: InstanceRecord,
              now: datetime) -> tuple[Status, dict[str, Any]]:
        """The instance's next status and fields once an attempt ended with ``outcome``: a
        retryable failure within the budget (counted since the latest RERUN) waits
        ``retryDelay`` for the next attempt."""
        if outcome.ok:
            return Status.FINISHED, {"actual_end": now, "error": None}
        if outcome.transient and rec.attempts - rec.attempt_base <= self.max_retries:
            return Status.WAITING_FOR_RUNNER, {"retry_at": now + self.delay,
                                               "error": outcome.error}
        return Status.FAILED, {"actual_end": now, "error": outcome.error}


def run_key(pipeline_id: str, activation: datetime | None, rec: InstanceRecord) -> str:
    """Pipeline and its first activation, instance, rerun count: a store that starts over
    (deleted, or another store) activates afresh and gets new keys."""
    activated = activation.isoformat() if activation else ""
    return f"{pipeline_id}@{activated}/{rec.id}/{rec.attempt_base}"


class Attempt:
    """The next attempt of ``rec``. ``publish`` is called after each change of ``rec`` that
    the store accepted; ``cancel_reason`` says why, when the attempt is cancelled while the
    engine is not stopping.

    A worker process passes its ``fence`` (its claim on the instance): then every write of
    the attempt is accepted only while the claim holds, and ``existing`` continues an attempt
    recorded by an earlier claim (a precondition polled one check per claim). When the worker
    learns that it lost the claim it sets ``lost`` and cancels the attempt: nothing more is
    written for it (its new holder owns the instance)."""

    def __init__(self, rt: PipelineRuntime, rec: InstanceRecord, host: AttemptHost, *,
                 publish: Callable[[], None], cancel_reason: Callable[[], str],
                 fence: Fence | None = None, existing: AttemptRecord | None = None) -> None:
        self.rt = rt
        self.rec = rec
        self.host = host
        self.fence = fence
        self.lost = False
        self._publish = publish
        self._cancel_reason = cancel_reason
        now = rt.now()
        number = existing.number if existing is not None else rec.attempts + 1
        self.number = number
        self.log = AttemptLog(host.log_root_for(rec), rt.pipeline_id, rec.object_id, rec.id,
                              f"{rec.id}_Attempt={number}", inline=rt.inline_io)
        self.record = existing or AttemptRecord(
            rt.pipeline_id, rec.id, number, started_at=now, host=rt.owner,
            log_path=str(self.log.dir), trace_id=rt.telemetry.trace_id(rec),
            worker_id=fence.worker_id if fence else None,
            lease_version=fence.token if fence else None)

    def __repr__(self) -> str:
        return f"<Attempt {self.record.id} {self.record.status.value}>"

    async def begin(self) -> bool:
        """Record the attempt RUNNING; False when the instance is no longer where its driver
        saw it (somebody else moved it on)."""
        rec, now = self.rec, self.record.started_at
        fields = {"actual_start": rec.actual_start or now, "retry_at": None}
        if self.fence is not None:  # a worker: one statement on PostgreSQL
            started = await queue.start_held_attempt(self.rt.store, rec, self.record,
                                                     self.fence, **fields)
        else:
            started = await self.rt.store.start_attempt(rec, self.record, None, **fields)
        if not started:
            return False
        rec.status = Status.RUNNING
        rec.attempts = self.number
        rec.actual_start = rec.actual_start or now
        rec.retry_at = None
        self._publish()
        return True

    async def run_activity(self, runner: Runner, limit: timedelta | None) -> Outcome:
        """Run an activity inside its span (rows, bytes and exit code go on the span)."""

        async def body(ctx: AttemptContext) -> None:
            with self.rt.telemetry.activity_span(ctx):
                await runner(ctx)

        return await self.run(body, limit)

    async def run(self, body: Body, limit: timedelta | None, *, last: bool = True) -> Outcome:
        """Run ``body`` once, within ``limit``; the attempt record holds the result. ``last``
        false: one step of an attempt that goes on in a later claim (no end is logged)."""
        rt, rec, attempt, attempt_log = self.rt, self.rec, self.record, self.log
        outcome = Outcome(True)
        exit_code: int | None = None
        span = rt.telemetry.start_attempt(rec, self.number)
        with trace.use_span(span, end_on_exit=False, record_exception=False,
                            set_status_on_exception=False):  # TRACEPARENT, child spans
            try:
                await attempt_log.open(f"attempt {self.number} of {rec.id} started")
                ctx = self._context()
                scope = anyio.fail_after(limit.total_seconds()) if limit else nullcontext()
                try:
                    with scope:
                        await body(ctx)
                except TimeoutError:
                    outcome = Outcome(False, f"attempt timed out after {_duration(limit)}",
                                      status=AttemptStatus.TIMEDOUT)
                finally:
                    exit_code = ctx.metrics.get("exit_code")
            except NotRunnable as exc:
                outcome = Outcome(False, str(exc), transient=False, status=AttemptStatus.FAILED)
            except HeadraceError as exc:
                outcome = Outcome(False, str(exc), transient=exc.transient,
                                  status=AttemptStatus.FAILED)
            except Exception as exc:
                # not one of ours: a bug or an unmapped library error; retried, and its
                # traceback kept (masked) in the attempt's log
                message = f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"
                with anyio.CancelScope(shield=True):
                    await attempt_log.event("unexpected error:\n" + rt.definition.mask(
                        traceback.format_exc()))
                outcome = Outcome(False, message, transient=True, status=AttemptStatus.FAILED)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._cancelled()
                rt.telemetry.end_attempt(span, rec, attempt, attempt.error)
                raise
        attempt.status = outcome.status if not outcome.ok else AttemptStatus.FINISHED
        attempt.ended_at = rt.now()
        if outcome.error:  # it may quote the command's stderr: no secret goes further
            outcome.error = rt.definition.mask(outcome.error)
        attempt.error = outcome.error
        attempt.exit_code = outcome.exit_code = exit_code
        rt.telemetry.end_attempt(span, rec, attempt, outcome.error)
        if not last:
            attempt.status, attempt.ended_at = AttemptStatus.RUNNING, None
            return outcome
        with anyio.CancelScope(shield=True):
            await attempt_log.event(f"attempt {self.number} ended {attempt.status.value}"
                                    + (f" (exit code {exit_code})" if exit_code is not None
                                       else "")
                                    + (f": {outcome.error}" if outcome.error else ""))
        return outcome

    async def settle(self, policy: RetryPolicy, outcome: Outcome) -> tuple[Status, bool]:
        """Record the end of the attempt and the instance's next status as ``policy`` decides
        it. Returns that status, and False when the store refused it (the instance moved on
        meanwhile: its driver reads it again)."""
        now = self.rt.now()
        status, fields = policy.after(outcome, self.rec, now)
        if status == Status.WAITING_FOR_RUNNER:
            self.rt.telemetry.retry(self.rec, outcome.error, fields["retry_at"])
        return status, await self.end(status, **fields)

    async def end(self, status: Status, **fields: Any) -> bool:
        """Record the attempt's end and the instance's new status and fields together,
        provided the instance is still RUNNING; False when it is not."""
        if self.fence is not None:
            changed = await queue.end_held_attempt(self.rt.store, self.record,
                                                   {"status": status, **fields}, self.fence)
        else:
            changed = await self.rt.store.end_attempt(self.record, {"status": status, **fields},
                                                      expect=[Status.RUNNING])
        if not changed:
            return False
        self.rec.apply(status, fields)
        self._publish()
        return True

    async def _cancelled(self) -> None:
        rt, attempt, now = self.rt, self.record, self.rt.now()
        attempt.ended_at = now
        if self.lost:
            await self.log.event("attempt abandoned: this worker lost its lease on the "
                                 "instance (another worker holds it now); nothing recorded")
            return
        if rt.stopping:
            attempt.status = AttemptStatus.INTERRUPTED
            attempt.error = "the engine was stopped; the instance will be retried"
            await self.log.event("attempt interrupted by shutdown")
            fields = {"status": Status.WAITING_FOR_RUNNER, "error": attempt.error}
            if self.fence is not None:
                changed = await queue.end_held_attempt(rt.store, attempt, fields, self.fence,
                                                       requeue=True)
            else:
                changed = await rt.store.end_attempt(attempt, fields, expect=[Status.RUNNING])
            if changed:
                self.rec.status = Status.WAITING_FOR_RUNNER
                self._publish()
            return
        attempt.status = AttemptStatus.CANCELED
        reason = self._cancel_reason()
        attempt.error = reason
        await self.log.event(f"attempt canceled: {reason}")
        if self.fence is not None:  # a worker ends the instance too: its scheduler asked
            await self.end(Status.CANCELED, error=reason, actual_end=now)
            return
        await rt.store.update_attempt(rt.pipeline_id, self.rec.id, attempt.number,
                                      status=attempt.status, ended_at=now, error=reason)

    def _context(self) -> AttemptContext:
        rt, rec, attempt = self.rt, self.rec, self.record
        extra = {"@actualStartTime": rec.actual_start, "currentRetryCount": rec.attempts - 1}
        node_scope = None
        node_id = node_fields = None
        if rec.node is not None:
            node = rt.instances.get(rec.node)
            if node is not None:
                node_id = node.object_id
                node_scope = rt.scope(node)
                node_fields = rt.resolve(node.object_id, node)
        fields = rt.resolve(rec.object_id, rec, node_scope, **extra)
        masked = resolve_fields(rt.definition, rec.object_id, rt.runtime_fields(rec, **extra),
                                node_scope, mask=True, errors=[])
        secret = {k for k, v in masked.items() if v == MASK or (
            isinstance(v, list) and MASK in v)}
        return AttemptContext(
            pipeline_id=rt.pipeline_id, instance=rec, attempt=attempt.number,
            fields=fields, resolve=lambda oid: rt.resolve(oid, rec, **extra),
            scope=rt.scope(rec, node_scope, **extra), log=self.log,
            work_dir=self.log.work_dir,  # made by the log's open()
            clock=rt.clock, env={**propagation_env(), ATTEMPT_MARK: attempt.id,
                                 **({WORKER_MARK: self.fence.worker_id} if self.fence else {})},
            node_id=node_id, node_fields=node_fields, secret_fields=secret,
            run_key=run_key(rt.pipeline_id, self.host.activation, rec), copies=rt.store)


async def interrupt_lost_attempts(rt: PipelineRuntime, rec: InstanceRecord) -> None:
    """``rec`` was RUNNING when the process that ran it stopped: each attempt it left RUNNING
    is lost (it counts) and becomes INTERRUPTED; a command it started that still runs on this
    host is killed first."""
    attempts = await rt.store.list_attempts(rt.pipeline_id, rec.id)
    now = rt.now()
    for attempt in attempts:
        if attempt.status == AttemptStatus.RUNNING:
            await _kill_orphan(rt, rec, attempt)
            attempt.status = AttemptStatus.INTERRUPTED
            attempt.ended_at = now
            attempt.error = "the engine stopped while this attempt ran"
            await rt.store.update_attempt(
                rt.pipeline_id, rec.id, attempt.number,
                status=attempt.status, ended_at=now, error=attempt.error)


async def kill_orphans(rt: PipelineRuntime, rec: InstanceRecord) -> None:
    """Before a worker runs ``rec`` again: the commands of its attempts that a dead or cut-off
    worker left behind (INTERRUPTED by the reaper) are killed when they run on this host."""
    if rec.attempts == 0:
        return
    for attempt in await rt.store.list_attempts(rt.pipeline_id, rec.id):
        if attempt.status in (AttemptStatus.INTERRUPTED, AttemptStatus.RUNNING):
            await _kill_orphan(rt, rec, attempt)


async def _kill_orphan(rt: PipelineRuntime, rec: InstanceRecord, attempt: AttemptRecord) -> None:
    if not attempt.log_path:
        return
    # its command may outlive the process that started it: stop it
    pid_file, mark = Path(attempt.log_path) / "pid", f"{ATTEMPT_MARK}={attempt.id}"
    if await blocking(partial(kill_orphaned_group, pid_file, mark), inline=rt.inline_io):
        log.warning("%s: killed the command left running by attempt %d", rec.id,
                    attempt.number)


def _duration(delta: timedelta | None) -> str:
    if delta is None:
        return "?"
    seconds = delta.total_seconds()
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} min"
