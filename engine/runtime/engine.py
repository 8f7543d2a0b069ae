"""The long-running engine: runs every activated pipeline of a store until stopped.

It polls the store for pipelines: a SCHEDULED one gets a :class:`PipelineSupervisor` (when this
process can take its lease), a DEACTIVATING one is wound down (running instances canceled or
allowed to finish, as ``cancelActive`` says) and becomes INACTIVE, and a deleted one is stopped.
SIGTERM stops everything gracefully: running attempts end INTERRUPTED and are retried when an
engine starts again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import anyio

from engine.actions.notify import Notifier, default_notifier
from engine.clock import Clock
from engine.errors import HeadraceError, NotFound
from engine.runtime.actor import Supervisor
from engine.runtime.collector import tune_for_many_actors
from engine.runtime.context import Limits, PipelineRuntime, process_owner
from engine.runtime.dispatch import EXECUTE_ALL, Dispatch
from engine.runtime.pipeline import PipelineSupervisor
from engine.runtime.runner import PipelineLease, apply_actions, load_version, store_dir
from engine.store import InstanceRecord, PipelineRecord, PipelineState, Store
from engine.store.queue import queue_depths, reap
from engine.telemetry import metrics

log = logging.getLogger("headrace.engine")


class Engine:
    def __init__(self, store: Store, *, clock: Clock | None = None, max_concurrency: int = 32,
                 poll_interval: float = 2.0, notifier: Notifier | None = None,
                 on_status: Callable[[InstanceRecord], None] | None = None,
                 worker_groups: Mapping[str, int] | None = None,
                 execute: str = EXECUTE_ALL, reap_interval: float = 2.0) -> None:
        self.store = store
        #: which work this process runs itself (the rest goes to workers through the store)
        self.execute = execute
        self.reap_interval = reap_interval
        self.clock = clock or Clock()
        self.limits = Limits(max_concurrency, worker_groups)
        self.poll_interval = poll_interval
        self.owner = process_owner()
        self.root = store_dir(store) / "logs"
        self.notifier = notifier or default_notifier(self.root)
        self.on_status = on_status
        self.pipelines: dict[str, PipelineSupervisor] = {}
        self.sup = Supervisor("engine", max_restarts=5, max_seconds=60)

    def __repr__(self) -> str:
        return f"<Engine {len(self.pipelines)} pipelines {self.sup!r}>"

    async def run(self) -> None:
        tune_for_many_actors()
        async with self.sup:
            if self.execute != EXECUTE_ALL:
                self.sup.spawn("reaper", self._reap, restart="permanent")
            while True:
                try:
                    await self._reconcile()
                except HeadraceError as exc:
                    log.error("engine: %s", exc)
                await anyio.sleep(self.poll_interval)

    async def stop(self) -> None:
        for supervisor in list(self.pipelines.values()):
            await supervisor.stop()
        self.sup.cancel()

    async def _reconcile(self) -> None:
        records = {p.id: p for p in await self.store.list_pipelines()}
        for pid, supervisor in list(self.pipelines.items()):
            record = records.get(pid)
            if record is None or record.state == PipelineState.INACTIVE:
                await supervisor.stop()
            elif record.state == PipelineState.DEACTIVATING and not supervisor.deactivating:
                self.sup.spawn(f"deactivate {pid}", self._deactivate, supervisor, record)
        waiting = await self.store.pipelines_with_requests()
        for pid in waiting - set(self.pipelines):
            record = records.get(pid)
            if record is not None and record.state == PipelineState.FINISHED:
                await self._apply_left_requests(record)
                records[pid] = await self.store.get_pipeline(pid)
        for pid, record in records.items():
            if record.state == PipelineState.SCHEDULED and pid not in self.pipelines:
                lease = PipelineLease(self.store, pid, self.owner, self.clock)
                try:
                    await lease.acquire()
                except HeadraceError:
                    continue  # another engine runs it
                await self._start(record, lease)
            elif record.state == PipelineState.DEACTIVATING and pid not in self.pipelines:
                await self.store.update_pipeline(pid, state=PipelineState.INACTIVE)

    async def _reap(self) -> None:
        """Put the instances of workers whose lease lapsed back in the queue (every scheduler
        and worker does this; the statement is idempotent)."""
        while True:
            try:
                for gone in await reap(self.store):
                    log.warning("%s: the lease of worker %s lapsed (lease version %d); "
                                "queued again", gone.instance_id, gone.worker_id,
                                gone.lease_version)
                if metrics.enabled():
                    metrics.record_queue_depths(await queue_depths(self.store))
            except HeadraceError as exc:
                log.error("reaper: %s", exc)
            await anyio.sleep(self.reap_interval)

    async def _apply_left_requests(self, record: PipelineRecord) -> None:
        """Requests sent to this pipeline's supervisor as its schedule ended (set-status saw
        it running): carried out on the store now, so a RERUN reopens the pipeline."""
        for request in await self.store.take_requests(record.id):
            try:
                [summary] = await apply_actions(self.store, record.id,
                                                [(request.action, request.target)])
                log.info("carried out %s", summary)
            except HeadraceError as exc:
                log.warning("request %s %s refused: %s", request.action.value,
                            request.target, exc)

    async def _start(self, record: PipelineRecord, lease: PipelineLease) -> None:
        assert record.active_version is not None
        try:
            definition = await load_version(self.store, record.id, record.active_version)
        except HeadraceError as exc:
            log.error("pipeline %s cannot start: %s", record.id, exc)
            await lease.release()
            return
        rt = PipelineRuntime(record.id, definition, record.active_version, self.store,
                             self.clock, self.notifier, self.limits, self.root,
                             owner=self.owner)
        if self.execute != EXECUTE_ALL:
            rt.dispatch = Dispatch(self.store, record.id, self.execute)
        supervisor = PipelineSupervisor(rt, mode="engine", on_status=self.on_status,
                                        window_end=record.window_end,
                                        activation=record.first_activated_at,
                                        default_log_root=Path(self.root))
        self.pipelines[record.id] = supervisor

        async def run() -> None:
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(lease.keep, lambda _holder: supervisor.stop())
                    await supervisor.run()
                    tg.cancel_scope.cancel()
            except NotFound:
                log.info("pipeline %s was deleted", record.id)
            finally:
                self.pipelines.pop(record.id, None)
                await lease.release()

        self.sup.spawn(f"pipeline {record.id}", run)

    async def _deactivate(self, supervisor: PipelineSupervisor, record: PipelineRecord) -> None:
        await supervisor.deactivate(record.cancel_active)
        await self.store.update_pipeline(record.id, state=PipelineState.INACTIVE)
