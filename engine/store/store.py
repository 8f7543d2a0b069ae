"""The state store: one schema, one implementation, two SQL backends.

Every state change the engine makes is a committed transaction here before the engine acts on
it, so a restarted engine resumes from the store, never from memory. Status changes are
compare-and-set (``expect=``), which is also how two engine processes sharing a PostgreSQL store
avoid running the same instance twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from engine.errors import NotFound, StoreError
from engine.store.backend import Backend, PostgresBackend, SqliteBackend, Step, Transaction
from engine.store.records import (
    Action,
    AttemptRecord,
    AttemptStatus,
    Fence,
    InstanceRecord,
    PipelineRecord,
    PipelineState,
    RequestRecord,
    Status,
    from_text,
    to_text,
    utcnow,
)
from engine.store.schema import migrate
from engine.store.sealing import (
    KEY_FILE_VARIABLE,
    Sealer,
    each_masked,
    load_sealer,
    seal,
    unseal,
)

_PIPELINE_COLS = ("id", "name", "unique_id", "description", "state", "created_at",
                  "latest_version", "active_version", "activated_at", "first_activated_at",
                  "window_start", "window_end", "tags", "cancel_active")
_INSTANCE_COLS = ("pipeline_id", "id", "object_id", "type", "category", "scheduled_start",
                  "scheduled_end", "eligible_at", "status", "attempts", "actual_start",
                  "actual_end", "error", "node", "depends_on", "version", "late_fired",
                  "cascade_failed_on", "lease_owner", "lease_expires", "retry_at",
                  "updated_at", "attempt_base", "schedule_type", "trace_id", "span_id",
                  "worker_group", "queued_at", "worker_id", "lease_until", "lease_version",
                  "cancel_reason", "checks")
_ATTEMPT_COLS = ("pipeline_id", "instance_id", "number", "status", "started_at", "ended_at",
                 "exit_code", "error", "trace_id", "log_path", "host", "worker_id",
                 "lease_version")
_TIME_FIELDS = {"created_at", "activated_at", "first_activated_at", "window_start",
                "window_end", "scheduled_start", "scheduled_end", "eligible_at", "actual_start",
                "actual_end", "lease_expires", "retry_at", "updated_at", "started_at",
                "ended_at"}


def _db_value(name: str, value: Any) -> Any:
    if name in _TIME_FIELDS:
        return to_text(value)
    if name in ("depends_on", "tags"):
        return json.dumps(value)
    if name in ("late_fired", "cancel_active"):
        return int(bool(value))
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value  # enums
    return value


def _pipeline(row: tuple[Any, ...]) -> PipelineRecord:
    d = dict(zip(_PIPELINE_COLS, row, strict=True))
    return PipelineRecord(
        id=d["id"], name=d["name"], unique_id=d["unique_id"],
        description=d["description"] or "", state=PipelineState(d["state"]),
        created_at=from_text(d["created_at"]), latest_version=d["latest_version"],
        active_version=d["active_version"], activated_at=from_text(d["activated_at"]),
        first_activated_at=from_text(d["first_activated_at"]),
        window_start=from_text(d["window_start"]), window_end=from_text(d["window_end"]),
        tags=json.loads(d["tags"]) if d["tags"] else {},
        cancel_active=bool(d["cancel_active"]) if d["cancel_active"] is not None else True)


def _instance(row: tuple[Any, ...]) -> InstanceRecord:
    d = dict(zip(_INSTANCE_COLS, row, strict=True))
    return InstanceRecord(
        pipeline_id=d["pipeline_id"], id=d["id"], object_id=d["object_id"], type=d["type"],
        category=d["category"], scheduled_start=from_text(d["scheduled_start"]),  # type: ignore[arg-type]
        scheduled_end=from_text(d["scheduled_end"]),  # type: ignore[arg-type]
        eligible_at=from_text(d["eligible_at"]),  # type: ignore[arg-type]
        status=Status(d["status"]), attempts=d["attempts"],
        actual_start=from_text(d["actual_start"]), actual_end=from_text(d["actual_end"]),
        error=d["error"], node=d["node"],
        depends_on=json.loads(d["depends_on"]) if d["depends_on"] else [],
        version=d["version"], late_fired=bool(d["late_fired"]),
        cascade_failed_on=d["cascade_failed_on"], lease_owner=d["lease_owner"],
        lease_expires=from_text(d["lease_expires"]), retry_at=from_text(d["retry_at"]),
        updated_at=from_text(d["updated_at"]), attempt_base=d["attempt_base"] or 0,
        schedule_type=d["schedule_type"] or "cron", trace_id=d["trace_id"],
        span_id=d["span_id"], worker_group=d["worker_group"], queued_at=d["queued_at"],
        worker_id=d["worker_id"], lease_until=d["lease_until"],
        lease_version=d["lease_version"] or 0, cancel_reason=d["cancel_reason"],
        checks=d["checks"] or 0)


def _attempt(row: tuple[Any, ...]) -> AttemptRecord:
    d = dict(zip(_ATTEMPT_COLS, row, strict=True))
    return AttemptRecord(
        pipeline_id=d["pipeline_id"], instance_id=d["instance_id"], number=d["number"],
        status=AttemptStatus(d["status"]), started_at=from_text(d["started_at"]),
        ended_at=from_text(d["ended_at"]), exit_code=d["exit_code"], error=d["error"],
        trace_id=d["trace_id"], log_path=d["log_path"], host=d["host"],
        worker_id=d["worker_id"], lease_version=d["lease_version"])



#: PostgreSQL: the database's clock plus an interval, as the text ``to_text`` writes (UTC, to
#: the microsecond; such texts order as the times they name), for ``hr_leases.expires_at``
_PG_LEASE_TIME = ("to_char((clock_timestamp() + {}) AT TIME ZONE 'UTC', "
                  "'YYYY-MM-DD\"T\"HH24:MI:SS.US')")


class Store:
    """Pipelines, definitions, instances and attempts in SQLite or PostgreSQL."""

    def __init__(self, backend: Backend, url: str, *, create: bool = True,
                 sealer: Sealer | None = None) -> None:
        self.backend = backend
        self.url = url
        #: encrypts masked values of definitions at rest (None: kept as given)
        self.sealer = sealer
        #: a SQLite store that does not exist yet is made (with its folder) when opened;
        #: otherwise opening it is an error naming the path (a mistyped --store)
        self.create = create
        #: set by :meth:`open` when it made a new SQLite file
        self.created = False
        #: set by :meth:`open`: the schema version the store had (None: it was new)
        self.found_version: int | None = None
        self._has_copy_tables = False

    def __repr__(self) -> str:
        return f"<Store {self.backend!r}>"

    @property
    def sqlite_path(self) -> str | None:
        """The file of a SQLite store (None for PostgreSQL or an in-memory store)."""
        if isinstance(self.backend, SqliteBackend) and self.backend.path != ":memory:":
            return self.backend.path
        return None

    async def open(self) -> Store:
        path = self.sqlite_path
        if path is not None and not await anyio.Path(path).exists():
            if not self.create:
                raise StoreError(_no_store(self.url, path))
            self.created = True
        await self.backend.open()
        try:
            async with self.backend.transaction() as tx:
                self.found_version = await migrate(tx, self.backend.dialect, self.url)
        except BaseException:
            await self.backend.close()
            raise
        return self

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self) -> Store:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- pipelines -------------------------------------------------------------------------

    async def create_pipeline(self, name: str, unique_id: str, description: str = "",
                              pipeline_id: str | None = None,
                              tags: dict[str, str] | None = None) -> PipelineRecord:
        """Create a pipeline, or return the one with the same ``unique_id`` (idempotent, as
        CreatePipeline is)."""
        async with self.backend.transaction() as tx:
            rows = await tx.fetch(f"SELECT {', '.join(_PIPELINE_COLS)} FROM hr_pipelines "
                                  "WHERE unique_id = ?", unique_id)
            if rows:
                return _pipeline(rows[0])
            record = PipelineRecord(id=pipeline_id or new_pipeline_id(), name=name,
                                    unique_id=unique_id, description=description,
                                    created_at=utcnow(), tags=tags or {})
            await tx.execute(
                f"INSERT INTO hr_pipelines ({', '.join(_PIPELINE_COLS)}) VALUES "
                f"({', '.join('?' * len(_PIPELINE_COLS))})",
                *(_db_value(c, getattr(record, c)) for c in _PIPELINE_COLS))
            await tx.execute("DELETE FROM hr_deleted WHERE id = ?", record.id)
            return record

    async def get_pipeline(self, pipeline_id: str) -> PipelineRecord:
        rows = await self.backend.query(f"SELECT {', '.join(_PIPELINE_COLS)} FROM hr_pipelines "
                                        "WHERE id = ?", pipeline_id)
        if not rows:
            raise NotFound(f"no pipeline {pipeline_id!r} in the store {self.url}")
        return _pipeline(rows[0])

    async def list_pipelines(self) -> list[PipelineRecord]:
        rows = await self.backend.query(f"SELECT {', '.join(_PIPELINE_COLS)} FROM hr_pipelines "
                                        "ORDER BY created_at, id")
        return [_pipeline(r) for r in rows]

    async def update_pipeline(self, pipeline_id: str, **fields: Any) -> None:
        await self._update("hr_pipelines", "id = ?", (pipeline_id,), fields)

    async def delete_pipeline(self, pipeline_id: str) -> None:
        await self.get_pipeline(pipeline_id)
        async with self.backend.transaction() as tx:
            for table in ("hr_attempts", "hr_instances", "hr_definitions", "hr_requests",
                          "hr_paused"):
                await tx.execute(f"DELETE FROM {table} WHERE pipeline_id = ?", pipeline_id)
            await tx.execute("DELETE FROM hr_leases WHERE name = ?", f"pipeline:{pipeline_id}")
            await tx.execute("DELETE FROM hr_pipelines WHERE id = ?", pipeline_id)
            await tx.execute("INSERT INTO hr_deleted (id, deleted_at) VALUES (?, ?) "
                             "ON CONFLICT (id) DO NOTHING", pipeline_id, to_text(utcnow()))

    async def deleted_at(self, pipeline_id: str) -> datetime | None:
        """When the pipeline was deleted, or None if it never existed (or still does)."""
        rows = await self.backend.query("SELECT deleted_at FROM hr_deleted WHERE id = ?",
                                        pipeline_id)
        return from_text(rows[0][0]) if rows else None

    async def _update(self, table: str, where: str, where_params: tuple[Any, ...],
                      fields: dict[str, Any], tx: Transaction | None = None) -> int:
        if not fields:
            return 0
        sets = ", ".join(f"{k} = ?" for k in fields)
        params = [_db_value(k, v) for k, v in fields.items()]
        sql = f"UPDATE {table} SET {sets} WHERE {where}"
        if tx is not None:
            return await tx.execute(sql, *params, *where_params)
        _, counts = await self.backend.batch([(sql, (*params, *where_params), False)])
        return counts[0]

    # --- definitions -----------------------------------------------------------------------

    async def put_definition(self, pipeline_id: str, body: dict[str, Any]) -> int:
        """Store a new definition version; it becomes ``latest``."""
        await self.get_pipeline(pipeline_id)
        async with self.backend.transaction() as tx:
            rows = await tx.fetch("SELECT MAX(version) FROM hr_definitions WHERE pipeline_id "
                                  "= ?", pipeline_id)
            version = (rows[0][0] or 0) + 1
            await tx.execute("INSERT INTO hr_definitions (pipeline_id, version, body, "
                             "created_at) VALUES (?, ?, ?, ?)", pipeline_id, version,
                             json.dumps(seal(body, self.sealer)), to_text(utcnow()))
            await tx.execute("UPDATE hr_pipelines SET latest_version = ? WHERE id = ?",
                             version, pipeline_id)
        return version

    async def get_definition(self, pipeline_id: str, version: int) -> dict[str, Any]:
        rows = await self.backend.query("SELECT body FROM hr_definitions WHERE pipeline_id = ? "
                                        "AND version = ?", pipeline_id, version)
        if not rows:
            raise NotFound(f"pipeline {pipeline_id!r} has no definition version {version}")
        body: dict[str, Any] = json.loads(rows[0][0])
        return unseal(body, self.sealer, f"pipeline {pipeline_id} version {version}")

    async def reseal_definitions(self) -> tuple[int, int]:
        """Encrypt every stored definition's masked values with the newest key: those kept
        in clear (stored before a key was set) and those encrypted with an older key.
        Returns (definition versions rewritten, versions in all)."""
        sealer = self.sealer
        if sealer is None:
            raise StoreError(f"no key to encrypt with: set ${KEY_FILE_VARIABLE}")
        rows = await self.backend.query("SELECT pipeline_id, version, body FROM hr_definitions")
        changed = 0
        for pipeline_id, version, text in rows:
            stored = json.loads(text)
            if all(sealer.is_current(v) for v in each_masked(stored)):
                continue
            where = f"pipeline {pipeline_id} version {version}"
            fresh = seal(unseal(stored, sealer, where), sealer)
            await self.backend.batch([("UPDATE hr_definitions SET body = ? WHERE pipeline_id "
                                       "= ? AND version = ? AND body = ?",
                                       (json.dumps(fresh), pipeline_id, version, text), False)])
            changed += 1
        if changed:
            await self.backend.compact("hr_definitions")
        return changed, len(rows)

    # --- instances -------------------------------------------------------------------------

    async def add_instances(self, records: Iterable[InstanceRecord]) -> int:
        """Insert instances that are not there yet; existing ones are left as they are."""
        rows = [tuple(_db_value(c, getattr(r, c)) for c in _INSTANCE_COLS) for r in records]
        if not rows:
            return 0
        sql = (f"INSERT INTO hr_instances ({', '.join(_INSTANCE_COLS)}) VALUES "
               f"({', '.join('?' * len(_INSTANCE_COLS))}) ON CONFLICT (pipeline_id, id) "
               "DO NOTHING")
        async with self.backend.transaction() as tx:
            await tx.executemany(sql, rows)
        return len(rows)

    async def get_instance(self, pipeline_id: str, instance_id: str) -> InstanceRecord:
        rows = await self.backend.query(f"SELECT {', '.join(_INSTANCE_COLS)} FROM hr_instances "
                                        "WHERE pipeline_id = ? AND id = ?", pipeline_id,
                                        instance_id)
        if not rows:
            raise NotFound(f"pipeline {pipeline_id!r} has no instance {instance_id!r}")
        return _instance(rows[0])

    async def list_instances(self, pipeline_id: str, *,
                             statuses: Iterable[Status] | None = None,
                             object_id: str | None = None,
                             scheduled_from: datetime | None = None,
                             scheduled_to: datetime | None = None) -> list[InstanceRecord]:
        where = ["pipeline_id = ?"]
        params: list[Any] = [pipeline_id]
        if statuses is not None:
            values = [s.value for s in statuses]
            if not values:
                return []
            where.append(f"status IN ({', '.join('?' * len(values))})")
            params.extend(values)
        if object_id is not None:
            where.append("object_id = ?")
            params.append(object_id)
        if scheduled_from is not None:
            where.append("scheduled_start >= ?")
            params.append(to_text(scheduled_from))
        if scheduled_to is not None:
            where.append("scheduled_start < ?")
            params.append(to_text(scheduled_to))
        rows = await self.backend.query(f"SELECT {', '.join(_INSTANCE_COLS)} FROM hr_instances "
                                        f"WHERE {' AND '.join(where)} "
                                        "ORDER BY scheduled_start, object_id, id", *params)
        return [_instance(r) for r in rows]

    async def update_instance(self, pipeline_id: str, instance_id: str, *,
                              expect: Iterable[Status] | None = None,
                              **fields: Any) -> bool:
        """Change fields of an instance; with ``expect``, only if its status is one of those.
        Returns whether the row changed (the compare-and-set succeeded)."""
        fields.setdefault("updated_at", utcnow())
        where = "pipeline_id = ? AND id = ?"
        params: tuple[Any, ...] = (pipeline_id, instance_id)
        if expect is not None:
            values = tuple(s.value for s in expect)
            where += f" AND status IN ({', '.join('?' * len(values))})"
            params += values
        return await self._update("hr_instances", where, params, fields) > 0

    # --- attempts --------------------------------------------------------------------------

    async def start_attempt(self, instance: InstanceRecord, attempt: AttemptRecord,
                            fence: Fence | None = None, **instance_fields: Any) -> bool:
        """Record a new attempt and mark its instance RUNNING in one transaction, if the
        instance is still where the caller saw it: same status, not RUNNING, and no attempt
        since (its attempt count is ``attempt.number - 1``); with ``fence``, only while that
        worker holds it under that token."""
        if instance.status == Status.RUNNING:
            return False
        fields = {"status": Status.RUNNING, "attempts": attempt.number, "updated_at": utcnow(),
                  **instance_fields}
        # ... and while its pipeline is not being paused: a deactivation recorded in the
        # store stops new attempts at once, not only once the engine's poll has seen it
        where = ("pipeline_id = ? AND id = ? AND status = ? AND attempts = ? AND NOT EXISTS "
                 "(SELECT 1 FROM hr_pipelines p WHERE p.id = hr_instances.pipeline_id "
                 "AND p.state IN (?, ?))")
        params: tuple[Any, ...] = (instance.pipeline_id, instance.id, instance.status.value,
                                   attempt.number - 1, PipelineState.DEACTIVATING.value,
                                   PipelineState.INACTIVE.value)
        if fence is not None:
            fenced, fence_params = fence.where()
            where, params = f"{where} AND {fenced}", params + fence_params
        update = _update_step("hr_instances", where, params, fields, guard=True)
        insert = (f"INSERT INTO hr_attempts ({', '.join(_ATTEMPT_COLS)}) VALUES "
                  f"({', '.join('?' * len(_ATTEMPT_COLS))})",
                  tuple(_db_value(c, getattr(attempt, c)) for c in _ATTEMPT_COLS), False)
        committed, _ = await self.backend.batch([update, insert])
        return committed

    async def end_attempt(self, attempt: AttemptRecord, instance_fields: dict[str, Any],
                          *, expect: Iterable[Status] | None = None,
                          fence: Fence | None = None, requeue: bool = False) -> bool:
        """Record an attempt's end and its instance's new state in one transaction. With
        ``fence``: only while that worker holds the instance under that token (else nothing
        is written), and the worker lets go of it: out of the queue, or back in it
        (``requeue``: handed back for another worker)."""
        fields = {"updated_at": utcnow(), **instance_fields}
        where = "pipeline_id = ? AND id = ?"
        params: tuple[Any, ...] = (attempt.pipeline_id, attempt.instance_id)
        if expect is not None:
            values = tuple(s.value for s in expect)
            where += f" AND status IN ({', '.join('?' * len(values))})"
            params += values
        if fence is not None:
            fenced, fence_params = fence.where()
            where, params = f"{where} AND {fenced}", params + fence_params
            fields.update(worker_id=None, lease_until=None, cancel_reason=None)
            if not requeue:
                fields["queued_at"] = None
        committed, counts = await self.backend.batch([
            _update_step("hr_instances", where, params, fields, guard=fence is not None),
            _update_step("hr_attempts", "pipeline_id = ? AND instance_id = ? AND number = ?",
                         (attempt.pipeline_id, attempt.instance_id, attempt.number),
                         {"status": attempt.status, "ended_at": attempt.ended_at,
                          "exit_code": attempt.exit_code, "error": attempt.error,
                          "trace_id": attempt.trace_id, "log_path": attempt.log_path})])
        return committed and counts[0] > 0

    async def update_attempt(self, pipeline_id: str, instance_id: str, number: int,
                             **fields: Any) -> None:
        await self._update("hr_attempts", "pipeline_id = ? AND instance_id = ? AND number = ?",
                           (pipeline_id, instance_id, number), fields)

    async def list_attempts(self, pipeline_id: str,
                            instance_id: str | None = None) -> list[AttemptRecord]:
        where, params = "pipeline_id = ?", [pipeline_id]
        if instance_id is not None:
            where += " AND instance_id = ?"
            params.append(instance_id)
        rows = await self.backend.query(f"SELECT {', '.join(_ATTEMPT_COLS)} FROM hr_attempts "
                                        f"WHERE {where} ORDER BY instance_id, number", *params)
        return [_attempt(r) for r in rows]

    # --- user requests and pauses ----------------------------------------------------------

    async def add_request(self, pipeline_id: str, target: str, action: Action) -> None:
        async with self.backend.transaction() as tx:
            await tx.execute("INSERT INTO hr_requests (pipeline_id, target, action, created_at)"
                             " VALUES (?, ?, ?, ?)", pipeline_id, target, action.value,
                             to_text(utcnow()))

    async def take_requests(self, pipeline_id: str) -> list[RequestRecord]:
        """Pending requests, oldest first, marked handled by the same statement (so two
        processes taking requests at once never both get one)."""
        async with self.backend.transaction() as tx:
            rows = await tx.fetch("UPDATE hr_requests SET handled_at = ? WHERE pipeline_id = ? "
                                  "AND handled_at IS NULL RETURNING id, pipeline_id, target, "
                                  "action, created_at", to_text(utcnow()), pipeline_id)
        return [RequestRecord(r[0], r[1], r[2], Action(r[3]), from_text(r[4]))  # type: ignore[arg-type]
                for r in sorted(rows)]

    async def pipelines_with_requests(self) -> set[str]:
        """Ids of the pipelines that have requests no process has taken yet."""
        rows = await self.backend.query("SELECT DISTINCT pipeline_id FROM hr_requests "
                                        "WHERE handled_at IS NULL")
        return {r[0] for r in rows}

    async def set_paused(self, pipeline_id: str, object_id: str, paused: bool) -> None:
        async with self.backend.transaction() as tx:
            if paused:
                await tx.execute("INSERT INTO hr_paused (pipeline_id, object_id) VALUES (?, ?) "
                                 "ON CONFLICT (pipeline_id, object_id) DO NOTHING",
                                 pipeline_id, object_id)
            else:
                await tx.execute("DELETE FROM hr_paused WHERE pipeline_id = ? AND object_id = ?",
                                 pipeline_id, object_id)

    async def paused(self, pipeline_id: str) -> set[str]:
        rows = await self.backend.query("SELECT object_id FROM hr_paused WHERE pipeline_id = ?",
                                        pipeline_id)
        return {r[0] for r in rows}

    # --- leases ----------------------------------------------------------------------------

    async def acquire_lease(self, name: str, owner: str, expires_at: datetime,
                            now: datetime, *, steal_from: Iterable[str] = ()) -> str | None:
        """Take or renew the lease ``name``. Returns None on success, else the current owner.
        A lease is free when expired, already ours, or held by an owner in ``steal_from``
        (a process on this host known to be dead). One conditional upsert, so two processes
        racing for a free or expired lease cannot both win (RELIABILITY case 13).

        On PostgreSQL (engines on several hosts) the lease is measured by the database's
        clock, as the workers' leases are: it runs for ``expires_at - now`` from the
        database's now, and has expired once the database's now passed it. The caller's
        clock only gives the length, so an engine whose clock is off neither takes a live
        engine's pipelines early nor keeps a lapsed lease. On SQLite (one process) its clock
        is the database's: ``expires_at`` and ``now`` are taken as they are."""
        stealable = [s for s in steal_from if s != owner]
        if self.backend.dialect == "postgresql":
            until = _PG_LEASE_TIME.format("make_interval(secs => ?::double precision)")
            current = _PG_LEASE_TIME.format("interval '0'")
            values: list[Any] = [(expires_at - now).total_seconds()]
            compared: list[Any] = [owner]
        else:
            until, current = "?", "?"
            values, compared = [to_text(expires_at)], [owner, to_text(now)]
        condition = f"hr_leases.owner = ? OR hr_leases.expires_at <= {current}"
        if stealable:
            condition += f" OR hr_leases.owner IN ({', '.join('?' * len(stealable))})"
            compared.extend(stealable)
        sql = (f"INSERT INTO hr_leases (name, owner, expires_at) VALUES (?, ?, {until}) "
               "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
               f"expires_at = excluded.expires_at WHERE {condition} RETURNING owner")
        for _ in range(3):
            async with self.backend.transaction() as tx:
                if await tx.fetch(sql, name, owner, *values, *compared):
                    return None
                rows = await tx.fetch("SELECT owner FROM hr_leases WHERE name = ?", name)
            if rows:
                return str(rows[0][0])
        raise StoreError(f"lease {name} changed hands three times while being taken")

    async def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        rows = await self.backend.query("SELECT owner, expires_at FROM hr_leases WHERE name = ?",
                                        name)
        if not rows:
            return None
        return rows[0][0], from_text(rows[0][1])  # type: ignore[return-value]

    async def release_lease(self, name: str, owner: str) -> None:
        async with self.backend.transaction() as tx:
            await tx.execute("DELETE FROM hr_leases WHERE name = ? AND owner = ?", name, owner)


    # --- incremental copies -----------------------------------------------------------------

    async def _copy_tables(self) -> None:
        """The incremental copies' tables, made on first use (additive: a store of any
        version gains them without a schema change, and older readers ignore them)."""
        if self._has_copy_tables:
            return
        async with self.backend.transaction() as tx:
            if self.backend.dialect == "sqlite":  # BEGIN IMMEDIATE: one process at a time
                for statement in _COPY_TABLES:
                    await tx.execute(statement)
                found = await tx.fetch("PRAGMA table_info(hr_copy_runs)")
                if "instance_id" not in {str(r[1]) for r in found}:  # made before it was
                    await tx.execute("ALTER TABLE hr_copy_runs ADD COLUMN instance_id TEXT")
            else:  # concurrent CREATE ... IF NOT EXISTS can collide in PostgreSQL: take turns
                await tx.fetch("SELECT pg_advisory_xact_lock(hashtext('hr_copies'))")
                for statement in _COPY_TABLES:
                    await tx.execute(statement)
                await tx.execute("ALTER TABLE hr_copy_runs ADD COLUMN IF NOT EXISTS "
                                 "instance_id TEXT")
        self._has_copy_tables = True

    async def copy_state(self, copy_key: str) -> CopyRecord | None:
        await self._copy_tables()
        rows = await self.backend.query(
            "SELECT copy_key, source, dest, column_name, state, runs, rows_moved, updated_at "
            "FROM hr_copies WHERE copy_key = ?", copy_key)
        return CopyRecord(*rows[0]) if rows else None

    async def list_copies(self) -> list[CopyRecord]:
        await self._copy_tables()
        rows = await self.backend.query(
            "SELECT copy_key, source, dest, column_name, state, runs, rows_moved, updated_at "
            "FROM hr_copies ORDER BY updated_at DESC")
        return [CopyRecord(*r) for r in rows]

    async def copy_runs(self, copy_key: str) -> list[tuple[int, int, str | None, str]]:
        """(run, rows moved, watermark, finished at) of one copy, oldest first."""
        await self._copy_tables()
        rows = await self.backend.query(
            "SELECT run, rows_moved, watermark, finished_at FROM hr_copy_runs "
            "WHERE copy_key = ? ORDER BY run", copy_key)
        return [(int(r[0]), int(r[1]), r[2], str(r[3])) for r in rows]

    async def instance_copy_runs(self, pipeline_id: str) -> dict[str, tuple[int, str | None]]:
        """(rows moved, watermark) of each instance of ``pipeline_id`` that ran an incremental
        CopyActivity, by instance id: its latest run (``list-runs``)."""
        await self._copy_tables()
        prefix = f"activity:{pipeline_id}/"
        rows = await self.backend.query(
            "SELECT instance_id, rows_moved, watermark FROM hr_copy_runs WHERE "
            "substr(copy_key, 1, ?) = ? AND instance_id IS NOT NULL ORDER BY run",
            len(prefix), prefix)
        return {str(r[0]): (int(r[1]), r[2]) for r in rows}  # a later run replaces

    async def record_copy_run(self, copy_key: str, *, source: str, dest: str, column: str,
                              state: str, rows: int, watermark: str | None,
                              instance_id: str | None = None) -> int:
        """Commit an incremental copy's new state and note the run (``instance_id``: the
        CopyActivity instance that ran it); returns its number."""
        await self._copy_tables()
        now = to_text(utcnow())
        async with self.backend.transaction() as tx:
            found = await tx.fetch("SELECT runs FROM hr_copies WHERE copy_key = ?", copy_key)
            run = (int(found[0][0]) if found else 0) + 1
            if found:
                await tx.execute("UPDATE hr_copies SET state = ?, runs = ?, rows_moved = "
                                 "rows_moved + ?, updated_at = ?, source = ?, dest = ? "
                                 "WHERE copy_key = ?", state, run, rows, now, source, dest,
                                 copy_key)
            else:
                await tx.execute("INSERT INTO hr_copies (copy_key, source, dest, column_name, "
                                 "state, runs, rows_moved, updated_at) VALUES "
                                 "(?, ?, ?, ?, ?, ?, ?, ?)", copy_key, source, dest, column,
                                 state, run, rows, now)
            await tx.execute("INSERT INTO hr_copy_runs (copy_key, run, rows_moved, watermark, "
                             "finished_at, instance_id) VALUES (?, ?, ?, ?, ?, ?)", copy_key,
                             run, rows, watermark, now, instance_id)
        return run


