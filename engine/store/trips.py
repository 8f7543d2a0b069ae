"""Blocking calls in worker threads, several per trip (group commit).

A trip to a worker thread costs the event loop far more than a small SQLite statement or a
one-line file append takes in the thread. :class:`Trips` lets callers that arrive while a trip
is under way ride the next trip together: the first caller leads (takes every call queued so
far to a worker thread in one go), the others wait, and a caller that arrives during a trip is
made leader of the next one. There is no background task: leaders are ordinary callers.

Each call is its own unit: an exception in one is handed to its caller only. A caller that is
cancelled while its call is queued or running still waits for it to finish (like
``anyio.to_thread.run_sync``), so what the thread did is never in doubt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio

T = TypeVar("T")


@dataclass
class _Call(Generic[T]):
    fn: Callable[[], T]
    done: anyio.Event = field(default_factory=anyio.Event)
    lead: bool = False
    result: Any = None
    error: BaseException | None = None


#: Runs a trip's calls in the worker thread; the default runs them one after another, each
#: with its own try/except. A store wraps them in one transaction.
TripRunner = Callable[[Sequence[_Call[Any]]], None]


def run_each(calls: Sequence[_Call[Any]]) -> None:
    for call in calls:
        try:
            call.result = call.fn()
        except Exception as exc:
            call.error = exc


class Trips:
    def __init__(self, *, runner: TripRunner = run_each,
                 limiter: anyio.CapacityLimiter | None = None, inline: bool = False,
                 lock: anyio.Lock | None = None) -> None:
        self._runner = runner
        self._limiter = limiter
        self._inline = inline
        self._lock = lock
        self._queue: list[_Call[Any]] = []
        self._busy = False
        self.trips = 0
        self.calls = 0

    def __repr__(self) -> str:
        return f"<Trips {self.calls} calls in {self.trips} trips, {len(self._queue)} queued>"

    async def run(self, fn: Callable[[], T]) -> T:
        call: _Call[T] = _Call(fn)
        self._queue.append(call)
        with anyio.CancelScope(shield=True):
            if self._busy:
                await call.done.wait()
                if call.lead:
                    await self._lead()
            else:
                self._busy = True
                await self._lead()
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[no-any-return]

    async def _lead(self) -> None:
        """Take every queued call on one trip, wake their callers, hand on the lead."""
        group, self._queue = self._queue, []
        try:
            async with self._lock or nullcontext():
                if self._inline:
                    self._runner(group)
                else:
                    await anyio.to_thread.run_sync(self._runner, group, limiter=self._limiter)
        except BaseException as exc:  # the trip itself failed (a commit): every call did
            for call in group:
                call.error = exc
        self.trips += 1
        self.calls += len(group)
        for call in group:
            call.done.set()
        if self._queue:  # arrived during the trip: the first of them leads the next one
            nxt = self._queue[0]
            nxt.lead = True
            nxt.done.set()
        else:
            self._busy = False
