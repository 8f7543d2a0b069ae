"""InstanceActor: the state machine of one scheduled instance (reference section 6.2).

``WAITING_ON_DEPENDENCIES`` (its time, its inputs and ``dependsOn``, its preconditions) ->
``WAITING_FOR_RUNNER`` (limits) -> ``RUNNING`` (one attempt at a time, ``attemptTimeout``,
``retryDelay``, ``maximumRetries``) -> ``FINISHED`` | ``FAILED``; ``CASCADE_FAILED`` when a
dependency failed under ``failureAndRerunMode: cascade``; ``CANCELED`` by TRY_CANCEL or a
Terminate action. Data node instances finish as soon as their dependencies do; precondition
instances poll their check until it holds or ``preconditionTimeout`` passes.

Every change is committed to the store before the actor acts on it. The actor owns a task group
(its lateness watcher and mailbox listener live there) and a cancel scope for its work, so a
control message can stop the work while cleanup stays shielded. One attempt's run is
:mod:`engine.runtime.attempt`; a precondition's checks are :mod:`engine.runtime.precondition`.
The actor reaches its supervisor through :class:`InstanceHost` only.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from engine.activities.base import ACTIVITIES, PRECONDITIONS
from engine.definition.types import TYPES
from engine.errors import ExpressionError, PlanError, RunError
from engine.runtime.actions import fire_actions
from engine.runtime.actor import Mailbox
from engine.runtime.attempt import Attempt, AttemptHost, RetryPolicy, interrupt_lost_attempts
from engine.runtime.context import DEFAULT_MAX_ACTIVE_INSTANCES, PipelineRuntime
from engine.runtime.fields import cascades, field_int, field_period, worker_group
from engine.runtime.precondition import PollPlan, PreconditionPoll
from engine.schedule import Period
from engine.store.records import BROKEN, AttemptStatus, InstanceRecord, Status

log = logging.getLogger("headrace.runtime")

#: errors of a field's value found at run time
_FIELD_ERRORS = (RunError, ExpressionError, PlanError)


@dataclass(frozen=True)
class Cancel:
    """TRY_CANCEL, a Terminate action, or a cascade: end the instance as CANCELED."""

    reason: str


@dataclass(frozen=True)
class MarkFinished:
    """MARK_FINISHED: end the instance as FINISHED without running it further."""


Control = Cancel | MarkFinished


class InstanceHost(AttemptHost, Protocol):
    """What an instance actor needs from the supervisor that owns it (the
    :class:`~engine.runtime.pipeline.PipelineSupervisor` is one), besides what its attempts
    need."""

    def status_changed(self, rec: InstanceRecord) -> None:
        """``rec`` changed status (written to the store already)."""
        ...

    async def cancel_preconditions_of(self, rec: InstanceRecord) -> None:
        """``rec`` cascade-failed: cancel its precondition instances still pending."""
        ...

    async def gate(self) -> None:
        """Wait here while no new attempt may start (the pipeline is being deactivated)."""
        ...


class InstanceActor:
    def __init__(self, rt: PipelineRuntime, record: InstanceRecord, host: InstanceHost) -> None:
        self.rt = rt
        self.rec = record
        self.host = host
        self.mailbox: Mailbox[Control] = Mailbox(4)
        self._work = anyio.CancelScope()
        self._control: Control | None = None
        #: (the worker group,) once evaluated
        self._worker_group: tuple[str | None] | None = None

    def __repr__(self) -> str:
        return f"<InstanceActor {self.rec.id} {self.rec.status.value}>"

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
                trace_id, span_id = ids
                await self.rt.store.update_instance(self.rt.pipeline_id, self.rec.id,
                                                    trace_id=trace_id, span_id=span_id)
                self.rec.trace_id, self.rec.span_id = trace_id, span_id
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
            await self._refresh()
            return False
        self.rec.apply(status, fields)
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
        self.host.status_changed(self.rec)

    # --- lifecycle -------------------------------------------------------------------------

    async def _lifecycle(self) -> None:
        # a definition problem found at run time (a field value that does not evaluate or
        # parse) fails the instance; caught inside the task group, where it is raised, so it
        # does not arrive wrapped in an exception group
        try:
            if self.rec.status == Status.RUNNING and not self._handed_over():
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
                    await self.host.cancel_preconditions_of(self.rec)
                return
            if self.rec.category == "datanode":
                now = self.rt.now()
                await self._set(Status.FINISHED, actual_start=now, actual_end=now)
                return
            self.rt.telemetry.dependencies_met(self.rec, self._waits_for())
            if not await self._ready():
                return
        group = self._group()
        if self.rt.dispatch is not None and self.rt.dispatch.remote(group):
            if self.rec.status in (Status.WAITING_FOR_RUNNER, Status.RUNNING):
                await self._run_remote(group)
            return
        if self.rec.status != Status.WAITING_FOR_RUNNER:
            return
        if self.rec.category == "precondition":
            await self._poll_precondition()
        else:
            await self._run_attempts()

    def _group(self) -> str | None:
        """The instance's worker group (evaluated once per actor)."""
        if self._worker_group is None:
            self._worker_group = (worker_group(self.rt, self.rec),)
        return self._worker_group[0]

    async def _ready(self) -> bool:
        """Dependencies met: WAITING_FOR_RUNNER. For work that goes to workers the write is
        batched with the other instances that became ready at the same time."""
        dispatch = self.rt.dispatch
        if dispatch is None or not dispatch.remote(self._group()):
            return await self._set(Status.WAITING_FOR_RUNNER)
        if not await dispatch.ready(self.rec):
            await self._refresh()
            return False
        self.rec.apply(Status.WAITING_FOR_RUNNER, {})
        self._publish()
        return True

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
        cascade = cascades(self.rt, self.rec)
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
        return field_period(self.rt, self.rec, "lateAfterTimeout")

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
        await interrupt_lost_attempts(self.rt, self.rec)
        await self._set(Status.WAITING_FOR_RUNNER, error="interrupted: retrying")

    def _unrunnable(self) -> str | None:
        """Why this process (and so any worker) cannot run the instance's type, if so."""
        if self.rec.category == "precondition":
            if self.rec.type in PRECONDITIONS:
                return None
            return f"headrace cannot check preconditions of type {self.rec.type}"
        if self.rec.type in ACTIVITIES:
            return None
        spec = TYPES.get(self.rec.type)
        return (f"{self.rec.type} needs Amazon EMR; headrace reads and validates it but "
                "does not run it") if spec is not None and spec.runs == "read" else (
            f"headrace cannot run objects of type {self.rec.type or '(untyped)'}")

    async def _component_slot(self) -> anyio.CapacityLimiter:
        """The ``maxActiveInstances`` limiter of the instance's component (with strict
        chronological order when it is 1)."""
        size = field_int(self.rt, self.rec, "maxActiveInstances",
                         DEFAULT_MAX_ACTIVE_INSTANCES) or 1
        if size == 1:
            await self._wait_for_earlier_instances()
        return self.rt.limits.component(self.rec.object_id, size)

    def _handed_over(self) -> bool:
        """The instance is in the workers' queue or held by one (this scheduler waits)."""
        return self.rt.dispatch is not None and (
            self.rec.queued_at is not None or self.rec.worker_id is not None)

    async def _run_remote(self, group: str | None) -> None:
        """The instance's attempts run in worker processes: queue it, wait for it to come
        back, retry after ``retryDelay`` as the worker recorded, fire the actions at the end."""
        assert self.rt.dispatch is not None
        why = self._unrunnable()
        if why is not None:
            await self._fail_now(why)
            return
        activity = self.rec.category != "precondition"
        component = await self._component_slot() if activity else None
        while True:
            if self.rec.status == Status.WAITING_FOR_RUNNER and self.rec.retry_at is not None:
                await self.rt.clock.sleep_until(self.rec.retry_at)
            await self.host.gate()
            async with component or nullcontext():
                fresh = await self._hand_over(group)
            self._adopt(fresh)
            if fresh.status in (Status.WAITING_FOR_RUNNER, Status.RUNNING):
                if fresh.status == Status.RUNNING and not self._handed_over():
                    await self._recover_interrupted()  # came back running: its worker is gone
                continue
            if fresh.status in (Status.FINISHED, Status.FAILED, Status.TIMEDOUT):
                await fire_actions(self.rt, self.rec, "onSuccess" if fresh.status ==
                                   Status.FINISHED else "onFail", self)
            return

    async def _hand_over(self, group: str | None) -> InstanceRecord:
        dispatch = self.rt.dispatch
        assert dispatch is not None
        try:
            return await dispatch.hand_over(self.rec, group)
        except anyio.get_cancelled_exc_class():
            # stopping: the workers carry on, the next scheduler waits for what they do;
            # a user action: the work is taken back before the action is applied
            if not self.rt.stopping:
                with anyio.CancelScope(shield=True):
                    self._adopt(await dispatch.take_back(self.rec, self._cancel_reason()))
            raise

    async def _run_attempts(self) -> None:
        why = self._unrunnable()
        runner = ACTIVITIES.get(self.rec.type)
        if why is not None or runner is None:
            await self._fail_now(why or "not runnable")
            return
        policy = RetryPolicy.of(self.rt, self.rec)
        component = await self._component_slot()
        while True:
            if self.rec.retry_at is not None:
                await self.rt.clock.sleep_until(self.rec.retry_at)
            await self.host.gate()
            group = self.rt.limits.worker_group(worker_group(self.rt, self.rec))
            async with self.rt.limits.engine, component, group or nullcontext():
                attempt = await self._begin_attempt()
                if attempt is None:
                    return  # somebody else moved the instance on
                outcome = await attempt.run_activity(runner, policy.timeout)
            status, recorded = await attempt.settle(policy, outcome)
            if not recorded:
                await self._refresh()
            if status == Status.WAITING_FOR_RUNNER:
                continue
            await fire_actions(self.rt, self.rec,
                               "onSuccess" if status == Status.FINISHED else "onFail", self)
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

    async def _begin_attempt(self) -> Attempt | None:
        """Record the next attempt RUNNING; None (and the instance read again) when the
        store says the instance moved on."""
        attempt = Attempt(self.rt, self.rec, self.host, publish=self._publish,
                          cancel_reason=self._cancel_reason)
        if not await attempt.begin():
            await self._refresh()
            return None
        return attempt

    async def _refresh(self) -> None:
        self._adopt(await self.rt.store.get_instance(self.rt.pipeline_id, self.rec.id))

    def _cancel_reason(self) -> str:
        if isinstance(self._control, Cancel):
            return self._control.reason
        return "marked finished" if isinstance(self._control, MarkFinished) else "canceled"

    # --- preconditions ---------------------------------------------------------------------

    async def _poll_precondition(self) -> None:
        check = PRECONDITIONS.get(self.rec.type)
        if check is None:
            await self._fail_now(f"headrace cannot check preconditions of type {self.rec.type}")
            return
        poll = PreconditionPoll(self.rt, check, PollPlan.of(self.rt, self.rec, self.rt.now()))
        attempt = await self._begin_attempt()
        if attempt is None:
            return
        outcome = await attempt.run(poll, None)
        now = self.rt.now()
        met = outcome.ok and poll.failure is None
        self.rt.telemetry.precondition_waited(self.rec, (now - poll.plan.started).total_seconds(),
                                              met)
        if met:
            ended = await attempt.end(Status.FINISHED, actual_end=now, error=None)
        else:
            error = poll.failure or outcome.error
            attempt.record.status = AttemptStatus.FAILED
            attempt.record.error = error
            ended = await attempt.end(Status.FAILED, actual_end=now, error=error)
        if not ended:
            await self._refresh()
        await fire_actions(self.rt, self.rec, "onSuccess" if met else "onFail", self)