#: Incremental copies: the committed watermark (authoritative for file and S3 outputs; a copy
#: of the target's own checkpoint row for SQL ones) and each run.
_COPY_TABLES = (
    """CREATE TABLE IF NOT EXISTS hr_copies (
        copy_key TEXT PRIMARY KEY, source TEXT NOT NULL, dest TEXT NOT NULL,
        column_name TEXT NOT NULL, state TEXT NOT NULL, runs INTEGER NOT NULL,
        rows_moved INTEGER NOT NULL, updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS hr_copy_runs (
        copy_key TEXT NOT NULL, run INTEGER NOT NULL, rows_moved INTEGER NOT NULL,
        watermark TEXT, finished_at TEXT NOT NULL, instance_id TEXT,
        PRIMARY KEY (copy_key, run))""",
)


@dataclass(frozen=True)
class CopyRecord:
    """One incremental copy in the store (``headrace describe-copy``)."""

    copy_key: str
    source: str
    dest: str
    column: str
    state: str
    runs: int
    rows_moved: int
    updated_at: str


def _update_step(table: str, where: str, where_params: tuple[Any, ...],
                 fields: dict[str, Any], *, guard: bool = False) -> Step:
    sets = ", ".join(f"{k} = ?" for k in fields)
    params = tuple(_db_value(k, v) for k, v in fields.items())
    return f"UPDATE {table} SET {sets} WHERE {where}", params + where_params, guard


