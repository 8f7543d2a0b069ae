"""The work queue of worker processes: instances queued by a scheduler, claimed by workers
under a lease in database time, renewed, ended under the fencing token, reaped when lapsed.

An instance is *queued* while ``queued_at`` is set and no worker holds it (``worker_id`` is
NULL); ``queued_at`` is also the earliest time (database clock) it may be claimed, which is how
a precondition's wait between checks lives in the store instead of in a sleeping worker. A
claim sets the holder, the lease's expiry (``lease_until``, the database's ``now()`` plus the
lease) and increments ``lease_version``, the fencing token: every write a holder makes names the
token it was given, so a holder whose lease lapsed and was claimed again (a higher token) can
no longer change the instance. The end of an attempt clears the queue mark; the reaper clears
only the holder, which puts the instance straight back in the queue.

On PostgreSQL the claim is ``SELECT ... FOR UPDATE SKIP LOCKED`` (claimers never wait for each
other and never take the same row); on SQLite (one process) the same statement without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.store.queries import ids_in
from engine.store.records import (
    AttemptRecord,
    AttemptStatus,
    Fence,
    InstanceRecord,
    Status,
    to_text,
    utcnow,
)
from engine.store.schema import db_now
from engine.store.store import (
    _ATTEMPT_COLS,
    _INSTANCE_COLS,
    Store,
    _db_value,
    _instance,
)

DEFAULT_GROUP = "default"
_COLS = ", ".join(_INSTANCE_COLS)


@dataclass(frozen=True)
class Reaped:
    pipeline_id: str
    instance_id: str
    worker_id: str
    lease_version: int


@dataclass(frozen=True)
class Renewal:
    """What a heartbeat learned about one held instance."""

    pipeline_id: str
    instance_id: str
    lease_version: int
    cancel_reason: str | None


def _now(store: Store) -> str:
    return db_now(store.backend.dialect)


async def enqueue_many(store: Store, pipeline_id: str, ids: Sequence[str],
                       group: str | None) -> set[str]:
    """Queue instances that wait for a runner for the workers of ``group`` (None: the
    default group), claimable now (database time), unless a worker holds them: one statement
    for all of them (one per chunk of ids on SQLite). The ids that were queued."""
    queued: set[str] = set()
    for term, params in ids_in(store, ids):
        rows = await store.backend.query(
            f"UPDATE hr_instances SET queued_at = {_now(store)}, worker_group = ?, "
            "cancel_reason = NULL, updated_at = ? WHERE pipeline_id = ? AND "
            f"worker_id IS NULL AND status IN (?, ?) AND {term} RETURNING id",
            group or DEFAULT_GROUP, to_text(utcnow()), pipeline_id,
            Status.WAITING_FOR_RUNNER.value, Status.RUNNING.value, *params)
        queued.update(str(r[0]) for r in rows)
    return queued


async def withdraw(store: Store, pipeline_id: str, instance_id: str) -> bool:
    """Take a queued instance out of the queue, if no worker holds it (True) ."""
    _, counts = await store.backend.batch([(
        "UPDATE hr_instances SET queued_at = NULL WHERE pipeline_id = ? AND id = ? AND "
        "worker_id IS NULL AND queued_at IS NOT NULL", (pipeline_id, instance_id), False)])
    return counts[0] > 0


async def ask_cancel(store: Store, pipeline_id: str, instance_id: str, reason: str) -> bool:
    """Ask the holder of an instance to stop its attempt (it sees this on its next
    heartbeat, a task runner on its next ReportTaskProgress)."""
    _, counts = await store.backend.batch([(
        "UPDATE hr_instances SET cancel_reason = ? WHERE pipeline_id = ? AND id = ? AND "
        "worker_id IS NOT NULL", (reason, pipeline_id, instance_id), False)])
    return counts[0] > 0


async def claim(store: Store, worker_id: str, groups: Sequence[str], limit: int,
                lease_seconds: float) -> list[InstanceRecord]:
    """Up to ``limit`` queued instances of ``groups``, oldest first, now held by
    ``worker_id`` for ``lease_seconds`` (database time), each with its token incremented."""
    if limit <= 0 or not groups:
        return []
    marks = ", ".join("?" * len(groups))
    lock = " FOR UPDATE SKIP LOCKED" if store.backend.dialect == "postgresql" else ""
    now = _now(store)
    sql = (f"UPDATE hr_instances SET worker_id = ?, lease_until = {now} + ?, "
           "lease_version = lease_version + 1, cancel_reason = NULL "
           "WHERE (pipeline_id, id) IN (SELECT pipeline_id, id FROM hr_instances "
           f"WHERE queued_at IS NOT NULL AND worker_id IS NULL AND worker_group IN ({marks}) "
           f"AND queued_at <= {now} ORDER BY queued_at LIMIT ?{lock}) RETURNING {_COLS}")
    rows = await store.backend.query(sql, worker_id, lease_seconds, *groups, limit)
    return sorted(map(_instance, rows), key=lambda r: r.queued_at or 0.0)


async def claim_one(store: Store, worker_id: str, group: str,
                    lease_seconds: float) -> InstanceRecord | None:
    claimed = await claim(store, worker_id, [group], 1, lease_seconds)
    return claimed[0] if claimed else None


async def renew(store: Store, worker_id: str, lease_seconds: float) -> list[Renewal]:
    """Extend every lease ``worker_id`` still holds (one statement); an instance it thinks
    it holds and that is not in the answer was lost (reaped and perhaps claimed again).
    A lease that has already lapsed is not renewed, even when nobody reaped it yet."""
    now = _now(store)
    rows = await store.backend.query(
        f"UPDATE hr_instances SET lease_until = {now} + ? WHERE worker_id = ? AND "
        f"lease_until > {now} RETURNING pipeline_id, id, lease_version, cancel_reason",
        lease_seconds, worker_id)
    return [Renewal(str(r[0]), str(r[1]), int(r[2]), r[3]) for r in rows]


async def renew_one(store: Store, pipeline_id: str, instance_id: str, fence: Fence,
                    lease_seconds: float) -> Renewal | None:
    """Extend one lease under its token; None when it is no longer held so."""
    now = _now(store)
    where, params = fence.where()
    rows = await store.backend.query(
        f"UPDATE hr_instances SET lease_until = {now} + ? WHERE pipeline_id = ? AND "
        f"id = ? AND {where} AND lease_until > {now} "
        "RETURNING pipeline_id, id, lease_version, cancel_reason",
        lease_seconds, pipeline_id, instance_id, *params)
    return Renewal(str(rows[0][0]), str(rows[0][1]), int(rows[0][2]), rows[0][3]) \
        if rows else None


async def update_held(store: Store, pipeline_id: str, instance_id: str, fence: Fence,
                      **fields: Any) -> bool:
    """Change fields of an instance the holder of ``fence`` keeps holding."""
    where, params = fence.where()
    sets = ", ".join(f"{k} = ?" for k in fields)
    values = [_db_value(k, v) for k, v in fields.items()]
    _, counts = await store.backend.batch([(
        f"UPDATE hr_instances SET {sets} WHERE pipeline_id = ? AND id = ? AND {where}",
        (*values, pipeline_id, instance_id, *params), False)])
    return counts[0] > 0


async def holds(store: Store, pipeline_id: str, instance_id: str, fence: Fence) -> bool:
    """Whether ``fence`` still holds the instance with a lease that has not lapsed (checked
    before an output is made visible)."""
    where, params = fence.where()
    rows = await store.backend.query(
        f"SELECT 1 FROM hr_instances WHERE pipeline_id = ? AND id = ? AND {where} AND "
        f"lease_until > {_now(store)}", pipeline_id, instance_id, *params)
    return bool(rows)


async def release(store: Store, pipeline_id: str, instance_id: str, fence: Fence, *,
                  requeue_in: float | None = None, **fields: Any) -> bool:
    """Let go of a held instance under its token: out of the queue, or (``requeue_in``)
    back in it that many seconds from now (a precondition's next check, a hand-back)."""
    where, params = fence.where()
    sets = ["worker_id = NULL", "lease_until = NULL", "cancel_reason = NULL",
            "queued_at = NULL" if requeue_in is None else f"queued_at = {_now(store)} + ?"]
    values: list[Any] = [] if requeue_in is None else [requeue_in]
    for key, value in {"updated_at": utcnow(), **fields}.items():
        sets.append(f"{key} = ?")
        values.append(_db_value(key, value))
    _, counts = await store.backend.batch([(
        f"UPDATE hr_instances SET {', '.join(sets)} WHERE pipeline_id = ? AND id = ? AND "
        f"{where}", (*values, pipeline_id, instance_id, *params), False)])
    return counts[0] > 0


# --- a holder's attempt, one statement each end (PostgreSQL) -------------------------------

_INTEGER_ATTEMPT_COLS = frozenset({"number", "exit_code", "lease_version"})


def _sets(fields: dict[str, Any]) -> tuple[str, list[Any]]:
    return (", ".join(f"{k} = ?" for k in fields),
            [_db_value(k, v) for k, v in fields.items()])


async def start_held_attempt(store: Store, instance: InstanceRecord, attempt: AttemptRecord,
                             fence: Fence, **instance_fields: Any) -> bool:
    """:meth:`Store.start_attempt` for the holder of ``fence``, in one statement on
    PostgreSQL (the instance's compare-and-set and the attempt's insert in one data-modifying
    CTE: one round trip instead of BEGIN, two statements and COMMIT); the same conditions."""
    if store.backend.dialect != "postgresql":
        return await store.start_attempt(instance, attempt, fence, **instance_fields)
    if instance.status == Status.RUNNING:
        return False
    sets, values = _sets({"status": Status.RUNNING, "attempts": attempt.number,
                          "updated_at": utcnow(), **instance_fields})
    fenced, fence_params = fence.where()
    # typed: a parameter in a SELECT list has no column to take its type from
    marks = ", ".join("?::integer" if c in _INTEGER_ATTEMPT_COLS else "?::text"
                      for c in _ATTEMPT_COLS)
    rows = await store.backend.query(
        f"WITH held AS (UPDATE hr_instances SET {sets} WHERE pipeline_id = ? AND id = ? AND "
        f"status = ? AND attempts = ? AND {fenced} RETURNING 1) "
        f"INSERT INTO hr_attempts ({', '.join(_ATTEMPT_COLS)}) SELECT {marks} "
        "WHERE EXISTS (SELECT 1 FROM held) RETURNING 1",
        *values, instance.pipeline_id, instance.id, instance.status.value,
        attempt.number - 1, *fence_params,
        *(_db_value(c, getattr(attempt, c)) for c in _ATTEMPT_COLS))
    return bool(rows)


async def end_held_attempt(store: Store, attempt: AttemptRecord, instance_fields: dict[str, Any],
                           fence: Fence, *, expect: Sequence[Status] = (Status.RUNNING,),
                           requeue: bool = False) -> bool:
    """:meth:`Store.end_attempt` for the holder of ``fence`` (who lets go of the instance),
    in one statement on PostgreSQL: the attempt is ended only if the instance changed."""
    if store.backend.dialect != "postgresql":
        return await store.end_attempt(attempt, instance_fields, expect=expect, fence=fence,
                                       requeue=requeue)
    fields = {"updated_at": utcnow(), **instance_fields, "worker_id": None,
              "lease_until": None, "cancel_reason": None}
    if not requeue:
        fields["queued_at"] = None
    sets, values = _sets(fields)
    attempt_sets, attempt_values = _sets({
        "status": attempt.status, "ended_at": attempt.ended_at, "exit_code": attempt.exit_code,
        "error": attempt.error, "trace_id": attempt.trace_id, "log_path": attempt.log_path})
    fenced, fence_params = fence.where()
    statuses = [s.value for s in expect]
    rows = await store.backend.query(
        f"WITH held AS (UPDATE hr_instances SET {sets} WHERE pipeline_id = ? AND id = ? AND "
        f"status IN ({', '.join('?' * len(statuses))}) AND {fenced} RETURNING 1), "
        f"ended AS (UPDATE hr_attempts SET {attempt_sets} WHERE pipeline_id = ? AND "
        "instance_id = ? AND number = ? AND EXISTS (SELECT 1 FROM held) RETURNING 1) "
        "SELECT (SELECT count(*) FROM held), (SELECT count(*) FROM ended)",
        *values, attempt.pipeline_id, attempt.instance_id, *statuses, *fence_params,
        *attempt_values, attempt.pipeline_id, attempt.instance_id, attempt.number)
    return bool(rows[0][0])


async def reap(store: Store) -> list[Reaped]:
    """Every lease that lapsed goes back to the queue: the holder is cleared (the instance
    stays queued, so any worker of its group claims it next), a RUNNING instance waits for a
    runner again, and the attempt it was running becomes INTERRUPTED (it counts)."""
    now = _now(store)
    error = "the lease of its worker lapsed (worker gone or paused); retried"
    lock = " FOR UPDATE SKIP LOCKED" if store.backend.dialect == "postgresql" else ""
    async with store.backend.transaction() as tx:
        lapsed = await tx.fetch(
            "SELECT pipeline_id, id, worker_id, lease_version, category FROM hr_instances "
            f"WHERE worker_id IS NOT NULL AND lease_until <= {now}{lock}")
        rows = []
        for pipeline_id, instance_id, worker_id, token, category in lapsed:
            changed = await tx.execute(
                "UPDATE hr_instances SET worker_id = NULL, lease_until = NULL, "
                f"queued_at = COALESCE(queued_at, {now}), status = CASE WHEN status = ? AND "
                "category <> 'precondition' THEN ? ELSE status END, updated_at = ? WHERE "
                "pipeline_id = ? AND id = ? AND worker_id = ? AND lease_version = ?",
                Status.RUNNING.value, Status.WAITING_FOR_RUNNER.value, to_text(utcnow()),
                pipeline_id, instance_id, worker_id, token)
            if changed:
                rows.append((pipeline_id, instance_id, worker_id, token, category))
        reaped = [Reaped(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]
        activities = [(r[0], r[1]) for r in rows if r[4] != "precondition"]
        for pipeline_id, instance_id in activities:
            await tx.execute(
                "UPDATE hr_attempts SET status = ?, ended_at = ?, error = ? WHERE "
                "pipeline_id = ? AND instance_id = ? AND status = ?",
                AttemptStatus.INTERRUPTED.value, to_text(utcnow()), error, pipeline_id,
                instance_id, AttemptStatus.RUNNING.value)
    return reaped


async def outstanding(store: Store, pipeline_id: str) -> set[str]:
    """Ids of the pipeline's instances that are queued or held (a scheduler waits for these
    to come back)."""
    rows = await store.backend.query(
        "SELECT id FROM hr_instances WHERE pipeline_id = ? AND (queued_at IS NOT NULL OR "
        "worker_id IS NOT NULL)", pipeline_id)
    return {str(r[0]) for r in rows}


async def queue_depths(store: Store) -> dict[str, int]:
    """Queued, unclaimed instances per worker group."""
    rows = await store.backend.query(
        "SELECT worker_group, COUNT(*) FROM hr_instances WHERE queued_at IS NOT NULL AND "
        "worker_id IS NULL GROUP BY worker_group")
    return {str(r[0]): int(r[1]) for r in rows}


# --- the workers table ---------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerRow:
    worker_id: str
    host: str
    worker_groups: list[str]
    slots: int
    running: int
    state: str
    started_at: float
    last_heartbeat: float
    version: str | None
    kind: str


async def register_worker(store: Store, worker_id: str, host: str, groups: Iterable[str],
                          slots: int, version: str, kind: str = "worker") -> None:
    now = _now(store)
    async with store.backend.transaction() as tx:
        await tx.execute(
            "INSERT INTO hr_workers (worker_id, host, worker_groups, slots, running, state, "
            f"started_at, last_heartbeat, version, kind) VALUES (?, ?, ?, ?, 0, 'running', "
            f"{now}, {now}, ?, ?) ON CONFLICT (worker_id) DO UPDATE SET host = excluded.host, "
            "worker_groups = excluded.worker_groups, slots = excluded.slots, running = 0, "
            "state = 'running', started_at = excluded.started_at, "
            "last_heartbeat = excluded.last_heartbeat, version = excluded.version, "
            "kind = excluded.kind", worker_id, host, json.dumps(sorted(groups)), slots,
            version, kind)


async def worker_heartbeat(store: Store, worker_id: str, running: int,
                           state: str = "running") -> None:
    async with store.backend.transaction() as tx:
        await tx.execute(f"UPDATE hr_workers SET last_heartbeat = {_now(store)}, running = ?, "
                         "state = ? WHERE worker_id = ?", running, state, worker_id)


async def list_workers(store: Store) -> tuple[float, list[WorkerRow]]:
    """The database's time now, and every worker row, by id."""
    rows = await store.backend.query(
        f"SELECT {_now(store)}, worker_id, host, worker_groups, slots, running, state, "
        "started_at, last_heartbeat, version, kind FROM hr_workers ORDER BY worker_id")
    if not rows:
        now = await store.backend.query(f"SELECT {_now(store)}")
        return float(now[0][0]), []
    return float(rows[0][0]), [
        WorkerRow(str(r[1]), str(r[2]), list(json.loads(r[3])), int(r[4]), int(r[5]),
                  str(r[6]), float(r[7]), float(r[8]), r[9], str(r[10])) for r in rows]
