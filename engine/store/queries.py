"""Look-ups for the API's object verbs: instances and attempts found by filters in SQL, a page
at a time, and fetched by id in one statement.

QueryObjects over 100,000 instances must not load them all: filters become ``WHERE`` terms,
pages are keyset pages (``id > marker ORDER BY id``, the primary key's order), so every page
costs the same however deep it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.store.records import AttemptRecord, InstanceRecord, to_text
from engine.store.store import _ATTEMPT_COLS, _INSTANCE_COLS, Store, _attempt, _instance

#: columns a time filter may name (instance columns; attempts map theirs onto these names)
TIME_COLUMNS = ("scheduled_start", "scheduled_end", "actual_start", "actual_end")
#: SQLite's default limit on bound parameters is 999 (older builds); stay well under it
_CHUNK = 500


@dataclass
class Filters:
    """AND of: column IN values, and lo <= time column <= hi (either bound optional).

    A column compared with NULL never matches, which is QueryObjects' "a selector on a field
    the object does not have fails"."""

    equals: dict[str, list[Any]] = field(default_factory=dict)
    ranges: dict[str, tuple[datetime | None, datetime | None]] = field(default_factory=dict)
    impossible: bool = False

    def where(self, prefix: str = "") -> tuple[list[str], list[Any]]:
        terms: list[str] = []
        params: list[Any] = []
        for column, values in self.equals.items():
            terms.append(f"{prefix}{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        for column, (lo, hi) in self.ranges.items():
            if lo is not None:
                terms.append(f"{prefix}{column} >= ?")
                params.append(to_text(lo))
            if hi is not None:
                terms.append(f"{prefix}{column} <= ?")
                params.append(to_text(hi))
        return terms, params


async def find_instance_ids(store: Store, pipeline_id: str, filters: Filters, *,
                            after: str | None, limit: int) -> list[str]:
    """Up to ``limit`` instance ids matching ``filters``, in id order, after ``after``."""
    if filters.impossible:
        return []
    terms, params = filters.where()
    where = ["pipeline_id = ?", *terms]
    if after is not None:
        where.append("id > ?")
        params.append(after)
    rows = await store.backend.query(
        f"SELECT id FROM hr_instances WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
        pipeline_id, *params, limit)
    return [str(r[0]) for r in rows]


#: attempt columns under the names the instance filters use
_ATTEMPT_AS = {"status": "a.status", "actual_start": "a.started_at", "actual_end": "a.ended_at",
               "scheduled_start": "i.scheduled_start", "scheduled_end": "i.scheduled_end",
               "object_id": "i.object_id", "instance_id": "a.instance_id"}


async def find_attempt_keys(store: Store, pipeline_id: str, filters: Filters, *,
                            after: tuple[str, int] | None,
                            limit: int) -> list[tuple[str, int]]:
    """Up to ``limit`` (instance id, attempt number) pairs matching ``filters`` (named as for
    instances: ``status`` is the attempt's, times ``actual_*`` the attempt's, ``scheduled_*``
    its instance's), in key order after ``after``."""
    if filters.impossible:
        return []
    renamed = Filters({_ATTEMPT_AS[k]: v for k, v in filters.equals.items()},
                      {_ATTEMPT_AS[k]: v for k, v in filters.ranges.items()})
    terms, params = renamed.where()
    where = ["a.pipeline_id = ?", *terms]
    if after is not None:
        where.append("(a.instance_id > ? OR (a.instance_id = ? AND a.number > ?))")
        params.extend([after[0], after[0], after[1]])
    rows = await store.backend.query(
        "SELECT a.instance_id, a.number FROM hr_attempts a JOIN hr_instances i "
        "ON i.pipeline_id = a.pipeline_id AND i.id = a.instance_id "
        f"WHERE {' AND '.join(where)} ORDER BY a.instance_id, a.number LIMIT ?",
        pipeline_id, *params, limit)
    return [(str(r[0]), int(r[1])) for r in rows]


def ids_in(store: Store, ids: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``id`` is one of ``ids``, as SQL with its parameters: one term on PostgreSQL (an
    array parameter, so the statement is the same for any count), a chunk of ``IN (?, ...)``
    terms for each ``_CHUNK`` ids on SQLite."""
    if store.backend.dialect == "postgresql":
        return [("id = ANY(?)", [list(ids)])]
    return [(f"id IN ({', '.join('?' * len(ids[i:i + _CHUNK]))})", list(ids[i:i + _CHUNK]))
            for i in range(0, len(ids), _CHUNK)]


async def _by_ids(store: Store, select: str, pipeline_id: str, ids: Sequence[str],
                  order: str = "") -> list[tuple[Any, ...]]:
    """The rows ``select`` (with ``{marks}`` where the ids' placeholders go) finds for
    ``ids``, a chunk of ids per statement."""
    rows: list[tuple[Any, ...]] = []
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start:start + _CHUNK]
        rows.extend(await store.backend.query(
            select.format(marks=", ".join("?" * len(chunk))) + order, pipeline_id, *chunk))
    return rows


async def get_instances(store: Store, pipeline_id: str,
                        ids: Sequence[str]) -> dict[str, InstanceRecord]:
    """The instances of ``ids`` that exist, by id, in as few statements as the ids allow."""
    rows = await _by_ids(store, f"SELECT {', '.join(_INSTANCE_COLS)} FROM hr_instances WHERE "
                         "pipeline_id = ? AND id IN ({marks})", pipeline_id, ids)
    return {rec.id: rec for rec in map(_instance, rows)}


async def get_statuses(store: Store, pipeline_id: str,
                       ids: Sequence[str]) -> dict[str, str]:
    """The status of each instance of ``ids`` that exists (no other column read)."""
    rows = await _by_ids(store, "SELECT id, status FROM hr_instances WHERE pipeline_id = ? "
                         "AND id IN ({marks})", pipeline_id, ids)
    return {str(r[0]): str(r[1]) for r in rows}


async def get_attempts(store: Store, pipeline_id: str,
                       instance_ids: Sequence[str]) -> dict[str, list[AttemptRecord]]:
    """The attempts of each instance in ``instance_ids``, oldest first."""
    rows = await _by_ids(store, f"SELECT {', '.join(_ATTEMPT_COLS)} FROM hr_attempts WHERE "
                         "pipeline_id = ? AND instance_id IN ({marks})", pipeline_id,
                         instance_ids, " ORDER BY instance_id, number")
    out: dict[str, list[AttemptRecord]] = {}
    for attempt in map(_attempt, rows):
        out.setdefault(attempt.instance_id, []).append(attempt)
    return out


async def instance_status_counts(store: Store, pipeline_id: str) -> dict[str, int]:
    """How many instances the pipeline has in each status (one grouped statement)."""
    rows = await store.backend.query("SELECT status, COUNT(*) FROM hr_instances WHERE "
                                     "pipeline_id = ? GROUP BY status ORDER BY status",
                                     pipeline_id)
    return {str(r[0]): int(r[1]) for r in rows}
