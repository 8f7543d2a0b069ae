"""Activation and the two ways to run: ``run`` (one window, then exit) and the engine loop.

Activation plans the window and inserts the instances that are not in the store yet (existing
ones keep their state), so running the same pipeline again resumes it: FINISHED instances are
not run again, and an attempt that was RUNNING when a process died is retried. One process at a
time runs a pipeline: it holds the pipeline's lease in the store and renews it; a lease left by
a dead process on this host is taken over at once, one from another host when it expires.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import anyio

from engine.actions.notify import Notifier, default_notifier
from engine.clock import Clock
from engine.definition import Definition, LoadOptions, load
from engine.definition.serialize import to_file_format
from engine.errors import DefinitionError, NotFound, RunError, StoreError
from engine.plan import (
    DEFAULT_MAX_INSTANCES,
    pipeline_is_ondemand,
    schedule_spec,
    schedule_window,
)
from engine.runtime.context import Limits, PipelineRuntime, process_owner
from engine.runtime.pipeline import PipelineSupervisor, instance_records
from engine.schedule import format_timestamp
from engine.store import (
    Action,
    InstanceRecord,
    PipelineRecord,
    PipelineState,
    Status,
    Store,
)

log = logging.getLogger("headrace.runtime")

LEASE_SECONDS = 30.0
#: exit code of ``headrace run`` when interrupted by SIGINT or SIGTERM (128 + SIGINT)
EXIT_INTERRUPTED = 130


def derived_pipeline_id(definition_path: str) -> str:
    """``df-`` + 16 hex digits of the SHA-256 of the definition file's absolute path, so the
    same file run again is the same pipeline (and resumes)."""
    digest = hashlib.sha256(str(Path(definition_path).resolve()).encode()).hexdigest()
    return f"df-{digest[:16]}"


def store_dir(store: Store) -> Path:
    """A directory beside the store for logs (SQLite: the file's directory)."""
    path = store.sqlite_path
    if path is not None:
        return Path(path).absolute().parent
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "headrace"


def _dead_owners_here(holder: str) -> list[str]:
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return []
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return [holder]
    except PermissionError:
        return []
    return []


class PipelineLease:
    """The right to run one pipeline, renewed in the background while held."""

    def __init__(self, store: Store, pipeline_id: str, owner: str, clock: Clock) -> None:
        self.store = store
        self.name = f"pipeline:{pipeline_id}"
        self.pipeline_id = pipeline_id
        self.owner = owner
        self.clock = clock

    async def acquire(self) -> None:
        now = self.clock.now()
        holder = await self.store.lease_holder(self.name)
        steal = _dead_owners_here(holder[0]) if holder else []
        current = await self.store.acquire_lease(
            self.name, self.owner, now + timedelta(seconds=LEASE_SECONDS), now,
            steal_from=steal)
        if current is not None:
            raise StoreError(f"pipeline {self.pipeline_id} is being run by {current}; wait for "
                             "it to finish or stop it")

    async def keep(self, on_lost: Callable[[str], Awaitable[None]]) -> None:
        """Renew the lease every third of its life. If another process took it over (this
        one stalled past the expiry), call ``on_lost(holder)`` and stop renewing: two
        processes must not run one pipeline."""
        while True:
            await anyio.sleep(LEASE_SECONDS / 3)
            now = self.clock.now()
            holder = await self.store.acquire_lease(self.name, self.owner,
                                                    now + timedelta(seconds=LEASE_SECONDS), now)
            if holder is not None:
                log.error("pipeline %s: the lease was taken over by %s; stopping here",
                          self.pipeline_id, holder)
                await on_lost(holder)
                return

    async def release(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.store.release_lease(self.name, self.owner)


@dataclass
class RunResult:
    pipeline_id: str
    instances: list[InstanceRecord]
    interrupted: bool = False
    window: tuple[datetime, datetime] | None = None
    events: list[str] = field(default_factory=list)
    #: where attempt logs go when the definition sets no pipelineLogUri
    log_root: Path | None = None
    #: instance id -> its attempts' log directories (a run of one object: its store is gone)
    attempt_logs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return not self.interrupted and all(
            i.status == Status.FINISHED for i in self.instances if i.category != "datanode")


async def ensure_pipeline(store: Store, pipeline_id: str, name: str,
                          definition: Definition) -> tuple[PipelineRecord, int]:
    """Create the pipeline if needed and store the definition as a new version when it
    changed. Returns the pipeline and the definition version to run."""
    record = await store.create_pipeline(name, unique_id=pipeline_id, pipeline_id=pipeline_id)
    if record.id != pipeline_id:
        raise StoreError(f"unique id {pipeline_id} already names pipeline {record.id}")
    body = to_file_format(definition)
    version = record.latest_version
    if version is None or await store.get_definition(pipeline_id, version) != body:
        version = await store.put_definition(pipeline_id, body)
    return await store.get_pipeline(pipeline_id), version


async def load_version(store: Store, pipeline_id: str, version: int,
                       overrides: list[str] | None = None) -> Definition:
    import json

    body = await store.get_definition(pipeline_id, version)
    definition, report = load(f"<pipeline {pipeline_id} version {version}>",
                              LoadOptions(parameter_values=list(overrides or [])),
                              strict=True, text=json.dumps(body))
    if report.errors:
        raise DefinitionError(report.errors, report.warnings)
    return definition


async def apply_actions(store: Store, pipeline_id: str,
                        actions: Sequence[tuple[Action, str]]) -> list[str]:
    """Carry out SetStatus actions (RERUN, MARK_FINISHED, TRY_CANCEL, PAUSE, RESUME) on a
    pipeline no process runs: applied to the store, for the next ``run`` or engine to carry
    on (a rerun makes a FINISHED pipeline SCHEDULED again). One summary line per action."""
    record = await store.get_pipeline(pipeline_id)
    version = record.active_version or record.latest_version
    if version is None:
        raise NotFound(f"pipeline {pipeline_id} has no definition")
    definition = await load_version(store, pipeline_id, version)
    rt = PipelineRuntime(pipeline_id, definition, version, store, Clock(), None, Limits(),
                         store_dir(store) / "logs")
    supervisor = PipelineSupervisor(rt, request_interval=None)
    await supervisor.load()
    return [await supervisor.apply(action, target) for action, target in actions]


async def activate(store: Store, pipeline_id: str, definition: Definition, version: int,
                   clock: Clock, *, start: datetime | None = None, end: datetime | None = None,
                   due_only: bool = False, max_instances: int = DEFAULT_MAX_INSTANCES,
                   ) -> tuple[datetime, datetime, datetime]:
    """Plan a window and add its new instances. Returns (activation, start, end).
    ``max_instances`` caps the plan (a backfill guard): a bigger window is refused.

    ``due_only`` (``run`` of an open-ended schedule without ``--end``: "up to now") keeps
    only instances eligible by now, and those that depend on them: a timeseries interval that
    has not ended yet is left for a later run, instead of keeping ``run`` waiting for it."""
    record = await store.get_pipeline(pipeline_id)
    now = clock.now()
    ondemand = pipeline_is_ondemand(definition)
    activation = record.first_activated_at or now
    if ondemand:
        activation = await _ondemand_activation(store, pipeline_id, now)
        window = (activation, activation + timedelta(seconds=1))
    else:
        own_start, own_end = schedule_window(definition, activation, now)
        window = (start or own_start, end or own_end)
    rt = PipelineRuntime(pipeline_id, definition, version, store, clock, None, Limits(),
                         Path("."))
    records = instance_records(rt, window[0], window[1], activation,
                               max_instances=max_instances) if window[1] > window[0] \
        else []
    unbounded = end is None and not ondemand and open_ended(definition, activation)
    if unbounded and due_only:
        records = _due(records, now)
    if start is not None and not ondemand:
        records += await _skipped_before(rt, start, activation, max_instances)
        await _unskip(store, pipeline_id, window[0], window[1])
    if records:
        await store.add_instances(records)
    engine_end = None if unbounded else window[1]
    await store.update_pipeline(pipeline_id, state=PipelineState.SCHEDULED, activated_at=now,
                                first_activated_at=record.first_activated_at or now,
                                active_version=version, window_start=window[0],
                                window_end=engine_end)
    return activation, window[0], window[1]


#: what an activation at a later start marks SKIPPED: instances that never started
_SKIPPABLE = (Status.WAITING_ON_DEPENDENCIES, Status.WAITING_FOR_RUNNER)


async def _skipped_before(rt: PipelineRuntime, start: datetime, activation: datetime,
                          max_instances: int) -> list[InstanceRecord]:
    """Re-activating at a later start skips the intervals before it (reference section 3.3):
    instances already planned there that never started become SKIPPED, and the intervals
    between the last planned one and ``start`` are added as SKIPPED, so ``list-runs`` shows
    the gap. A first activation has nothing to skip (it starts where it is told)."""
    store, pipeline_id = rt.store, rt.pipeline_id
    earlier = await store.list_instances(pipeline_id, scheduled_to=start)
    if not earlier:
        return []
    why = f"skipped: the pipeline was activated to start at {format_timestamp(start)}"
    for inst in earlier:
        if inst.status in _SKIPPABLE:
            await store.update_instance(pipeline_id, inst.id, expect=_SKIPPABLE,
                                        status=Status.SKIPPED, error=why)
    last_end = max(i.scheduled_end for i in earlier)
    if last_end >= start:
        return []
    gap = instance_records(rt, last_end, start, activation, max_instances=max_instances)
    for rec in gap:
        rec.status, rec.error = Status.SKIPPED, why
    return gap


async def _unskip(store: Store, pipeline_id: str, start: datetime, end: datetime) -> None:
    """A window asked for by its start runs again the intervals an earlier, later activation
    skipped in it: the user now asks for them."""
    for inst in await store.list_instances(pipeline_id, statuses=[Status.SKIPPED],
                                           scheduled_from=start, scheduled_to=end):
        await store.update_instance(pipeline_id, inst.id, expect=[Status.SKIPPED],
                                    status=Status.WAITING_ON_DEPENDENCIES, error=None)


def _due(records: list[InstanceRecord], now: datetime) -> list[InstanceRecord]:
    dropped = {r.id for r in records if r.eligible_at > now}
    changed = True
    while changed:  # and whatever waits on a dropped instance
        changed = False
        for r in records:
            if r.id not in dropped and (any(d in dropped for d in r.depends_on)
                                        or (r.node is not None and r.node in dropped)):
                dropped.add(r.id)
                changed = True
    return [r for r in records if r.id not in dropped]


async def _ondemand_activation(store: Store, pipeline_id: str, now: datetime) -> datetime:
    """The time of an ondemand run: the unfinished run's (resume), else now in whole seconds
    (instance ids have second resolution) and after every earlier run, so two invocations
    within one second are two runs, not one run seen twice."""
    existing = await store.list_instances(pipeline_id)
    pending = [i for i in existing if not i.terminal]
    if pending:
        return pending[0].scheduled_start
    activation = now.replace(microsecond=0)
    if existing:
        latest = max(i.scheduled_start for i in existing)
        activation = max(activation, latest + timedelta(seconds=1))
    return activation


def open_ended(definition: Definition, activation: datetime) -> bool:
    """True when some object's schedule has neither endDateTime nor occurrences."""
    for oid in definition.of_category("activity", "datanode"):
        for sid in definition.refs(oid, "schedule"):
            if schedule_spec(definition, sid).last_end(activation) is None:
                return True
    return False


async def run_window(store: Store, pipeline_id: str, definition: Definition, version: int, *,
                     clock: Clock | None = None, start: datetime | None = None,
                     end: datetime | None = None, notifier: Notifier | None = None,
                     max_concurrency: int = 32,
                     on_status: Callable[[InstanceRecord], None] | None = None,
                     handle_signals: bool = True, log_root: Path | None = None,
                     inline_io: bool = False,
                     on_start: Callable[[PipelineSupervisor], None] | None = None,
                     request_interval: float | None = 1.0,
                     max_instances: int = DEFAULT_MAX_INSTANCES,
                     worker_groups: Mapping[str, int] | None = None) -> RunResult:
    """Activate a window and run it in this process until no instance can progress.

    ``on_start`` receives the pipeline's supervisor before it runs (tests use it to act on
    the run); ``inline_io`` does log file work inline (virtual-time tests)."""
    clock = clock or Clock()
    lease = PipelineLease(store, pipeline_id, process_owner(), clock)
    await lease.acquire()
    try:
        activation, start, end = await activate(store, pipeline_id, definition, version, clock,
                                                start=start, end=end, due_only=True,
                                                max_instances=max_instances)
        run = _Run(store, pipeline_id, definition, version, clock, lease,
                   log_root or store_dir(store) / "logs", notifier, max_concurrency,
                   worker_groups, on_status, handle_signals, inline_io, request_interval)
        rt, interrupted = await run.supervise(activation, on_start=on_start)
        instances = await store.list_instances(pipeline_id, scheduled_from=start,
                                               scheduled_to=end if end > start else None)
        if pipeline_is_ondemand(definition):
            instances = [i for i in instances if i.scheduled_start == activation]
        if not interrupted and all(i.terminal for i in instances):
            await store.update_pipeline(pipeline_id, state=PipelineState.FINISHED)
        return RunResult(pipeline_id, instances, interrupted, (start, end), rt.events,
                         run.log_root)
    finally:
        await lease.release()


async def run_object(definition: Definition, pipeline_id: str, object_id: str, at: datetime,
                     *, with_upstream: bool = False, log_root: Path,
                     clock: Clock | None = None, max_concurrency: int = 32,
                     on_status: Callable[[InstanceRecord], None] | None = None,
                     handle_signals: bool = True,
                     max_instances: int = DEFAULT_MAX_INSTANCES,
                     worker_groups: Mapping[str, int] | None = None) -> RunResult:
    """Run the instance of ``object_id`` whose @scheduledStartTime is ``at`` now, for
    debugging (``headrace run DEF --object ID --at TS``, as ``airflow tasks test`` does).

    Its dependencies are ignored (none is waited for, not even its preconditions), unless
    ``with_upstream``: then every instance it waits for, transitively, runs first, from the
    schedule's start. Nothing is recorded in the pipeline's store: the run has a private
    in-memory one, so a later ``run`` of the pipeline is not changed by it; its attempt logs
    go to ``log_root`` and its alarms to ``log_root/alarms.jsonl`` (never to SNS)."""
    from engine.actions.notify import LogNotifier
    from engine.store import open_store

    clock = clock or Clock()
    async with open_store("sqlite://:memory:") as store:
        _, version = await ensure_pipeline(store, pipeline_id, object_id, definition)
        rt = PipelineRuntime(pipeline_id, definition, version, store, clock, None, Limits(),
                             log_root)
        start = at
        if with_upstream and not pipeline_is_ondemand(definition):
            start = min(at, schedule_window(definition, at, at)[0])
        planned = instance_records(rt, start, at + timedelta(seconds=1), at,
                                   max_instances=max_instances)
        records = _instances_of(planned, object_id, at, with_upstream)
        now = clock.now()
        for rec in records:
            rec.eligible_at = min(rec.eligible_at, now)  # run now, not at the interval's time
        await store.add_instances(records)
        await store.update_pipeline(pipeline_id, state=PipelineState.SCHEDULED,
                                    activated_at=now, first_activated_at=at,
                                    active_version=version, window_start=start,
                                    window_end=at)
        lease = PipelineLease(store, pipeline_id, process_owner(), clock)
        await lease.acquire()
        try:
            run = _Run(store, pipeline_id, definition, version, clock, lease, log_root,
                       LogNotifier(log_root / "alarms.jsonl"), max_concurrency, worker_groups,
                       on_status, handle_signals, False, None, fixed_log_root=True)
            rt, interrupted = await run.supervise(at)
            instances = await store.list_instances(pipeline_id)
        finally:
            await lease.release()
        # the store goes with this call: each attempt's log directory is what stays
        logs = {inst.id: [a.log_path for a in await store.list_attempts(pipeline_id, inst.id)
                          if a.log_path] for inst in instances}
    return RunResult(pipeline_id, instances, interrupted, (start, at), rt.events, log_root,
                     attempt_logs=logs)


def _instances_of(planned: list[InstanceRecord], object_id: str, at: datetime,
                  with_upstream: bool) -> list[InstanceRecord]:
    """The planned instances of ``object_id`` at ``at``, with no dependencies, or with every
    instance they wait for (transitively, dependencies kept)."""
    chosen = [r for r in planned if r.object_id == object_id and r.scheduled_start == at]
    if not chosen:
        times = sorted({r.scheduled_start for r in planned if r.object_id == object_id})
        near = ", ".join(format_timestamp(t) for t in times[-3:])
        raise RunError(f"{object_id} has no instance whose @scheduledStartTime is "
                       f"{format_timestamp(at)}" + (f" (it has {near}...)" if near else
                                                    " (it is not scheduled then)"),
                       transient=False)
    if not with_upstream:
        for rec in chosen:
            rec.depends_on = []
        return chosen
    by_id = {r.id: r for r in planned}
    keep: dict[str, InstanceRecord] = {}
    todo = list(chosen)
    while todo:
        rec = todo.pop()
        if rec.id in keep:
            continue
        keep[rec.id] = rec
        todo.extend(by_id[d] for d in rec.depends_on if d in by_id)  # preconditions too
    return sorted(keep.values(), key=lambda r: (r.scheduled_start, r.id))


@dataclass
class _Run:
    """One process's run of a pipeline's instances in ``store`` (the lease held), until no
    instance can progress: what ``run_window`` and ``run_object`` share."""

    store: Store
    pipeline_id: str
    definition: Definition
    version: int
    clock: Clock
    lease: PipelineLease
    log_root: Path
    notifier: Notifier | None
    max_concurrency: int
    worker_groups: Mapping[str, int] | None
    on_status: Callable[[InstanceRecord], None] | None
    handle_signals: bool
    inline_io: bool
    request_interval: float | None
    #: every attempt logs under ``log_root``, whatever ``pipelineLogUri`` says
    fixed_log_root: bool = False

    async def supervise(self, activation: datetime, *,
                        on_start: Callable[[PipelineSupervisor], None] | None = None,
                        ) -> tuple[PipelineRuntime, bool]:
        """Run until settled; returns the runtime and whether a signal interrupted it."""
        interrupted = False
        rt = PipelineRuntime(self.pipeline_id, self.definition, self.version, self.store,
                             self.clock, self.notifier or default_notifier(self.log_root),
                             Limits(self.max_concurrency, self.worker_groups), self.log_root,
                             owner=self.lease.owner, inline_io=self.inline_io)
        supervisor = PipelineSupervisor(rt, mode="run", on_status=self.on_status,
                                        activation=activation, default_log_root=self.log_root,
                                        request_interval=self.request_interval,
                                        fixed_log_root=self.fixed_log_root)
        if on_start is not None:
            on_start(supervisor)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.lease.keep, lambda _holder: supervisor.stop())
            if self.handle_signals:
                async def watch_signals() -> None:
                    nonlocal interrupted
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        async for _ in signals:
                            interrupted = True
                            await supervisor.stop()
                            return
                tg.start_soon(watch_signals)
            await supervisor.run()
            tg.cancel_scope.cancel()
        return rt, interrupted or rt.stopping

