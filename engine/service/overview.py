"""Read models the console shows and the CLI and API have no verb for: every pipeline at a
glance (state, schedule, counts, the latest intervals' health) and one pipeline's instance
grid (intervals by component). Each is a few queries for the whole page, never one per cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.store import PipelineRecord, Status, Store
from engine.store.queries import instance_status_counts
from engine.store.records import BROKEN, from_text, to_text

#: how bad a status is for an interval's summary colour: the worst instance decides
SEVERITY: dict[str, int] = {
    Status.FINISHED: 0, Status.SKIPPED: 1, Status.WAITING_ON_DEPENDENCIES: 2,
    Status.WAITING_FOR_RUNNER: 3, Status.RUNNING: 4, Status.CANCELED: 5,
    Status.CASCADE_FAILED: 6, Status.TIMEDOUT: 7, Status.FAILED: 8,
}
#: intervals shown per pipeline on the pipelines page
RECENT_INTERVALS = 12
#: intervals a grid shows unless asked for more (the latest ones)
DEFAULT_GRID_INTERVALS = 200
MAX_GRID_INTERVALS = 2000


@dataclass
class IntervalHealth:
    start: datetime
    #: the worst status of the interval's instances
    status: str
    late: bool


@dataclass
class PipelineOverview:
    record: PipelineRecord
    counts: dict[str, int]
    schedule: str
    recent: list[IntervalHealth]
    late: int

    @property
    def failing(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in BROKEN)


@dataclass
class Cell:
    instance_id: str
    status: str
    late: bool
    attempts: int
    error: str | None
    #: for a waiting instance: the instances it waits on that have not finished
    waiting_on: list[str] = field(default_factory=list)


@dataclass
class GridRow:
    component: str
    category: str
    type: str
    paused: bool
    #: by the interval's start as the store writes it (:func:`engine.store.records.to_text`)
    cells: dict[str, Cell]


@dataclass
class Grid:
    intervals: list[datetime]
    rows: list[GridRow]
    #: instances of the pipeline in all (the grid may show only the latest intervals)
    total: int
    shown: int
    #: the intervals' starts as the store writes them: the keys of each row's cells
    keys: list[str] = field(default_factory=list)


def _worse(a: str, b: str) -> str:
    return a if SEVERITY.get(a, 0) >= SEVERITY.get(b, 0) else b


def describe_schedule(body: dict[str, Any]) -> str:
    """One line about the definition's schedule: ``every 1 day from ...`` or ``on demand``."""
    objects = body.get("objects", [])
    for obj in objects:
        if obj.get("id") == "Default" and str(obj.get("scheduleType", "")).lower() == "ondemand":
            return "on demand"
    schedules = [o for o in objects if o.get("type") == "Schedule"]
    if not schedules:
        return "no schedule"
    first = schedules[0]
    text = f"every {first.get('period', '?')}"
    start = first.get("startDateTime") or first.get("startAt")
    if start:
        text += f" from {start}"
    if first.get("endDateTime"):
        text += f" to {first['endDateTime']}"
    elif first.get("occurrences"):
        text += f", {first['occurrences']} times"
    if len(schedules) > 1:
        text += f" (+{len(schedules) - 1} more)"
    return text


