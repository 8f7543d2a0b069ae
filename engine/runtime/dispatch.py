"""Handing attempts to worker processes: the scheduler's half of the work queue.

When a pipeline's scheduler does not run an instance's work itself (``--scheduler-only``, or a
named worker group under ``headrace serve``), its instance actor does everything up to the
attempt as before (dependencies, time, limits, the gate), then queues the instance in the store
for the workers of its group and waits for it to come back: a worker claims it, runs one
attempt (or one check of a precondition), records the outcome, and lets go. The actor reads the
instance again and carries on (a retry after ``retryDelay``, onSuccess/onFail actions).

:class:`Dispatch` is per pipeline: which groups stay in this process, and one poll of the
store for all the actors' waits (one statement per interval, however many are queued, and one
more that reads back every instance that came back). The actors' writes are batched too
(:class:`~engine.runtime.batches.Batched`): instances that become ready together are marked
WAITING_FOR_RUNNER in one statement and queued in one more, so a scheduler with 10,000
instances due at once sends a few dozen statements, not tens of thousands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from engine.runtime.batches import Batched
from engine.store import queue
from engine.store.queries import get_instances, ids_in
from engine.store.records import AttemptStatus, InstanceRecord, Status, to_text, utcnow
from engine.store.store import Store

log = logging.getLogger("headrace.runtime")

#: which groups a scheduler runs itself: every group, only ``default``, or none
EXECUTE_ALL = "all"
EXECUTE_DEFAULT = "default"
EXECUTE_NONE = "none"


@dataclass
class _Wait:
    """One actor waiting for its instance to come back; the poll leaves the record here."""

    event: anyio.Event = field(default_factory=anyio.Event)
    back: InstanceRecord | None = None


class Dispatch:
    def __init__(self, store: Store, pipeline_id: str, execute: str,
                 poll_interval: float = 0.5) -> None:
        self.store = store
        self.pipeline_id = pipeline_id
        self.execute = execute
        self.poll_interval = poll_interval
        self._waiting: dict[str, _Wait] = {}
        self._wake = anyio.Event()
        self._ready: Batched[str, bool] = Batched(self._ready_many, False)
        self._enqueue: Batched[tuple[str, str | None], bool] = Batched(self._enqueue_many,
                                                                       False)

    def __repr__(self) -> str:
        return f"<Dispatch {self.pipeline_id} {self.execute} {len(self._waiting)} out>"

    def remote(self, group: str | None) -> bool:
        """Whether the work of ``group`` (None: the default group) goes to workers."""
        if self.execute == EXECUTE_ALL:
            return False
        if self.execute == EXECUTE_DEFAULT:
            return (group or queue.DEFAULT_GROUP) != queue.DEFAULT_GROUP
        return True

    async def hand_over(self, rec: InstanceRecord, group: str | None) -> InstanceRecord:
        """Queue ``rec`` for its group's workers (unless it is already out: a scheduler that
        took over), wait until it comes back, and return it as the store has it then."""
        out = rec.queued_at is not None or rec.worker_id is not None
        if not out and not await self._enqueue((rec.id, group)):
            return await self.store.get_instance(self.pipeline_id, rec.id)
        back = await self.wait_back(rec.id)
        return back or await self.store.get_instance(self.pipeline_id, rec.id)

    async def ready(self, rec: InstanceRecord) -> bool:
        """WAITING_ON_DEPENDENCIES -> WAITING_FOR_RUNNER for an instance whose work goes to
        workers (compare-and-set, batched with the other instances ready at the same time);
        False when the instance was no longer waiting on its dependencies."""
        return await self._ready(rec.id)

    async def wait_back(self, instance_id: str) -> InstanceRecord | None:
        """Wait until the instance is neither queued nor held; the record as the poll read it
        then (None when the poll could not read it)."""
        wait = self._waiting.get(instance_id)
        if wait is None:
            wait = self._waiting[instance_id] = _Wait()
        self._wake.set()
        try:
            await wait.event.wait()
        finally:
            if self._waiting.get(instance_id) is wait:
                del self._waiting[instance_id]
        return wait.back

    async def _ready_many(self, ids: Sequence[str]) -> dict[str, bool]:
        changed: dict[str, bool] = {}
        for term, params in ids_in(self.store, ids):
            rows = await self.store.backend.query(
                f"UPDATE hr_instances SET status = ?, updated_at = ? WHERE pipeline_id = ? AND "
                f"status = ? AND {term} RETURNING id", Status.WAITING_FOR_RUNNER.value,
                to_text(utcnow()), self.pipeline_id, Status.WAITING_ON_DEPENDENCIES.value,
                *params)
            changed.update((str(r[0]), True) for r in rows)
        return changed

    async def _enqueue_many(self, keys: Sequence[tuple[str, str | None]],
                            ) -> dict[tuple[str, str | None], bool]:
        groups: dict[str | None, list[str]] = {}
        for instance_id, group in keys:
            groups.setdefault(group, []).append(instance_id)
        queued: dict[tuple[str, str | None], bool] = {}
        for group, ids in groups.items():
            for instance_id in await queue.enqueue_many(self.store, self.pipeline_id, ids,
                                                        group):
                queued[(instance_id, group)] = True
        return queued

    async def take_back(self, rec: InstanceRecord, reason: str,
                        stop_waiting: Callable[[], bool] = lambda: False) -> InstanceRecord:
        """Stop the work of a handed-over instance (TRY_CANCEL, MARK_FINISHED, deactivation):
        out of the queue at once when no worker holds it (its running precondition attempt
        CANCELED), else the holder is asked to stop and this waits for it to let go (or for
        its lease to lapse and the instance to come back to the queue)."""
        while True:
            if await queue.withdraw(self.store, self.pipeline_id, rec.id):
                await self._cancel_open_attempts(rec.id, reason)
                break
            fresh = await self.store.get_instance(self.pipeline_id, rec.id)
            if fresh.queued_at is None and fresh.worker_id is None:
                return fresh
            await queue.ask_cancel(self.store, self.pipeline_id, rec.id, reason)
            if stop_waiting():
                return fresh
            with anyio.move_on_after(self.poll_interval * 4):
                await self.wait_back(rec.id)
        return await self.store.get_instance(self.pipeline_id, rec.id)

    @property
    def out(self) -> set[str]:
        """Ids of the instances this scheduler is waiting for."""
        return set(self._waiting)

    async def withdraw_all(self) -> int:
        """Take every queued, unclaimed instance of the pipeline out of the queue (the
        pipeline is being deactivated); held ones are left to finish."""
        _, counts = await self.store.backend.batch([(
            "UPDATE hr_instances SET queued_at = NULL WHERE pipeline_id = ? AND "
            "worker_id IS NULL AND queued_at IS NOT NULL", (self.pipeline_id,), False)])
        return counts[0]

    async def _cancel_open_attempts(self, instance_id: str, reason: str) -> None:
        async with self.store.backend.transaction() as tx:
            await tx.execute("UPDATE hr_attempts SET status = ?, ended_at = ?, error = ? WHERE "
                             "pipeline_id = ? AND instance_id = ? AND status = ?",
                             AttemptStatus.CANCELED.value, to_text(utcnow()), reason,
                             self.pipeline_id, instance_id, AttemptStatus.RUNNING.value)

    async def poll(self) -> None:
        """Wake the waits whose instance is back (neither queued nor held), each with its
        record: one query per interval while anything is out (none while nothing is), and one
        that reads back the instances that came back."""
        while True:
            if not self._waiting:
                self._wake = anyio.Event()
                await self._wake.wait()
            out = await queue.outstanding(self.store, self.pipeline_id)
            back = [iid for iid in self._waiting if iid not in out]
            records = await get_instances(self.store, self.pipeline_id, back) if back else {}
            for instance_id in back:
                wait = self._waiting.get(instance_id)
                if wait is not None:
                    wait.back = records.get(instance_id)
                    wait.event.set()
            await anyio.sleep(self.poll_interval)