def new_pipeline_id() -> str:
    """``df-`` and 20 upper-case characters, like AWS ids (``df-06372391ZG65EXAMPLE``)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    raw = int.from_bytes(os.urandom(13), "big")
    chars = []
    for _ in range(20):
        raw, index = divmod(raw, 36)
        chars.append(alphabet[index])
    return "df-" + "".join(chars)


def default_store_url() -> str:
    """``$HEADRACE_STORE``, else a SQLite file under ``$XDG_DATA_HOME/headrace`` (by default
    ``~/.local/share/headrace/headrace.db``)."""
    env = os.environ.get("HEADRACE_STORE")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return "sqlite:///" + os.path.join(base, "headrace", "headrace.db")


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """A store for ``sqlite:///relative.db``, ``sqlite:////absolute.db``, a plain path,
    ``sqlite://:memory:`` or ``postgresql://...``. Call ``await store.open()`` (or ``async
    with``). ``create`` false: a SQLite file that does not exist is refused, not made."""
    url = url or default_store_url()
    sealer = load_sealer()
    if url.startswith(("postgresql://", "postgres://")):
        return Store(PostgresBackend(url), _display(url), sealer=sealer)
    if url.startswith("sqlite:"):
        path = sqlite_path(url)
        return Store(SqliteBackend(path), url, create=create, sealer=sealer)
    if "://" in url:
        raise StoreError(f"unknown store URL {_display(url)!r} (use sqlite:///relative.db, "
                         "sqlite:////absolute/path.db, a path, or postgresql://user@host/db)")
    return Store(SqliteBackend(url), f"sqlite:///{url}", create=create, sealer=sealer)


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:`` URL, read as SQLAlchemy reads it (what users know):
    ``sqlite:///x.db`` is the relative path ``x.db``, ``sqlite:////srv/x.db`` the absolute
    ``/srv/x.db``; ``sqlite://:memory:`` (or ``sqlite://``) is in memory. Any other form
    (``sqlite://x.db``, ``sqlite:x.db``) is refused: it could mean either."""
    rest = url[len("sqlite:"):]
    if rest in ("//", "//:memory:", "///:memory:"):
        return ":memory:"
    if not rest.startswith("///") or rest == "///":
        raise StoreError(f"{_display(url)!r} is not a SQLite URL headrace reads: write "
                         "sqlite:///relative/path.db or sqlite:////absolute/path.db (as "
                         "SQLAlchemy does), or the path itself")
    return rest[3:]


def _no_store(url: str, path: str) -> str:
    message = (f"no store at {path} ({_display(url)}): nothing has been run or created "
               "there (a mistyped --store or $HEADRACE_STORE?)")
    if url.startswith("sqlite:///") and not path.startswith("/") and Path("/" + path).exists():
        message += (f"; a store exists at /{path}: sqlite:///{path} is a relative path, "
                    f"sqlite:////{path} the absolute one")
    return message


def _display(url: str) -> str:
    from engine.store.backend import _no_secret

    return _no_secret(url)
