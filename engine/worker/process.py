"""``headrace worker``: a process that claims the queued work of its worker groups from a shared
PostgreSQL store and runs it, as a Task Runner did for AWS Data Pipeline.

The worker owns one task group: its heartbeat, its claim loop, and one task per claimed
instance (at most ``slots`` at once). The heartbeat renews every lease it holds every third of
the lease (one statement), and learns from the answer which claims it lost (its lease lapsed
while it was paused or cut off, and the reaper put the instance back) and which its scheduler
asked to stop: those attempts are cancelled here (their cleanup shielded: uploads aborted,
transactions rolled back), and a lost one writes nothing more. When the store cannot be reached
for a whole lease, every claim counts as lost. The heartbeat also reaps lapsed leases of other
workers and updates this worker's row in ``hr_workers``.

SIGTERM (or SIGINT) drains: no new claim, running attempts get ``drain_seconds`` to finish,
the rest are handed back (INTERRUPTED, queued again for another worker); exit code 130 as
``headrace run``. A second signal hands back at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from engine.clock import Clock
from engine.errors import HeadraceError, StoreError
from engine.runtime.collector import tune_for_many_actors
from engine.runtime.context import Limits, PipelineRuntime
from engine.runtime.crashpoints import crash_point
from engine.runtime.pipeline import PipelineSupervisor
from engine.runtime.runner import EXIT_INTERRUPTED, load_version, store_dir
from engine.store import Store, queue
from engine.store.backend import SqliteBackend
from engine.store.records import Fence, InstanceRecord
from engine.telemetry import metrics
from engine.telemetry.setup import headrace_version
from engine.worker.claimed import Claim, hand_back, run_claimed

log = logging.getLogger("headrace.worker")

DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_SLOTS = 4


@dataclass
class WorkerOptions:
    groups: Sequence[str] = (queue.DEFAULT_GROUP,)
    slots: int = DEFAULT_SLOTS
    worker_id: str | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    #: seconds between claims while the queue is empty
    poll_interval: float = 0.5
    #: SIGTERM: how long running attempts may go on before they are handed back
    drain_seconds: float = 30.0
    #: added to this process's wall clock (tests of a host whose clock is wrong); leases
    #: never read it
    clock_offset: float = 0.0
    log_root: Path | None = None


def refuse_sqlite(store: Store, command: str = "headrace worker") -> None:
    """Workers and a scheduler-only engine need a store several processes share."""
    if isinstance(store.backend, SqliteBackend):
        raise StoreError(
            f"{command} needs a store that several processes share: {store.url} is a "
            "SQLite store, which serves one process (its engine runs all the work itself). "
            "Use a PostgreSQL store (--store postgresql://user@host/db) for the engine and "
            "its workers, or run `headrace engine` alone on the SQLite store")


@dataclass
class _Loaded:
    rt: PipelineRuntime
    host: PipelineSupervisor


@dataclass
class Worker:
    store: Store
    options: WorkerOptions = field(default_factory=WorkerOptions)

    def __post_init__(self) -> None:
        opts = self.options
        self.id = opts.worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.clock = Clock(datetime.now(UTC) + timedelta(seconds=opts.clock_offset))
        self.limits = Limits(max(1, opts.slots))
        self.log_root = opts.log_root or store_dir(self.store) / "logs"
        self.claims: dict[tuple[str, str], Claim] = {}
        self.draining = False
        self._wake = anyio.Event()
        self._loaded: dict[tuple[str, int], _Loaded] = {}
        self.renewals = 0
        self.claim_seconds: list[float] = []

    def __repr__(self) -> str:
        return (f"<Worker {self.id} {len(self.claims)}/{self.options.slots} "
                f"{'draining' if self.draining else 'running'}>")

    # --- the process -----------------------------------------------------------------------

    async def run(self, *, handle_signals: bool = True) -> int:
        refuse_sqlite(self.store)
        tune_for_many_actors()
        await queue.register_worker(self.store, self.id, socket.gethostname(),
                                    self.options.groups, self.options.slots,
                                    headrace_version())
        log.info("worker %s claiming for %s (%d slots, lease %g s)", self.id,
                 ", ".join(self.options.groups), self.options.slots,
                 self.options.lease_seconds)
        interrupted = False
        async with anyio.create_task_group() as tg:
            if handle_signals:
                tg.start_soon(self._watch_signals)
            tg.start_soon(self._heartbeat)
            await self._claim_loop(tg)
            interrupted = True
            await self._drain()
            tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await queue.worker_heartbeat(self.store, self.id, 0, "stopped")
        return EXIT_INTERRUPTED if interrupted else 0

    def stop(self) -> None:
        """Begin draining (what SIGTERM does)."""
        if self.draining:  # a second request: hand back at once
            self.options.drain_seconds = 0.0
        self.draining = True
        self._wake.set()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.warning("worker %s: %s: draining (running attempts get %g s, then are "
                            "handed back)", self.id, signal.Signals(signum).name,
                            self.options.drain_seconds)
                self.stop()

    async def _claim_loop(self, tg: TaskGroup) -> None:
        """Claim up to the free slots in one statement. While the queue is busy, wait
        until a quarter of the slots are free before claiming again (one claim for several
        instances instead of one each); while it is empty or nothing runs here, claim as
        soon as one slot is free."""
        opts = self.options
        batch = max(1, opts.slots // 4)
        queue_empty = True
        while not self.draining:
            free = opts.slots - len(self.claims)
            claimed: list[InstanceRecord] = []
            if free >= (1 if queue_empty or not self.claims else batch):
                started = anyio.current_time()
                try:
                    claimed = await queue.claim(self.store, self.id, opts.groups, free,
                                                opts.lease_seconds)
                except HeadraceError as exc:
                    log.error("worker %s: cannot claim: %s; trying again", self.id, exc)
                else:
                    took = anyio.current_time() - started
                    self.claim_seconds.append(took)
                    metrics.record_claim(opts.groups, took, len(claimed))
                    queue_empty = len(claimed) < free
            if claimed:
                crash_point("worker-claimed")  # dies holding claims, before any heartbeat
            for rec in claimed:
                claim = Claim(rec, Fence(self.id, rec.lease_version))
                self.claims[claim.key] = claim
                tg.start_soon(self._run, claim)
            with anyio.move_on_after(opts.poll_interval):
                await self._wake.wait()
            if not self.draining:
                self._wake = anyio.Event()

    async def _until_idle(self, seconds: float) -> None:
        """Wait up to ``seconds`` for every claim to end (each end sets ``_wake``)."""
        with anyio.move_on_after(seconds):
            while self.claims:
                self._wake = anyio.Event()
                await self._wake.wait()

    async def _drain(self) -> None:
        await self._until_idle(self.options.drain_seconds)
        left = list(self.claims.values())
        if not left:
            return
        log.warning("worker %s: handing back %d running attempts", self.id, len(left))
        for loaded in self._loaded.values():
            loaded.rt.stopping = True  # attempts end INTERRUPTED and go back to the queue
        for claim in left:
            claim.handing_back = True
            claim.scope.cancel()
        await self._until_idle(30)

    # --- one claim -------------------------------------------------------------------------

    async def _run(self, claim: Claim) -> None:
        try:
            with claim.scope:
                loaded = await self._load(claim.rec)
                await run_claimed(loaded.rt, loaded.host, claim)
            if claim.scope.cancelled_caught and claim.attempt is None and not claim.lost:
                with anyio.CancelScope(shield=True):
                    await hand_back(loaded.rt, claim)
        except HeadraceError as exc:
            log.error("worker %s: %s: %s", self.id, claim.rec.id, exc)
            with anyio.CancelScope(shield=True):
                await self._give_up(claim, str(exc))
        finally:
            self.claims.pop(claim.key, None)
            self._wake.set()

    async def _give_up(self, claim: Claim, error: str) -> None:
        """An error outside the attempt (the definition cannot be read, the store failed
        mid-way): hand the instance back so that it is not stuck until the lease lapses."""
        try:
            await queue.release(self.store, claim.rec.pipeline_id, claim.rec.id, claim.fence,
                                requeue_in=self.options.lease_seconds)
        except HeadraceError as exc:
            log.error("worker %s: %s not handed back (%s); its lease will lapse", self.id,
                      claim.rec.id, exc)

    async def _load(self, rec: InstanceRecord) -> _Loaded:
        """The pipeline's runtime for the definition version the instance was planned from
        (kept for later claims), with the instance's data node as the store has it now."""
        loaded = self._loaded.get((rec.pipeline_id, rec.version)) if rec.version else None
        if loaded is None:
            pipeline = await self.store.get_pipeline(rec.pipeline_id)
            version = rec.version or pipeline.active_version or pipeline.latest_version or 1
            definition = await load_version(self.store, rec.pipeline_id, version)
            rt = PipelineRuntime(rec.pipeline_id, definition, version, self.store, self.clock,
                                 None, self.limits, self.log_root, owner=self.id)
            host = PipelineSupervisor(rt, request_interval=None,
                                      activation=pipeline.first_activated_at,
                                      default_log_root=self.log_root)
            loaded = self._loaded[(rec.pipeline_id, version)] = _Loaded(rt, host)
        if rec.node is not None:
            loaded.rt.instances[rec.node] = await self.store.get_instance(rec.pipeline_id,
                                                                          rec.node)
        return loaded

    # --- heartbeat -------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        lease = self.options.lease_seconds
        last_ok = anyio.current_time()
        while True:
            await anyio.sleep(lease / 3)
            before = dict(self.claims)  # claims made during the renewal are not judged by it
            try:
                renewals = await queue.renew(self.store, self.id, lease)
            except HeadraceError as exc:
                cut_off = anyio.current_time() - last_ok
                log.error("worker %s: lease renewal failed (%s), %.0f s since the last one",
                          self.id, exc, cut_off)
                if cut_off >= lease:
                    for claim in list(self.claims.values()):
                        self._lost(claim)
                continue
            last_ok = anyio.current_time()
            self.renewals += len(renewals)
            metrics.record_renewals(len(renewals))
            self._apply(renewals, before)
            try:
                await queue.worker_heartbeat(self.store, self.id, len(self.claims),
                                             "draining" if self.draining else "running")
                for gone in await queue.reap(self.store):
                    log.warning("%s: the lease of worker %s lapsed (lease version %d); "
                                "queued again", gone.instance_id, gone.worker_id,
                                gone.lease_version)
            except HeadraceError as exc:
                log.error("worker %s: heartbeat: %s", self.id, exc)

    def _apply(self, renewals: list[queue.Renewal],
               judged: dict[tuple[str, str], Claim]) -> None:
        held = {(r.pipeline_id, r.instance_id): r for r in renewals}
        for key, claim in judged.items():
            if self.claims.get(key) is not claim or claim.ending:
                continue  # ended, or ending: its last write took it out of the renewal
            renewal = held.get(key)
            if renewal is None or renewal.lease_version != claim.fence.token:
                self._lost(claim)
            elif renewal.cancel_reason and not claim.scope.cancel_called:
                log.info("worker %s: %s: stopping its attempt: %s", self.id, claim.rec.id,
                         renewal.cancel_reason)
                claim.cancel(renewal.cancel_reason)

    def _lost(self, claim: Claim) -> None:
        if claim.lost:
            return
        log.error("worker %s lost the lease on %s (lease version %d): another worker may hold "
                  "it now; canceling its attempt here", self.id, claim.rec.id,
                  claim.fence.token)
        claim.lose()
