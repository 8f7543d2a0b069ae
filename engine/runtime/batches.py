"""Many actors' store calls of one kind, sent as one statement (group commit for actors).

A scheduler with 10,000 instances due at once has 10,000 actors that each want the same small
write (ready, queue) at about the same moment; one statement per actor is 10,000 round trips
through a pool of a few connections. :class:`Batched` lets the calls that arrive while one
batch is under way ride the next one together: the first caller leads (sends every key queued
so far in one call of ``run``), the others wait, and a caller that arrives during a batch is
made leader of the next. There is no background task and no timer, so a lone call costs what
it cost before, and under load the batches grow by themselves.

A caller cancelled while its key is queued or being sent still waits for the batch to end
(shielded, as :class:`~engine.store.trips.Trips` does), so what the store did is never in doubt:
an instance queued for workers is not later thought unqueued by the actor that asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import anyio

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


@dataclass
class _Pending(Generic[K, R]):
    key: K
    done: anyio.Event = field(default_factory=anyio.Event)
    lead: bool = False
    result: R | None = None
    error: BaseException | None = None


class Batched(Generic[K, R]):
    """``await batched(key)`` is ``(await run([key, ...]))[key]``, with the keys of callers
    that arrive together in one ``run``. ``run`` returns a result for every key it was given
    (a key missing from its answer gets ``missing``)."""

    def __init__(self, run: Callable[[Sequence[K]], Awaitable[dict[K, R]]], missing: R,
                 *, limit: int = 5_000) -> None:
        self._run = run
        self._missing = missing
        self._limit = limit
        self._queue: list[_Pending[K, R]] = []
        self._busy = False
        self.batches = 0
        self.calls = 0

    def __repr__(self) -> str:
        return f"<Batched {self.calls} calls in {self.batches} batches, {len(self._queue)} queued>"

    async def __call__(self, key: K) -> R:
        pending: _Pending[K, R] = _Pending(key)
        self._queue.append(pending)
        with anyio.CancelScope(shield=True):
            if self._busy:
                await pending.done.wait()
                if pending.lead:
                    await self._lead()
            else:
                self._busy = True
                await self._lead()
        if pending.error is not None:
            raise pending.error
        return cast(R, pending.result)

    async def _lead(self) -> None:
        group, self._queue = self._queue[:self._limit], self._queue[self._limit:]
        try:
            results = await self._run(list(dict.fromkeys(p.key for p in group)))
        except BaseException as exc:  # the batch failed: each of its callers sees why
            for pending in group:
                pending.error = exc
        else:
            for pending in group:
                pending.result = results.get(pending.key, self._missing)
        self.batches += 1
        self.calls += len(group)
        for pending in group:
            pending.done.set()
        if self._queue:  # arrived during the batch: the first of them leads the next one
            nxt = self._queue[0]
            nxt.lead = True
            nxt.done.set()
        else:
            self._busy = False
