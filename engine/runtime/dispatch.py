"""Handing attempts to worker processes: the scheduler's half of the work queue.

When a pipeline's scheduler does not run an instance's work itself (``--scheduler-only``, or a
named worker group under ``headrace serve``), its instance actor does everything up to the
attempt as before (dependencies, time, limits, the gate), then queues the instance in the store
for the workers of its group and waits for it to come back: a worker claims it, runs one
attempt (or one check of a precondition), records the outcome, and lets go. The actor reads the
instance again and carries on (a retry after ``retryDelay``, onSuccess/onFail actions).

:class:`Dispatch` is per pipeline: which groups stay in this process, and one poll of the
store for all the actor's waits (one statement per interval, however many are queued).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from engine.store import queue
from engine.store.records import AttemptStatus, InstanceRecord, to_text, utcnow
from engine.store.store import Store

log = logging.getLogger("headrace.runtime")

#: which groups a scheduler runs itself: every group, only ``default``, or none
EXECUTE_ALL = "all"
EXECUTE_DEFAULT = "default"
EXECUTE_NONE = "none"


class Dispatch:
    def __init__(self, store: Store, pipeline_id: str, execute: str,
                 poll_interval: float = 0.5) -> None:
        self.store = store
        self.pipeline_id = pipeline_id
        self.execute = execute
        self.poll_interval = poll_interval
        self._waiting: dict[str, anyio.Event] = {}
        self._wake = anyio.Event()

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
        if not out and not await queue.enqueue(self.store, self.pipeline_id, rec.id, group):
            return await self.store.get_instance(self.pipeline_id, rec.id)
        await self.wait_back(rec.id)
        return await self.store.get_instance(self.pipeline_id, rec.id)

    async def wait_back(self, instance_id: str) -> None:
        event = self._waiting.get(instance_id)
        if event is None:
            event = self._waiting[instance_id] = anyio.Event()
        self._wake.set()
        try:
            await event.wait()
        finally:
            if self._waiting.get(instance_id) is event:
                del self._waiting[instance_id]

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
        """Wake the waits whose instance is back (neither queued nor held): one query per
        interval while anything is out, none while nothing is."""
        while True:
            if not self._waiting:
                self._wake = anyio.Event()
                await self._wake.wait()
            out = await queue.outstanding(self.store, self.pipeline_id)
            for instance_id, event in list(self._waiting.items()):
                if instance_id not in out:
                    event.set()
            await anyio.sleep(self.poll_interval)
