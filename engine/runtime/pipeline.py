"""PipelineSupervisor: one per activated pipeline; owns the actors of its instances.

It loads the pipeline's instances from the store, spawns an :class:`InstanceActor` for each one
that can still change, carries out user actions (RERUN, MARK_FINISHED, TRY_CANCEL, PAUSE,
RESUME: from this process, or read from the store's request table when another process asked),
and, for an open-ended schedule in the long-running engine, plans new instances as time passes.

In ``run`` mode it returns once no instance can progress: every instance is terminal, or waits
on a dependency that failed (``failureAndRerunMode: none`` keeps such instances waiting), or
belongs to a paused component.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from engine.definition.scope import render
from engine.errors import HeadraceError, NotFound
from engine.plan import DEFAULT_MAX_INSTANCES, plan
from engine.runtime.actor import Supervisor
from engine.runtime.context import PipelineRuntime
from engine.runtime.instance import Cancel, InstanceActor, MarkFinished
from engine.runtime.logs import log_root_from_uri
from engine.store.records import (
    BROKEN,
    Action,
    InstanceRecord,
    PipelineState,
    Status,
)

log = logging.getLogger("headrace.runtime")

_BUSY = frozenset({Status.WAITING_FOR_RUNNER, Status.RUNNING})


class ConflictError(HeadraceError):
    """A user action that the instance's current state does not allow."""


def instance_records(rt: PipelineRuntime, start: datetime, end: datetime,
                     activation: datetime, *, max_instances: int = DEFAULT_MAX_INSTANCES,
                     ) -> list[InstanceRecord]:
    """Plan a window and turn the plan into store records (status WAITING_ON_DEPENDENCIES)."""
    planned = plan(rt.definition, start, end, activation=activation,
                   pipeline_id=rt.pipeline_id, max_instances=max_instances)
    return [InstanceRecord(
        pipeline_id=rt.pipeline_id, id=p.id, object_id=p.object_id, type=p.type,
        category=p.category, scheduled_start=p.scheduled_start, scheduled_end=p.scheduled_end,
        eligible_at=p.eligible_at, node=p.node, depends_on=p.depends_on, version=rt.version,
        schedule_type=p.schedule_type) for p in planned.instances]


