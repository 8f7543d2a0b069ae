"""The store's schema, its version, and the in-place upgrade of an older store.

Version 1 was the first release's. Version 2 adds what worker processes need: per instance, the
worker group, the queue mark (``queued_at``), the holder (``worker_id``), the lease's expiry in
database time (``lease_until``, seconds since the epoch by the database's clock) and the lease
version (the fencing token, incremented by every claim), the checks a precondition's attempt has
made (its polls are claimed one check at a time); per attempt, the worker and token
that ran it; and the ``hr_workers`` table (one row per worker process, its heartbeat).

:func:`migrate` runs in the transaction that opens the store, under a lock (PostgreSQL: a
transaction-scoped advisory lock; SQLite: ``BEGIN IMMEDIATE``), so two processes opening an old
store at once upgrade it once. A store whose version is newer than this code is refused before
anything is written to it.
"""

from __future__ import annotations

import logging

from engine.errors import StoreError
from engine.store.backend import Transaction

log = logging.getLogger("headrace.store")

SCHEMA_VERSION = 2
#: an arbitrary constant: the advisory lock every headrace takes while it upgrades a store
_MIGRATION_LOCK = 7_180_014_415


def db_now(dialect: str) -> str:
    """SQL for the database's current time in seconds since the epoch (a float): leases are
    measured by this clock only, never by the caller's."""
    if dialect == "postgresql":
        return "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
    return "((julianday('now') - 2440587.5) * 86400.0)"


def tables(dialect: str) -> list[str]:
    """``CREATE ... IF NOT EXISTS`` for every table and index of the current version."""
    serial = ("BIGSERIAL PRIMARY KEY" if dialect == "postgresql"
              else "INTEGER PRIMARY KEY AUTOINCREMENT")
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        "CREATE TABLE IF NOT EXISTS hr_meta (key TEXT PRIMARY KEY, value TEXT)",
        """CREATE TABLE IF NOT EXISTS hr_pipelines (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, unique_id TEXT NOT NULL UNIQUE,
            description TEXT, state TEXT NOT NULL, created_at TEXT, latest_version INTEGER,
            active_version INTEGER, activated_at TEXT, first_activated_at TEXT,
            window_start TEXT, window_end TEXT, tags TEXT, cancel_active INTEGER)""",
        """CREATE TABLE IF NOT EXISTS hr_definitions (
            pipeline_id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
            created_at TEXT, PRIMARY KEY (pipeline_id, version))""",
        f"""CREATE TABLE IF NOT EXISTS hr_instances (
            pipeline_id TEXT NOT NULL, id TEXT NOT NULL, object_id TEXT NOT NULL,
            type TEXT, category TEXT, scheduled_start TEXT, scheduled_end TEXT,
            eligible_at TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            actual_start TEXT, actual_end TEXT, error TEXT, node TEXT, depends_on TEXT,
            version INTEGER, late_fired INTEGER NOT NULL DEFAULT 0, cascade_failed_on TEXT,
            lease_owner TEXT, lease_expires TEXT, retry_at TEXT, updated_at TEXT,
            attempt_base INTEGER NOT NULL DEFAULT 0, schedule_type TEXT,
            trace_id TEXT, span_id TEXT, worker_group TEXT, queued_at {real},
            worker_id TEXT, lease_until {real}, lease_version INTEGER NOT NULL DEFAULT 0,
            cancel_reason TEXT, checks INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (pipeline_id, id))""",
        "CREATE INDEX IF NOT EXISTS hr_instances_status ON hr_instances (pipeline_id, status)",
        """CREATE TABLE IF NOT EXISTS hr_attempts (
            pipeline_id TEXT NOT NULL, instance_id TEXT NOT NULL, number INTEGER NOT NULL,
            status TEXT NOT NULL, started_at TEXT, ended_at TEXT, exit_code INTEGER,
            error TEXT, trace_id TEXT, log_path TEXT, host TEXT, worker_id TEXT,
            lease_version INTEGER,
            PRIMARY KEY (pipeline_id, instance_id, number))""",
        f"""CREATE TABLE IF NOT EXISTS hr_requests (
            id {serial}, pipeline_id TEXT NOT NULL, target TEXT NOT NULL,
            action TEXT NOT NULL, created_at TEXT NOT NULL, handled_at TEXT)""",
        """CREATE TABLE IF NOT EXISTS hr_paused (
            pipeline_id TEXT NOT NULL, object_id TEXT NOT NULL,
            PRIMARY KEY (pipeline_id, object_id))""",
        """CREATE TABLE IF NOT EXISTS hr_leases (
            name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TEXT NOT NULL)""",
        # ids of deleted pipelines, so a later call can say "deleted" rather than "unknown"
        """CREATE TABLE IF NOT EXISTS hr_deleted (
            id TEXT PRIMARY KEY, deleted_at TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS hr_workers (
            worker_id TEXT PRIMARY KEY, host TEXT NOT NULL, worker_groups TEXT NOT NULL,
            slots INTEGER NOT NULL, running INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
            started_at {real} NOT NULL, last_heartbeat {real} NOT NULL, version TEXT,
            kind TEXT NOT NULL DEFAULT 'worker')""",
    ]


