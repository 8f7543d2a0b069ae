"""The in-memory view of a pipeline's instance statuses, with change notification.

The store is the truth; the board mirrors what this process wrote or read, so instance actors
can wait for their dependencies without polling the database. ``wait_for`` registers one event
on the instances a waiter cares about; ``set`` wakes exactly the waiters of that instance.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio

from engine.store.records import Status


class StatusBoard:
    def __init__(self) -> None:
        self._status: dict[str, Status] = {}
        self._watchers: dict[str, list[anyio.Event]] = {}

    def __repr__(self) -> str:
        waiting = sum(len(v) for v in self._watchers.values())
        return f"<StatusBoard {len(self._status)} instances, {waiting} waiters>"

    def get(self, instance_id: str) -> Status | None:
        return self._status.get(instance_id)

    def set(self, instance_id: str, status: Status) -> None:
        if self._status.get(instance_id) == status:
            return
        self._status[instance_id] = status
        for event in self._watchers.pop(instance_id, ()):
            event.set()

    def poke(self, instance_id: str) -> None:
        """Wake the waiters of an instance without a status change (pause, resume)."""
        for event in self._watchers.pop(instance_id, ()):
            event.set()

    async def wait_for(self, instance_ids: Iterable[str]) -> None:
        """Return when any of ``instance_ids`` changes status (or is poked)."""
        event = anyio.Event()
        ids = list(instance_ids)
        for iid in ids:
            self._watchers.setdefault(iid, []).append(event)
        try:
            await event.wait()
        finally:
            for iid in ids:
                watchers = self._watchers.get(iid)
                if watchers and event in watchers:
                    watchers.remove(event)
                    if not watchers:
                        del self._watchers[iid]
