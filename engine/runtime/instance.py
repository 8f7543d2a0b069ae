"""InstanceActor: the state machine of one scheduled instance (reference section 6.2).

``WAITING_ON_DEPENDENCIES`` (its time, its inputs and ``dependsOn``, its preconditions) ->
``WAITING_FOR_RUNNER`` (limits) -> ``RUNNING`` (one attempt at a time, ``attemptTimeout``,
``retryDelay``, ``maximumRetries``) -> ``FINISHED`` | ``FAILED``; ``CASCADE_FAILED`` when a
dependency failed under ``failureAndRerunMode: cascade``; ``CANCELED`` by TRY_CANCEL or a
Terminate action. Data node instances finish as soon as their dependencies do; precondition
instances poll their check until it holds or ``preconditionTimeout`` passes.

Every change is committed to the store before the actor acts on it. The actor owns a task group
(its lateness watcher and mailbox listener live there) and a cancel scope for its work, so a
control message can stop the work while cleanup stays shielded.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from opentelemetry import trace

from engine.activities.base import ACTIVITIES, PRECONDITIONS, AttemptContext, NotRunnable
from engine.activities.process import kill_orphaned_group
from engine.definition.reader import Ref
from engine.definition.types import TYPES
from engine.errors import ExpressionError, HeadraceError, PlanError, RunError, ScheduleError
from engine.runtime.actions import fire_actions
from engine.runtime.actor import Mailbox
from engine.runtime.context import DEFAULT_MAX_ACTIVE_INSTANCES, PipelineRuntime
from engine.runtime.logs import AttemptLog, blocking
from engine.schedule import Period, parse_period
from engine.store.records import (
    BROKEN,
    AttemptRecord,
    AttemptStatus,
    InstanceRecord,
    Status,
)
from engine.telemetry.spans import fail as fail_span

if TYPE_CHECKING:
    from engine.runtime.pipeline import PipelineSupervisor

log = logging.getLogger("headrace.runtime")

#: environment variable naming the attempt in every process an attempt starts
ATTEMPT_MARK = "HEADRACE_ATTEMPT_ID"
#: errors of a field's value found at run time
_FIELD_ERRORS = (RunError, ExpressionError, PlanError)
DEFAULT_MAXIMUM_RETRIES = 2  # [old-docs] 3 tries in all
DEFAULT_RETRY_DELAY = timedelta(minutes=10)  # [old-docs]


@dataclass(frozen=True)
class Cancel:
    """TRY_CANCEL, a Terminate action, or a cascade: end the instance as CANCELED."""

    reason: str


@dataclass(frozen=True)
class MarkFinished:
    """MARK_FINISHED: end the instance as FINISHED without running it further."""


Control = Cancel | MarkFinished


@dataclass
class Outcome:
    ok: bool
    error: str | None = None
    transient: bool = True
    status: AttemptStatus = AttemptStatus.FINISHED
    exit_code: int | None = None


class InstanceActor:
    def __init__(self, rt: PipelineRuntime, record: InstanceRecord,
                 supervisor: PipelineSupervisor) -> None:
        self.rt = rt
        self.rec = record
        self.sup = supervisor
        self.mailbox: Mailbox[Control] = Mailbox(4)
        self._work = anyio.CancelScope()
        self._control: Control | None = None
        self._in_attempt = False

    def __repr__(self) -> str:
        return f"<InstanceActor {self.rec.id} {self.rec.status.value}>"

    # --- fields ----------------------------------------------------------------------------

    def _text(self, name: str) -> str | None:
        """An evaluated scalar field of this instance's object (None when unset)."""
        values = self.rt.definition.field(self.rec.object_id, name)
        if not values or isinstance(values[0], Ref):
            return None
        text = values[0]
        if "#{" not in text:
            return text
        from engine.definition.scope import render

        return render(self.rt.scope(self.rec).lookup(name))

    def _int(self, name: str, default: int | None) -> int | None:
        text = self._text(name)
        if text is None:
            return default
        try:
            return int(text.strip())
        except ValueError:
            raise RunError(f"object {self.rec.object_id!r}, field {name!r}: {text!r} is not a "
                           "whole number", transient=False) from None

    def _period(self, name: str) -> Period | None:
        text = self._text(name)
        if text is None:
            return None
        try:
            return parse_period(text)
        except ScheduleError as exc:
            raise RunError(f"object {self.rec.object_id!r}, field {name!r}: {exc}",
                           transient=False) from None

    def _worker_group(self) -> str | None:
        """``workerGroup`` if set, else the id of the ``runsOn`` resource."""
        group = self._text("workerGroup")
        if group:
            return group.strip()
        values = self.rt.definition.field(self.rec.object_id, "runsOn")
        return values[0].id if values and isinstance(values[0], Ref) else None

    def _cascade(self) -> bool:
        text = self._text("failureAndRerunMode")
        return text is not None and text.strip().lower() == "cascade"

    # --- the actor -------------------------------------------------------------------------

    async def send(self, message: Control) -> None:
        await self.mailbox.send(message)

    async def run(self) -> None:
        telemetry = self.rt.telemetry
        telemetry.instance_span(self.rec)
        if self.rec.status in (Status.WAITING_FOR_RUNNER, Status.RUNNING):  # resumed: waited
            telemetry.dependencies_met(self.rec, self._waits_for())  # in an earlier run
        try:
            ids = telemetry.ids_to_store(self.rec)
            if ids is not None:  # later instances link to this run, also after a restart
                await self.rt.store.update_instance(self.rt.pipeline_id, self.rec.id, **ids)
                self.rec.trace_id, self.rec.span_id = ids["trace_id"], ids["span_id"]
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._listen)
                try:
                    with self._work:
                        await self._lifecycle()
                    if self._control is not None and not self.rec.terminal:
                        with anyio.CancelScope(shield=True):
                            await self._apply_control(self._control)
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self.mailbox.close()
            telemetry.end_instance(self.rec)

    async def _listen(self) -> None:
        async for message in self.mailbox:
            if self._control is None or isinstance(message, MarkFinished):
                self._control = message
            self._work.cancel()

    async def _apply_control(self, control: Control) -> None:
        now = self.rt.now()
        if isinstance(control, MarkFinished):
            await self._set(Status.FINISHED, actual_end=self.rec.actual_end or now,
                            error=None)
        else:
            await self._set(Status.CANCELED, error=control.reason,
                            actual_end=self.rec.actual_end or now)

    async def _set(self, status: Status, **fields: Any) -> bool:
        """Commit a status change, then publish it."""
        changed = await self.rt.store.update_instance(
            self.rt.pipeline_id, self.rec.id, expect=[self.rec.status], status=status, **fields)
        if not changed:
            fresh = await self.rt.store.get_instance(self.rt.pipeline_id, self.rec.id)
            self._adopt(fresh)
            return False
        self.rec.status = status
        for key, value in fields.items():
            setattr(self.rec, key, value)
        self._publish()
        return True

    def _adopt(self, fresh: InstanceRecord) -> None:
        self.rec = fresh
        self.rt.instances[fresh.id] = fresh
        self._publish()

    def _publish(self) -> None:
        self.rt.telemetry.status_changed(self.rec)
        self.rt.instances[self.rec.id] = self.rec
        self.rt.board.set(self.rec.id, self.rec.status)
        self.sup.status_changed(self.rec)

    # --- lifecycle -------------------------------------------------------------------------

    async def _lifecycle(self) -> None:
        # a definition problem found at run time (a field value that does not evaluate or
        # parse) fails the instance; caught inside the task group, where it is raised, so it
        # does not arrive wrapped in an exception group
        try:
            if self.rec.status == Status.RUNNING:
                await self._recover_interrupted()
            if self.rec.terminal:
                return
            late_after = self._late_after()
        except _FIELD_ERRORS as exc:
            await self._fail_now(str(exc))
            return
        async with anyio.create_task_group() as tg:
            if late_after is not None and not self.rec.late_fired:
                tg.start_soon(self._watch_lateness, late_after)
            try:
                await self._advance()
            except _FIELD_ERRORS as exc:
                await self._fail_now(str(exc))
            finally:
                tg.cancel_scope.cancel()

    async def _advance(self) -> None:
        if self.rec.status == Status.WAITING_ON_DEPENDENCIES:
            broken = await self._wait_dependencies()
            if broken is not None:
                if self.rec.category == "precondition":
                    await self._set(Status.CANCELED, error=f"cascade from {broken}",
                                    cascade_failed_on=broken, actual_end=self.rt.now())
                else:
                    await self._set(Status.CASCADE_FAILED, cascade_failed_on=broken,
                                    error=f"dependency {broken} did not finish",
                                    actual_end=self.rt.now())
                    await self.sup.cancel_preconditions_of(self.rec)
                return
            if self.rec.category == "datanode":
                now = self.rt.now()
                await self._set(Status.FINISHED, actual_start=now, actual_end=now)
                return
            self.rt.telemetry.dependencies_met(self.rec, self._waits_for())
            if not await self._set(Status.WAITING_FOR_RUNNER):
                return
        if self.rec.status != Status.WAITING_FOR_RUNNER:
            return
        if self.rec.category == "precondition":
            await self._poll_precondition()
        else:
            await self._run_attempts()

    async def _fail_now(self, error: str) -> None:
        error = self.rt.definition.mask(error)
        with anyio.CancelScope(shield=True):
            if not self.rec.terminal:
                await self._set(Status.FAILED, error=error, actual_end=self.rt.now())
                await fire_actions(self.rt, self.rec, "onFail", self)

    # --- waiting ---------------------------------------------------------------------------

    def _waits_for(self) -> list[str]:
        if self.rec.category != "precondition" or self.rec.node is None:
            return self.rec.depends_on
        node = self.rt.instances.get(self.rec.node)
        if node is None:
            return []
        # a precondition polls once its node's other dependencies are done
        return [d for d in node.depends_on
                if (r := self.rt.instances.get(d)) is None or r.node != node.id]

    async def _wait_dependencies(self) -> str | None:
        """Wait for the instance's time and dependencies. Returns the id of a failed dependency
        when cascade mode makes this instance fail with it, else None when ready."""
        await self.rt.clock.sleep_until(self.rec.eligible_at)
        cascade = self._cascade()
        while True:
            pending: list[str] = []
            for dep in self._waits_for():
                status = self.rt.board.get(dep)
                if status is None or status == Status.FINISHED:
                    continue
                if status in BROKEN and cascade:
                    return dep
                pending.append(dep)
            paused = self.rec.object_id in self.rt.paused
            if not pending and not paused:
                return None
            await self.rt.board.wait_for([*pending, self.rec.id])

    def _late_after(self) -> Period | None:
        if self.rec.category == "datanode" or self.rec.schedule_type_ondemand:
            return None
        return self._period("lateAfterTimeout")

    async def _watch_lateness(self, late_after: Period) -> None:
        deadline = self.rec.scheduled_start + late_after.as_timedelta()
        await self.rt.clock.sleep_until(deadline)
        # late = not started by the deadline; judged on the recorded start time, so an
        # instance that starts in the same instant as the check (a backfill) is judged the same
        # way whichever task runs first
        started = self.rec.actual_start
        if self.rec.late_fired or (started is not None and started <= deadline):
            return
        if self.rec.terminal and started is None:
            return  # ended without running (canceled, cascade-failed): not late, just over
        await self.rt.store.update_instance(self.rt.pipeline_id, self.rec.id, late_fired=True)
        self.rec.late_fired = True
        log.info("%s is late (not started by %s)", self.rec.id, deadline.isoformat())
        self.rt.telemetry.late(self.rec, deadline)
        await fire_actions(self.rt, self.rec, "onLateAction", self)

    async def terminate(self, reason: str) -> None:
        """Called by a Terminate action: cancel this instance if it has not started."""
        if self.rec.actual_start is None and not self.rec.terminal:
            self.mailbox.send_nowait(Cancel(reason))

    # --- attempts --------------------------------------------------------------------------

    async def _recover_interrupted(self) -> None:
        """The instance was RUNNING when its engine stopped: that attempt is lost; it counts."""
        attempts = await self.rt.store.list_attempts(self.rt.pipeline_id, self.rec.id)
        now = self.rt.now()
        for attempt in attempts:
            if attempt.status == AttemptStatus.RUNNING:
                if attempt.log_path:  # its command may outlive the dead engine: stop it
                    pid_file, mark = Path(attempt.log_path) / "pid", f"{ATTEMPT_MARK}={attempt.id}"
                    if await blocking(lambda p=pid_file, m=mark: kill_orphaned_group(p, m),
                                      inline=self.rt.inline_io):
                        log.warning("%s: killed the command left running by attempt %d",
                                    self.rec.id, attempt.number)
                attempt.status = AttemptStatus.INTERRUPTED
                attempt.ended_at = now
                attempt.error = "the engine stopped while this attempt ran"
                await self.rt.store.update_attempt(
                    self.rt.pipeline_id, self.rec.id, attempt.number,
                    status=attempt.status, ended_at=now, error=attempt.error)
        await self._set(Status.WAITING_FOR_RUNNER, error="interrupted: retrying")

    async def _run_attempts(self) -> None:
        spec = TYPES.get(self.rec.type)
        runner = ACTIVITIES.get(self.rec.type)
        if runner is None:
            why = (f"{self.rec.type} needs Amazon EMR; headrace reads and validates it but "
                   "does not run it") if spec is not None and spec.runs == "read" else (
                f"headrace cannot run objects of type {self.rec.type or '(untyped)'}")
            await self._fail_now(why)
            return
        max_retries = self._int("maximumRetries", DEFAULT_MAXIMUM_RETRIES) or 0
        retry_delay = self._period("retryDelay")
        delay = retry_delay.as_timedelta() if retry_delay else DEFAULT_RETRY_DELAY
        timeout = self._period("attemptTimeout")
        size = self._int("maxActiveInstances", DEFAULT_MAX_ACTIVE_INSTANCES) or 1
        component = self.rt.limits.component(self.rec.object_id, size)
        if size == 1:
            await self._wait_for_earlier_instances()
        while True:
            if self.rec.retry_at is not None:
                await self.rt.clock.sleep_until(self.rec.retry_at)
            await self.sup.gate()
            group = self.rt.limits.worker_group(self._worker_group())
            async with self.rt.limits.engine, component, group or nullcontext():
                attempt, outcome = await self._attempt(
                    lambda ctx: self.rt.telemetry.run_activity(ctx, runner),
                    timeout.as_timedelta() if timeout else None)
            if attempt is None:
                return  # somebody else moved the instance on
            used = self.rec.attempts - self.rec.attempt_base
            now = self.rt.now()
            if outcome.ok:
                await self._end(attempt, Status.FINISHED, actual_end=now, error=None)
                await fire_actions(self.rt, self.rec, "onSuccess", self)
                return
            if outcome.transient and used <= max_retries:
                retry_at = now + delay
                self.rt.telemetry.retry(self.rec, outcome.error, retry_at)
                await self._end(attempt, Status.WAITING_FOR_RUNNER, retry_at=retry_at,
                                error=outcome.error)
                continue
            await self._end(attempt, Status.FAILED, actual_end=now, error=outcome.error)
            await fire_actions(self.rt, self.rec, "onFail", self)
            return

    async def _wait_for_earlier_instances(self) -> None:
        """``maxActiveInstances: 1`` runs a component's instances in strict chronological
        order (reference section 2): wait until every earlier instance has ended. Arrival
        order at the limiter is not enough, as instances that become ready together reach
        it in any order."""
        while True:
            earlier = [r.id for r in self.rt.instances.values()
                       if r.object_id == self.rec.object_id and not r.terminal
                       and r.scheduled_start < self.rec.scheduled_start]
            if not earlier:
                return
            await self.rt.board.wait_for(earlier)

    async def _end(self, attempt: AttemptRecord, status: Status, **fields: Any) -> None:
        changed = await self.rt.store.end_attempt(attempt, {"status": status, **fields},
                                                  expect=[Status.RUNNING])
        if not changed:
            self._adopt(await self.rt.store.get_instance(self.rt.pipeline_id, self.rec.id))
            return
        self.rec.status = status
        for key, value in fields.items():
            setattr(self.rec, key, value)
        self._publish()

    async def _attempt(self, body: Any, limit: timedelta | None,
                       ) -> tuple[AttemptRecord | None, Outcome]:
        rt = self.rt
        now = rt.now()
        number = self.rec.attempts + 1
        attempt_id = f"{self.rec.id}_Attempt={number}"
        log_root = self.sup.log_root_for(self.rec)
        attempt_log = AttemptLog(log_root, rt.pipeline_id, self.rec.object_id, self.rec.id,
                                 attempt_id, inline=rt.inline_io)
        attempt = AttemptRecord(rt.pipeline_id, self.rec.id, number, started_at=now,
                                host=rt.owner, log_path=str(attempt_log.dir),
                                trace_id=rt.telemetry.trace_id(self.rec))
        started = await rt.store.start_attempt(
            self.rec, attempt, actual_start=self.rec.actual_start or now, retry_at=None)
        if not started:
            self._adopt(await rt.store.get_instance(rt.pipeline_id, self.rec.id))
            return None, Outcome(False)
        self.rec.status = Status.RUNNING
        self.rec.attempts = number
        self.rec.actual_start = self.rec.actual_start or now
        self.rec.retry_at = None
        self._publish()
        outcome = Outcome(True)
        exit_code: int | None = None
        self._in_attempt = True
        span = rt.telemetry.start_attempt(self.rec, number)
        with trace.use_span(span, end_on_exit=False, record_exception=False,
                            set_status_on_exception=False):  # TRACEPARENT, child spans
            try:
                await attempt_log.open(f"attempt {number} of {self.rec.id} started")
                ctx = await self._context(attempt, attempt_log)
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
            except (RunError, HeadraceError) as exc:
                outcome = Outcome(False, str(exc), transient=getattr(exc, "transient", False),
                                  status=AttemptStatus.FAILED)
            except Exception as exc:
                transient = getattr(exc, "transient", None)
                message = str(exc) or type(exc).__name__
                if transient is None:  # not one of ours: a bug or an unmapped library error
                    message = f"{type(exc).__name__}: {message}"
                    with anyio.CancelScope(shield=True):
                        await attempt_log.event("unexpected error:\n" + rt.definition.mask(
                            traceback.format_exc()))
                outcome = Outcome(False, message, transient=bool(transient) if transient is not None
                                  else True, status=AttemptStatus.FAILED)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._attempt_cancelled(attempt, attempt_log)
                rt.telemetry.end_attempt(span, self.rec, attempt, attempt.error)
                raise
            finally:
                self._in_attempt = False
        attempt.status = outcome.status if not outcome.ok else AttemptStatus.FINISHED
        attempt.ended_at = rt.now()
        if outcome.error:  # it may quote the command's stderr: no secret goes further
            outcome.error = rt.definition.mask(outcome.error)
        attempt.error = outcome.error
        attempt.exit_code = outcome.exit_code = exit_code
        rt.telemetry.end_attempt(span, self.rec, attempt, outcome.error)
        with anyio.CancelScope(shield=True):
            await attempt_log.event(f"attempt {number} ended {attempt.status.value}"
                                    + (f" (exit code {exit_code})" if exit_code is not None
                                       else "")
                                    + (f": {outcome.error}" if outcome.error else ""))
        return attempt, outcome

    async def _attempt_cancelled(self, attempt: AttemptRecord, attempt_log: AttemptLog) -> None:
        now = self.rt.now()
        attempt.ended_at = now
        if self.rt.stopping:
            attempt.status = AttemptStatus.INTERRUPTED
            attempt.error = "the engine was stopped; the instance will be retried"
            await attempt_log.event("attempt interrupted by shutdown")
            changed = await self.rt.store.end_attempt(
                attempt, {"status": Status.WAITING_FOR_RUNNER, "error": attempt.error},
                expect=[Status.RUNNING])
            if changed:
                self.rec.status = Status.WAITING_FOR_RUNNER
                self._publish()
            return
        attempt.status = AttemptStatus.CANCELED
        reason = self._control.reason if isinstance(self._control, Cancel) else (
            "marked finished" if isinstance(self._control, MarkFinished) else "canceled")
        attempt.error = reason
        await attempt_log.event(f"attempt canceled: {reason}")
        await self.rt.store.update_attempt(self.rt.pipeline_id, self.rec.id, attempt.number,
                                           status=attempt.status, ended_at=now, error=reason)

    async def _context(self, attempt: AttemptRecord, attempt_log: AttemptLog) -> AttemptContext:
        rt = self.rt
        extra = {"@actualStartTime": self.rec.actual_start, "currentRetryCount":
                 self.rec.attempts - 1}
        node_scope = None
        node_id = node_fields = None
        if self.rec.node is not None:
            node = rt.instances.get(self.rec.node)
            if node is not None:
                node_id = node.object_id
                node_scope = rt.scope(node)
                node_fields = rt.resolve(node.object_id, node)
        fields = rt.resolve(self.rec.object_id, self.rec, node=node_scope, **extra)
        from engine.plan import MASK, resolve_fields

        masked = resolve_fields(rt.definition, self.rec.object_id,
                                rt.runtime_fields(self.rec, **extra), node_scope, mask=True,
                                errors=[])
        secret = {k for k, v in masked.items() if v == MASK or (
            isinstance(v, list) and MASK in v)}
        work_dir = attempt_log.work_dir  # made by attempt_log.open()
        return AttemptContext(
            pipeline_id=rt.pipeline_id, instance=self.rec, attempt=attempt.number,
            fields=fields, resolve=lambda oid: rt.resolve(oid, self.rec, **extra),
            scope=rt.scope(self.rec, node_scope, **extra), log=attempt_log, work_dir=work_dir,
            clock=rt.clock, env={**self.sup.attempt_env(self.rec, attempt),
                                 ATTEMPT_MARK: attempt.id},
            node_id=node_id, node_fields=node_fields, secret_fields=secret,
            run_key=self._run_key())

    def _run_key(self) -> str:
        """Pipeline and its first activation, instance, rerun count: a store that starts
        over (deleted, or another store) activates afresh and gets new keys."""
        activated = self.sup.activation.isoformat() if self.sup.activation else ""
        return f"{self.rt.pipeline_id}@{activated}/{self.rec.id}/{self.rec.attempt_base}"

    # --- preconditions ---------------------------------------------------------------------

    async def _poll_precondition(self) -> None:
        check = PRECONDITIONS.get(self.rec.type)
        if check is None:
            await self._fail_now(f"headrace cannot check preconditions of type {self.rec.type}")
            return
        timeout = self._period("preconditionTimeout")
        retry_delay = self._period("retryDelay")
        delay = (retry_delay.as_timedelta() if retry_delay else DEFAULT_RETRY_DELAY)
        max_retries = self._int("maximumRetries", None)
        attempt_timeout = self._period("attemptTimeout")
        started = self.rt.now()
        deadline = started + timeout.as_timedelta() if timeout else None
        polls = 0
        failure: list[str] = []

        async def poll(ctx: AttemptContext) -> None:
            nonlocal polls
            while True:
                polls += 1
                satisfied = False
                with self.rt.telemetry.check_span(ctx, polls) as span:
                    try:
                        scope = (anyio.fail_after(attempt_timeout.as_timedelta().total_seconds())
                                 if attempt_timeout else nullcontext())
                        with scope:
                            # a slot of the engine-wide limit per check, not for the whole
                            # polling: waiting preconditions must not starve the activities
                            async with self.rt.limits.engine:
                                satisfied = await check(ctx)
                    except TimeoutError:
                        await ctx.log.event(f"check {polls} timed out")
                        fail_span(span, "check timed out", "timeout")
                    except Exception as exc:
                        # it may quote the check's command or a server's reply: masked for
                        # the span and the attempt's log alike
                        message = self.rt.definition.mask(str(exc) or type(exc).__name__)
                        fail_span(span, message, type(exc).__qualname__)
                        if getattr(exc, "transient", True) is False:
                            raise
                        await ctx.log.event(f"check {polls} failed: {message}")
                    span.set_attribute("headrace.check.result", satisfied)
                await ctx.log.event(f"check {polls}: {'true' if satisfied else 'false'}")
                if satisfied:
                    return
                now = self.rt.now()
                if deadline is not None and now + _seconds(0) >= deadline:
                    failure.append(f"precondition not met within {timeout} ({polls} checks)")
                    return
                if max_retries is not None and deadline is None and polls > max_retries:
                    failure.append(f"precondition not met after {polls} checks")
                    return
                wake = now + delay
                if deadline is not None and wake > deadline:
                    wake = deadline
                await self.rt.clock.sleep_until(wake)

        attempt, outcome = await self._attempt(poll, None)
        if attempt is None:
            return
        now = self.rt.now()
        self.rt.telemetry.precondition_waited(self.rec, (now - started).total_seconds(),
                                              outcome.ok and not failure)
        if outcome.ok and not failure:
            await self._end(attempt, Status.FINISHED, actual_end=now, error=None)
            await fire_actions(self.rt, self.rec, "onSuccess", self)
            return
        error = failure[0] if failure else outcome.error
        attempt.status = AttemptStatus.FAILED
        attempt.error = error
        await self._end(attempt, Status.FAILED, actual_end=now, error=error)
        await fire_actions(self.rt, self.rec, "onFail", self)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _duration(delta: timedelta | None) -> str:
    if delta is None:
        return "?"
    seconds = delta.total_seconds()
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} min"