#: indexes that name columns added in version 2: made after the columns are there
def _indexes() -> list[str]:
    return [
        # the claim's scan: queued, unclaimed instances of a group, oldest first
        "CREATE INDEX IF NOT EXISTS hr_instances_queue ON hr_instances "
        "(worker_group, queued_at) WHERE queued_at IS NOT NULL AND worker_id IS NULL",
        # the reaper's scan: held leases
        "CREATE INDEX IF NOT EXISTS hr_instances_held ON hr_instances (lease_until) "
        "WHERE worker_id IS NOT NULL",
    ]


#: Columns added after a table was first released: (table, column, type). Added in place to a
#: store made by an earlier headrace (additive: older readers ignore them).
def _added_columns(dialect: str) -> tuple[tuple[str, str, str], ...]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return (
        ("hr_instances", "trace_id", "TEXT"), ("hr_instances", "span_id", "TEXT"),
        ("hr_instances", "worker_group", "TEXT"), ("hr_instances", "queued_at", real),
        ("hr_instances", "worker_id", "TEXT"), ("hr_instances", "lease_until", real),
        ("hr_instances", "lease_version", "INTEGER NOT NULL DEFAULT 0"),
        ("hr_instances", "cancel_reason", "TEXT"),
        ("hr_instances", "checks", "INTEGER NOT NULL DEFAULT 0"),
        ("hr_attempts", "worker_id", "TEXT"), ("hr_attempts", "lease_version", "INTEGER"),
    )


async def migrate(tx: Transaction, dialect: str, where: str) -> int | None:
    """Bring the store to :data:`SCHEMA_VERSION` inside ``tx``: create a new one, upgrade an
    older one in place, refuse a newer one (``where`` names the store in the message).
    Returns the version the store had (None when it was new)."""
    if dialect == "postgresql":
        await tx.fetch("SELECT pg_advisory_xact_lock(?)", _MIGRATION_LOCK)
    found = await _stored_version(tx, dialect, where)
    if found is not None and found > SCHEMA_VERSION:
        raise StoreError(f"the store {where} has schema version {found}, newer than this "
                         f"headrace reads (version {SCHEMA_VERSION}): it was written by a "
                         "later release; upgrade headrace to use it (nothing was changed)")
    if found == SCHEMA_VERSION:
        return found
    for statement in tables(dialect):
        await tx.execute(statement)
    await _add_columns(tx, dialect)
    for statement in _indexes():
        await tx.execute(statement)
    if found is None:
        await tx.execute("INSERT INTO hr_meta (key, value) VALUES ('schema', ?)",
                         str(SCHEMA_VERSION))
    else:
        await tx.execute("UPDATE hr_meta SET value = ? WHERE key = 'schema'",
                         str(SCHEMA_VERSION))
        log.info("store %s upgraded from schema version %d to %d", where, found,
                 SCHEMA_VERSION)
    return found


async def _stored_version(tx: Transaction, dialect: str, where: str) -> int | None:
    if dialect == "postgresql":
        exists = await tx.fetch("SELECT 1 FROM information_schema.tables WHERE "
                                "table_schema = current_schema() AND table_name = 'hr_meta'")
    else:
        exists = await tx.fetch("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'hr_meta'")
    if not exists:
        return None
    rows = await tx.fetch("SELECT value FROM hr_meta WHERE key = 'schema'")
    if not rows:
        return None
    text = str(rows[0][0])
    if not text.isdigit():
        raise StoreError(f"the store {where} has schema version {text!r}, which no headrace "
                         "release wrote: is it a headrace store?")
    return int(text)


async def _add_columns(tx: Transaction, dialect: str) -> None:
    existing: dict[str, set[str]] = {}
    for table, column, kind in _added_columns(dialect):
        if table not in existing:
            # looked up first: ALTER TABLE locks the table even when the column is there
            if dialect == "postgresql":
                rows = await tx.fetch("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = current_schema() AND "
                                      "table_name = ?", table)
            else:
                rows = await tx.fetch(f"SELECT name FROM pragma_table_info('{table}')")
            existing[table] = {str(r[0]) for r in rows}
        if column not in existing[table]:
            await tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            existing[table].add(column)
