"""The change feed: one look at the store per tick for the whole server, fanned out to every
open console page.

Pages subscribe (server-sent events); the feed looks at the store only while someone listens,
once per :attr:`ChangeFeed.interval` whatever the number of pages: four small queries (the
pipelines' states, the instances changed since the last look, the instance count per
pipeline, the paused components). The engine may run in another process
(``--no-scheduler``, a shared PostgreSQL store), so the store is the source of truth rather
than this process's own actors. For the pipelines page, the rows of the pipelines that
changed are worked out once per look (four queries each) and sent to every such page.

Each subscriber has a bounded buffer; one that falls behind is dropped and told to reload
(``resync``), so a slow page never holds the feed or grows memory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine.service.overview import Overview
from engine.store import Store
from engine.store.records import from_text, to_text

log = logging.getLogger("headrace.console")

#: a row committed late with an earlier ``updated_at`` (another process's clock, a long
#: transaction) is still seen: each look reaches this far behind the newest change seen
OVERLAP = timedelta(seconds=5)
BUFFER = 64
#: pipelines whose row summary one look recomputes at most (the rest on the next changes)
MAX_SUMMARIES = 50


@dataclass(frozen=True)
class Change:
    """``kind``: ``instances`` (the new statuses of a pipeline's instances changed since the
    last look: ``{"changes": [{id, component, status, late, attempts}]}``), ``pipeline`` (its
    state),
    ``paused`` (the pipeline's paused components), ``planned`` (instances were added or
    removed: reload the grid), or ``summary`` (the pipeline's row of the pipelines page, sent
    to the pages that follow every pipeline)."""

    kind: str
    pipeline_id: str
    data: dict[str, Any]


#: what a page that follows every pipeline (the pipelines page) is sent
OVERVIEW_KINDS = frozenset({"summary", "pipeline"})
#: what a pipeline's own pages are sent
PIPELINE_KINDS = frozenset({"instances", "pipeline", "paused", "planned"})
#: more instance changes than this in one pipeline in one look are sent as one ``planned``
#: (reload the grid) rather than listed
BATCH_MAX = 500


@dataclass
class _Subscriber:
    pipeline_id: str | None
    send: MemoryObjectSendStream[Change]
    kinds: frozenset[str]


@dataclass
class FeedStats:
    """What the feed costs the store (the benchmark reads it)."""

    ticks: int = 0
    queries: int = 0
    published: int = 0
    #: pipelines-page rows worked out (four queries each)
    summaries: int = 0
    dropped_subscribers: int = 0


@dataclass
class ChangeFeed:
    store: Store
    interval: float = 1.0
    stats: FeedStats = field(default_factory=FeedStats)

    def __post_init__(self) -> None:
        self.overview = Overview(self.store)
        self._subscribers: list[_Subscriber] = []
        #: the server is stopping: every stream ends, so no page holds the shutdown
        self.closed = False
        self._listening = anyio.Event()
        self._states: dict[str, str] | None = None
        self._counts: dict[str, int] | None = None
        self._paused: dict[str, set[str]] = {}
        self._watermark: str | None = None
        #: (pipeline, instance) -> (status, updated_at) of changes inside the overlap window
        self._recent: dict[tuple[str, str], tuple[str, str]] = {}

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @contextlib.contextmanager
    def subscribe(self, pipeline_id: str | None = None,
                  ) -> Iterator[MemoryObjectReceiveStream[Change]]:
        """Changes of one pipeline (:data:`PIPELINE_KINDS`), or the rows of every pipeline
        (``None``: :data:`OVERVIEW_KINDS`), until the block ends. The stream ends early when
        this subscriber fell behind: the page should reload."""
        send, receive = anyio.create_memory_object_stream[Change](BUFFER)
        subscriber = _Subscriber(pipeline_id, send,
                                 OVERVIEW_KINDS if pipeline_id is None else PIPELINE_KINDS)
        if self.closed:
            send.close()
        else:
            self._subscribers.append(subscriber)
            self._listening.set()
        try:
            yield receive
        finally:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(subscriber)
            send.close()
            receive.close()

    def close(self) -> None:
        """End every subscriber's stream (and refuse new ones): the server is stopping."""
        self.closed = True
        for subscriber in self._subscribers:
            subscriber.send.close()
        self._subscribers.clear()

    async def run(self) -> None:
        """Look at the store once per interval while anyone listens; until cancelled (then
        its cost is logged: what the benchmark reads)."""
        try:
            await self._run()
        finally:
            stats = self.stats
            log.info("console feed: %d looks, %d store queries, %d events published, %d "
                     "subscribers dropped", stats.ticks, stats.queries, stats.published,
                     stats.dropped_subscribers)

    async def _run(self) -> None:
        while True:
            if not self._subscribers:
                self._listening = anyio.Event()
                await self._listening.wait()
            try:
                changes = await self.poll()
            except Exception as exc:  # the store is down for a moment: try again next tick
                log.warning("console feed: the store did not answer: %s", type(exc).__name__)
                changes = []
            self.publish(changes)
            await anyio.sleep(self.interval)

    async def poll(self) -> list[Change]:
        """One look: what changed since the last one (the first look only takes note)."""
        backend = self.store.backend
        self.stats.ticks += 1
        self.stats.queries += 4
        states = {pid: state for pid, state in await backend.query(
            "SELECT id, state FROM hr_pipelines")}
        counts = {pid: int(n) for pid, n in await backend.query(
            "SELECT pipeline_id, COUNT(*) FROM hr_instances GROUP BY pipeline_id")}
        paused: dict[str, set[str]] = {}
        for pid, oid in await backend.query("SELECT pipeline_id, object_id FROM hr_paused"):
            paused.setdefault(pid, set()).add(oid)
        first = self._states is None
        if first:  # take note of where the store is; report what changes from here on
            top = await backend.query("SELECT MAX(updated_at) FROM hr_instances")
            self._watermark = (top[0][0] if top else None) or ""
            rows: list[tuple[Any, ...]] = []
        else:
            newest_seen = from_text(self._watermark) if self._watermark else None
            since = to_text(newest_seen - OVERLAP) if newest_seen else ""
            rows = await backend.query(
                "SELECT pipeline_id, id, object_id, status, late_fired, attempts, updated_at "
                "FROM hr_instances WHERE updated_at >= ?", since)
        changes: list[Change] = []
        if not first:
            assert self._counts is not None and self._states is not None
            for pid, state in states.items():
                if self._states.get(pid) != state:
                    changes.append(Change("pipeline", pid, {"state": state}))
            for pid in set(paused) | set(self._paused):
                if paused.get(pid, set()) != self._paused.get(pid, set()):
                    changes.append(Change("paused", pid,
                                          {"components": sorted(paused.get(pid, set()))}))
            for pid in set(counts) | set(self._counts):
                if counts.get(pid, 0) != self._counts.get(pid, 0):
                    changes.append(Change("planned", pid, {"instances": counts.get(pid, 0)}))
        recent: dict[tuple[str, str], tuple[str, str]] = {}
        newest = self._watermark
        for pid, iid, oid, status, late, attempts, updated in rows:
            key = (pid, iid)
            recent[key] = (status, updated)
            if newest is None or updated > newest:
                newest = updated
            if self._recent.get(key) == (status, updated):
                continue
            changes.append(Change("instance", pid, {
                "id": iid, "component": oid, "status": status, "late": bool(late),
                "attempts": int(attempts or 0)}))
        changes = _batched(changes)
        self._recent = recent
        self._watermark = newest
        self._states, self._counts, self._paused = states, counts, paused
        if any(sub.pipeline_id is None for sub in self._subscribers):
            # the pipelines page's rows: worked out here once for every page that shows them
            touched = sorted({c.pipeline_id for c in changes if c.kind in ("instances",
                                                                            "planned")})
            for pid in touched[:MAX_SUMMARIES]:
                self.stats.queries += 4
                self.stats.summaries += 1
                changes.append(Change("summary", pid, await self.overview.summary(pid)))
        return changes

    def publish(self, changes: list[Change]) -> None:
        """Hand ``changes`` to every subscriber that follows them; drop one that is full."""
        if not changes:
            return
        for subscriber in list(self._subscribers):
            for change in changes:
                if subscriber.pipeline_id not in (None, change.pipeline_id) or (
                        change.kind not in subscriber.kinds):
                    continue
                try:
                    subscriber.send.send_nowait(change)
                    self.stats.published += 1
                except anyio.WouldBlock:  # fell behind: drop it; the page reloads
                    self.stats.dropped_subscribers += 1
                    subscriber.send.close()
                    self._subscribers.remove(subscriber)
                    break
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    with contextlib.suppress(ValueError):
                        self._subscribers.remove(subscriber)
                    break


def _batched(changes: list[Change]) -> list[Change]:
    """One look's instance changes of a pipeline as one ``instances`` event (one slot of a
    page's buffer however many there are); more than :data:`BATCH_MAX` as one ``planned``
    (reload the grid) instead of a message larger than the grid itself."""
    batches: dict[str, list[dict[str, Any]]] = {}
    rest: list[Change] = []
    for change in changes:
        if change.kind == "instance":
            batches.setdefault(change.pipeline_id, []).append(change.data)
        else:
            rest.append(change)
    for pid, items in batches.items():
        if len(items) > BATCH_MAX:
            if not any(c.kind == "planned" and c.pipeline_id == pid for c in rest):
                rest.append(Change("planned", pid, {"changed": len(items)}))
        else:
            rest.append(Change("instances", pid, {"changes": items}))
    return rest