class Overview:
    """The console's read models against one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def pipelines(self) -> list[PipelineOverview]:
        records = await self.store.list_pipelines()
        counts: dict[str, dict[str, int]] = {}
        rows = await self.store.backend.query(
            "SELECT pipeline_id, status, COUNT(*) FROM hr_instances GROUP BY pipeline_id, "
            "status")
        for pid, status, n in rows:
            counts.setdefault(pid, {})[status] = int(n)
        late_rows = await self.store.backend.query(
            "SELECT pipeline_id, COUNT(*) FROM hr_instances WHERE late_fired <> 0 "
            "GROUP BY pipeline_id")
        late = {pid: int(n) for pid, n in late_rows}
        out = []
        for record in records:
            version = record.active_version or record.latest_version
            body = await self.store.get_definition(record.id, version) if version else {}
            out.append(PipelineOverview(record, counts.get(record.id, {}),
                                        describe_schedule(body),
                                        await self._recent(record.id), late.get(record.id, 0)))
        return out

    async def summary(self, pipeline_id: str) -> dict[str, Any]:
        """A pipeline's row of the pipelines page as JSON (counts, late, failing, the latest
        intervals): what a live page needs to redraw the row (four queries)."""
        counts = await instance_status_counts(self.store, pipeline_id)
        late = await self.store.backend.query(
            "SELECT COUNT(*) FROM hr_instances WHERE pipeline_id = ? AND late_fired <> 0",
            pipeline_id)
        return {"counts": counts, "late": int(late[0][0]) if late else 0,
                "failing": sum(counts.get(s.value, 0) for s in BROKEN),
                "recent": [{"start": h.start.strftime("%Y-%m-%dT%H:%M:%S"),
                            "status": h.status, "late": h.late}
                           for h in await self._recent(pipeline_id)]}

    async def _recent(self, pipeline_id: str) -> list[IntervalHealth]:
        starts = await self._latest_starts(pipeline_id, RECENT_INTERVALS)
        if not starts:
            return []
        rows = await self.store.backend.query(
            "SELECT scheduled_start, status, late_fired FROM hr_instances "
            "WHERE pipeline_id = ? AND scheduled_start >= ?", pipeline_id, to_text(starts[0]))
        health: dict[str, IntervalHealth] = {}
        for start, status, late in rows:
            seen = health.get(start)
            if seen is None:
                health[start] = IntervalHealth(from_text(start) or starts[0], status,
                                               bool(late))
            else:
                seen.status = _worse(status, seen.status)
                seen.late = seen.late or bool(late)
        return [health[k] for k in sorted(health)]

    async def _latest_starts(self, pipeline_id: str, limit: int) -> list[datetime]:
        rows = await self.store.backend.query(
            "SELECT DISTINCT scheduled_start FROM hr_instances WHERE pipeline_id = ? "
            "ORDER BY scheduled_start DESC LIMIT ?", pipeline_id, limit)
        return sorted(t for (text,) in rows if (t := from_text(text)) is not None)

    async def grid(self, pipeline_id: str, body: dict[str, Any],
                   intervals: int = DEFAULT_GRID_INTERVALS) -> Grid:
        """The latest ``intervals`` scheduled intervals by component. Rows follow the
        definition's order (activities first, then data nodes, then preconditions)."""
        intervals = max(1, min(intervals, MAX_GRID_INTERVALS))
        starts = await self._latest_starts(pipeline_id, intervals)
        total_rows = await self.store.backend.query(
            "SELECT COUNT(*) FROM hr_instances WHERE pipeline_id = ?", pipeline_id)
        total = int(total_rows[0][0]) if total_rows else 0
        paused = await self.store.paused(pipeline_id)
        rows: dict[str, GridRow] = {}
        if not starts:
            return Grid([], [], total, 0, [])
        found = await self.store.backend.query(
            "SELECT id, object_id, category, type, scheduled_start, status, late_fired, "
            "attempts, error, depends_on FROM hr_instances WHERE pipeline_id = ? AND "
            "scheduled_start >= ?", pipeline_id, to_text(starts[0]))
        statuses = {r[0]: r[5] for r in found}
        waits: dict[str, list[str]] = {}
        for iid, oid, category, type_name, start, status, late, attempts, error, deps in found:
            row = rows.get(oid)
            if row is None:
                row = rows[oid] = GridRow(oid, category or "", type_name or "", oid in paused,
                                          {})
            cell = Cell(iid, status, bool(late), int(attempts or 0), error)
            if status == Status.WAITING_ON_DEPENDENCIES and deps:
                waits[iid] = json.loads(deps)
            row.cells[start] = cell
        unknown = sorted({d for ds in waits.values() for d in ds if d not in statuses})
        if unknown:
            for iid, status in (await self.store.backend.query(
                    "SELECT id, status FROM hr_instances WHERE pipeline_id = ? AND id IN "
                    f"({', '.join('?' * len(unknown))})", pipeline_id, *unknown)):
                statuses[iid] = status
        for row in rows.values():
            for cell in row.cells.values():
                cell.waiting_on = [d for d in waits.get(cell.instance_id, [])
                                   if statuses.get(d, Status.FINISHED) != Status.FINISHED]
        order = {o.get("id"): i for i, o in enumerate(body.get("objects", []))}
        rank = {"activity": 0, "datanode": 1, "precondition": 2}
        ordered = sorted(rows.values(), key=lambda r: (rank.get(r.category, 3),
                                                       order.get(r.component, 1 << 30),
                                                       r.component))
        return Grid(starts, ordered, total, len(found), [to_text(t) or "" for t in starts])