class PipelineSupervisor:
    def __init__(self, rt: PipelineRuntime, *, mode: str = "run",
                 on_status: Callable[[InstanceRecord], None] | None = None,
                 request_interval: float | None = 1.0,
                 window_end: datetime | None = None,
                 activation: datetime | None = None,
                 default_log_root: Path | None = None,
                 fixed_log_root: bool = False) -> None:
        self.rt = rt
        #: every attempt logs under ``default_log_root``, whatever ``pipelineLogUri`` says
        self.fixed_log_root = fixed_log_root
        self.mode = mode
        self.on_status = on_status
        self.request_interval = request_interval
        self.window_end = window_end
        self.activation = activation
        self.default_log_root = default_log_root or rt.log_root
        self.actors: dict[str, InstanceActor] = {}
        self.sup = Supervisor(f"pipeline {rt.pipeline_id}", on_error=self._child_failed)
        #: one event per waiter for "something changed" (several loops wait at once)
        self._waiters: list[anyio.Event] = []
        #: instances WAITING_FOR_RUNNER or RUNNING: while there are any, the run goes on
        self._busy: set[str] = set()
        #: instances not ended, as the status changes seen here say (a hint: the end of a
        #: finite schedule is confirmed by reading every instance once this is empty)
        self._open: set[str] = set()
        self._log_roots: dict[str, Path] = {}
        self._planned_until: datetime | None = None
        self.deactivating = False

    def __repr__(self) -> str:
        done = sum(1 for r in self.rt.instances.values() if r.terminal)
        return (f"<PipelineSupervisor {self.rt.pipeline_id} {self.mode} "
                f"{done}/{len(self.rt.instances)} instances ended; "
                f"{self.sup.describe_children()}>")

    # --- hooks used by the actors ----------------------------------------------------------

    def _notify(self) -> None:
        events, self._waiters = self._waiters, []
        for event in events:
            event.set()

    async def _wait_change(self) -> None:
        """Wait for the next status change, actor exit or action (register, then sleep: no
        checkpoint in between, so a change right after the caller's check is not missed)."""
        event = anyio.Event()
        self._waiters.append(event)
        await event.wait()

    def status_changed(self, rec: InstanceRecord) -> None:
        if rec.status in _BUSY:
            self._busy.add(rec.id)
        else:
            self._busy.discard(rec.id)
        if rec.terminal:
            self._open.discard(rec.id)
        else:
            self._open.add(rec.id)
        self._notify()
        if self.on_status is not None:
            self.on_status(rec)

    def log_root_for(self, rec: InstanceRecord) -> Path:
        root = self._log_roots.get(rec.object_id)
        if root is None and self.fixed_log_root:
            root = self._log_roots[rec.object_id] = self.default_log_root
        if root is None:
            uri = None
            try:
                values = self.rt.definition.field(rec.object_id, "pipelineLogUri")
                if values:
                    uri = render(self.rt.scope(rec).lookup("pipelineLogUri"))
            except (HeadraceError, KeyError) as exc:
                log.warning("%s: pipelineLogUri cannot be evaluated (%s); logging locally",
                            rec.object_id, exc)
            root = self._log_roots[rec.object_id] = log_root_from_uri(uri, self.default_log_root)
        return root

    async def cancel_preconditions_of(self, rec: InstanceRecord) -> None:
        """A node that cascade-failed: its precondition instances still pending are CANCELED."""
        for dep in rec.depends_on:
            pre = self.rt.instances.get(dep)
            if pre is not None and pre.node == rec.id and not pre.terminal:
                await self.control(dep, Cancel(f"cascade: {rec.id} failed"))

    async def _child_failed(self, name: str, exc: BaseException) -> None:
        log.error("instance actor %s crashed: %r", name, exc, exc_info=exc)
        rec = self.rt.instances.get(name)
        if rec is not None and not rec.terminal:
            with anyio.CancelScope(shield=True):
                await self.rt.store.update_instance(
                    self.rt.pipeline_id, name, status=Status.FAILED,
                    error=self.rt.definition.mask(f"internal error: {type(exc).__name__}: "
                                                  f"{exc}"),
                    actual_end=self.rt.now())
                rec.status = Status.FAILED
                self.rt.board.set(name, Status.FAILED)
                self.status_changed(rec)

    # --- running ---------------------------------------------------------------------------

    async def load(self) -> None:
        records = await self.rt.store.list_instances(self.rt.pipeline_id)
        self.rt.paused = await self.rt.store.paused(self.rt.pipeline_id)
        for rec in records:
            self.rt.instances[rec.id] = rec
            self.rt.board.set(rec.id, rec.status)
            if rec.status in _BUSY:
                self._busy.add(rec.id)

    @property
    def running(self) -> bool:
        return self.sup.running

    def spawn(self, rec: InstanceRecord) -> None:
        """Start an actor for ``rec`` (when this supervisor runs; otherwise the next process
        that runs the pipeline picks the instance up from the store)."""
        if rec.id in self.actors or rec.terminal or not self.running:
            return
        actor = InstanceActor(self.rt, rec, self)
        self.actors[rec.id] = actor
        self.sup.spawn(rec.id, actor.run, on_exit=lambda: self._actor_ended(rec.id))

    def _actor_ended(self, instance_id: str) -> None:
        self.actors.pop(instance_id, None)
        self._notify()

    async def run(self) -> None:
        await self.load()
        telemetry = self.rt.telemetry
        if telemetry.on:
            telemetry.pipeline_name = (await self.rt.store.get_pipeline(
                self.rt.pipeline_id)).name
        try:
            await self._run()
        finally:
            telemetry.close()

    async def _run(self) -> None:
        async with self.sup:
            for rec in sorted(self.rt.instances.values(),
                              key=lambda r: (r.eligible_at, r.scheduled_start, r.id)):
                self.spawn(rec)
            if self.request_interval is not None:
                self.sup.spawn("requests", self._poll_requests, restart="transient")
            if self.rt.dispatch is not None:
                self.sup.spawn("dispatch", self.rt.dispatch.poll, restart="transient")
            if self.mode == "engine" and self.window_end is None:
                self.sup.spawn("planner", self._plan_ahead, restart="transient")
            if self.mode == "run":
                await self._until_settled()
                self.sup.cancel()
            elif self.window_end is not None:
                await self._until_all_terminal()
                await self.rt.store.update_pipeline(self.rt.pipeline_id,
                                                    state=PipelineState.FINISHED)
                self.sup.cancel()

    async def stop(self) -> None:
        """Graceful shutdown: running attempts end INTERRUPTED and are retried on restart."""
        self.rt.stopping = True
        self.sup.cancel()

    async def deactivate(self, cancel_active: bool) -> None:
        """DeactivatePipeline: start no new attempt; cancel the running ones (CANCELED) or let
        them finish; then stop. Waiting instances stay in the store for re-activation."""
        self.deactivating = True
        self._notify()
        dispatch = self.rt.dispatch
        if dispatch is not None:  # nothing new for the workers; what they hold goes on
            await dispatch.withdraw_all()
        out = dispatch.out if dispatch is not None else set()
        if cancel_active:
            for actor in list(self.actors.values()):
                if actor.rec.status == Status.RUNNING or actor.rec.id in out:
                    await actor.send(Cancel("the pipeline was deactivated"))
        while any(a.rec.status == Status.RUNNING for a in self.actors.values()) or (
                dispatch is not None and dispatch.out):
            with anyio.move_on_after(1.0):  # a handed-over instance comes back by a poll
                await self._wait_change()
        await self.stop()

    async def gate(self) -> None:
        """Actors call this before starting an attempt: blocks while deactivating."""
        if self.deactivating:
            await anyio.sleep_forever()

    async def _until_settled(self) -> None:
        while not self.settled():
            await self._wait_change()

    async def _until_all_terminal(self) -> None:
        """Wait until every instance has ended: O(1) per change while some are open (10,000
        instances ending one by one would otherwise cost 10,000 scans of all of them)."""
        while True:
            self._open = {iid for iid, r in self.rt.instances.items() if not r.terminal}
            if not self._open:
                return
            while self._open:
                await self._wait_change()

    def settled(self) -> bool:
        """No instance can progress: each is terminal, paused, or waits (directly or through
        other waiting instances) on a failed dependency it will not cascade from. O(1) while
        some instance is waiting for a runner or running (most of a run), O(n) otherwise."""
        if self._busy:
            return False
        memo: dict[str, bool] = {}

        def stuck(iid: str) -> bool:
            if iid in memo:
                return memo[iid]
            memo[iid] = False  # cycle guard
            rec = self.rt.instances.get(iid)
            result = False
            if rec is not None and not rec.terminal:
                if rec.status != Status.WAITING_ON_DEPENDENCIES:
                    result = False  # a pause holds instances that have not started only
                elif rec.object_id in self.rt.paused:
                    result = True
                else:
                    deps = [d for d in (self.rt.instances.get(i) for i in self._waits(rec))
                            if d is not None]
                    broken = any(d.status in BROKEN for d in deps)
                    if broken and self._cascade(rec.object_id):
                        result = False  # it is about to cascade-fail: that is progress
                    else:
                        result = broken or any(stuck(d.id) for d in deps)
            memo[iid] = result
            return result

        # a terminal instance whose actor still runs is firing its onFail/onSuccess actions
        return all((rec.terminal and iid not in self.actors) or stuck(iid)
                   for iid, rec in self.rt.instances.items())

    def _waits(self, rec: InstanceRecord) -> list[str]:
        if rec.category == "precondition" and rec.node is not None:
            node = self.rt.instances.get(rec.node)
            return [d for d in node.depends_on if d != rec.id] if node else []
        return rec.depends_on

    # --- user actions ----------------------------------------------------------------------

    async def control(self, instance_id: str, message: Cancel | MarkFinished) -> None:
        actor = self.actors.get(instance_id)
        if actor is not None:
            await actor.send(message)
            return
        rec = self.rt.instances.get(instance_id)
        if rec is None:
            return
        if isinstance(message, MarkFinished):
            await self._set(rec, Status.FINISHED, error=None,
                            actual_end=rec.actual_end or self.rt.now())
        elif not rec.terminal:
            await self._set(rec, Status.CANCELED, error=message.reason)

    async def _set(self, rec: InstanceRecord, status: Status, **fields: Any) -> None:
        await self.rt.store.update_instance(self.rt.pipeline_id, rec.id, status=status,
                                            **fields)
        rec.apply(status, fields)
        self.rt.board.set(rec.id, status)
        self.status_changed(rec)

    async def apply(self, action: Action, target: str) -> str:
        """Carry out a SetStatus action on an instance id (RERUN, MARK_FINISHED, TRY_CANCEL)
        or a component id (PAUSE, RESUME). Returns a one-line summary."""
        rt = self.rt
        if action in (Action.PAUSE, Action.RESUME):
            if target not in rt.definition:
                raise NotFound(f"pipeline {rt.pipeline_id} has no component {target!r}")
            await rt.store.set_paused(rt.pipeline_id, target, action == Action.PAUSE)
            if action == Action.PAUSE:
                rt.paused.add(target)
            else:
                rt.paused.discard(target)
            for iid, inst in rt.instances.items():
                if inst.object_id == target:
                    rt.board.poke(iid)
            self._notify()
            return f"{action.value} {target}"
        rec = rt.instances.get(target)
        if rec is None:
            raise NotFound(f"pipeline {rt.pipeline_id} has no instance {target!r}")
        if action == Action.TRY_CANCEL:
            await self.control(target, Cancel("canceled by the user (TRY_CANCEL)"))
        elif action == Action.MARK_FINISHED:
            await self.control(target, MarkFinished())
        elif action == Action.RERUN:
            if not rec.terminal:
                raise ConflictError(f"instance {target} is {rec.status.value}: only an instance "
                                    "that has ended can be rerun (TRY_CANCEL it first)")
            await self.rerun(rec)
            await self._reopen()
        return f"{action.value} {target}"

    async def _reopen(self) -> None:
        """A rerun in a pipeline whose schedule ended (FINISHED) makes it SCHEDULED again, so
        that an engine runs it; the engine's supervisor sets FINISHED once every instance has
        ended again. A deactivated pipeline stays as it is (activating it runs the rerun)."""
        record = await self.rt.store.get_pipeline(self.rt.pipeline_id)
        if record.state == PipelineState.FINISHED:
            await self.rt.store.update_pipeline(self.rt.pipeline_id,
                                                state=PipelineState.SCHEDULED)

    async def rerun(self, rec: InstanceRecord) -> None:
        """Run a finished or failed instance again; with cascade, its cascade-failed
        consumers too (reference section 6.3)."""
        if rec.id in self.actors:
            return
        await self._reset(rec)
        if self._cascade(rec.object_id):
            for consumer in self._consumers(rec.id):
                if consumer.status == Status.CASCADE_FAILED:
                    await self.rerun(consumer)
        self.spawn(rec)

    async def _reset(self, rec: InstanceRecord) -> None:
        await self._set(rec, Status.WAITING_ON_DEPENDENCIES, error=None, actual_end=None,
                        retry_at=None, cascade_failed_on=None, attempt_base=rec.attempts,
                        late_fired=False)
        for dep in rec.depends_on:  # its preconditions are checked again
            pre = self.rt.instances.get(dep)
            if pre is not None and pre.node == rec.id and pre.terminal:
                await self._set(pre, Status.WAITING_ON_DEPENDENCIES, error=None,
                                actual_end=None, retry_at=None, attempt_base=pre.attempts)
                self.spawn(pre)

    def _consumers(self, instance_id: str) -> list[InstanceRecord]:
        return [r for r in self.rt.instances.values() if instance_id in r.depends_on]

    def _cascade(self, object_id: str) -> bool:
        value = self.rt.definition.first(object_id, "failureAndRerunMode")
        return isinstance(value, str) and value.strip().lower() == "cascade"

    async def _poll_requests(self) -> None:
        assert self.request_interval is not None
        while True:
            for request in await self.rt.store.take_requests(self.rt.pipeline_id):
                try:
                    summary = await self.apply(request.action, request.target)
                    log.info("carried out %s", summary)
                except HeadraceError as exc:
                    log.warning("request %s %s refused: %s", request.action.value,
                                request.target, exc)
            await anyio.sleep(self.request_interval)

    # --- planning ahead (engine mode, open-ended schedules) ---------------------------------

    async def _plan_ahead(self, lookahead: timedelta = timedelta(hours=1)) -> None:
        while True:
            now = self.rt.now()
            if self._planned_until is None and self.rt.instances:  # a restart: go on from
                self._planned_until = max(r.scheduled_start for r in self.rt.instances.values())
            start = self._planned_until or (self.activation or now)
            end = now + lookahead
            if end > start:
                records = instance_records(self.rt, start, end, self.activation or start)
                new = [r for r in records if r.id not in self.rt.instances]
                if new:
                    await self.rt.store.add_instances(new)
                    for rec in new:
                        self.rt.instances[rec.id] = rec
                        self.rt.board.set(rec.id, rec.status)
                        self.spawn(rec)
                self._planned_until = end
            await self.rt.clock.sleep(min(lookahead.total_seconds() / 2, 600))
