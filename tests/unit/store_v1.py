"""The store as the first release (schema version 1) left it: its DDL, frozen here, and a
little data, so the upgrade in place can be tested against what users have on disk."""

from __future__ import annotations

from engine.store.backend import Transaction


def schema_v1(dialect: str) -> list[str]:
    serial = ("BIGSERIAL PRIMARY KEY" if dialect == "postgresql"
              else "INTEGER PRIMARY KEY AUTOINCREMENT")
    return [
        "CREATE TABLE hr_meta (key TEXT PRIMARY KEY, value TEXT)",
        """CREATE TABLE hr_pipelines (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, unique_id TEXT NOT NULL UNIQUE,
            description TEXT, state TEXT NOT NULL, created_at TEXT, latest_version INTEGER,
            active_version INTEGER, activated_at TEXT, first_activated_at TEXT,
            window_start TEXT, window_end TEXT, tags TEXT, cancel_active INTEGER)""",
        """CREATE TABLE hr_definitions (
            pipeline_id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
            created_at TEXT, PRIMARY KEY (pipeline_id, version))""",
        """CREATE TABLE hr_instances (
            pipeline_id TEXT NOT NULL, id TEXT NOT NULL, object_id TEXT NOT NULL,
            type TEXT, category TEXT, scheduled_start TEXT, scheduled_end TEXT,
            eligible_at TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            actual_start TEXT, actual_end TEXT, error TEXT, node TEXT, depends_on TEXT,
            version INTEGER, late_fired INTEGER NOT NULL DEFAULT 0, cascade_failed_on TEXT,
            lease_owner TEXT, lease_expires TEXT, retry_at TEXT, updated_at TEXT,
            attempt_base INTEGER NOT NULL DEFAULT 0, schedule_type TEXT,
            trace_id TEXT, span_id TEXT,
            PRIMARY KEY (pipeline_id, id))""",
        "CREATE INDEX hr_instances_status ON hr_instances (pipeline_id, status)",
        """CREATE TABLE hr_attempts (
            pipeline_id TEXT NOT NULL, instance_id TEXT NOT NULL, number INTEGER NOT NULL,
            status TEXT NOT NULL, started_at TEXT, ended_at TEXT, exit_code INTEGER,
            error TEXT, trace_id TEXT, log_path TEXT, host TEXT,
            PRIMARY KEY (pipeline_id, instance_id, number))""",
        f"""CREATE TABLE hr_requests (
            id {serial}, pipeline_id TEXT NOT NULL, target TEXT NOT NULL,
            action TEXT NOT NULL, created_at TEXT NOT NULL, handled_at TEXT)""",
        """CREATE TABLE hr_paused (
            pipeline_id TEXT NOT NULL, object_id TEXT NOT NULL,
            PRIMARY KEY (pipeline_id, object_id))""",
        """CREATE TABLE hr_leases (
            name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TEXT NOT NULL)""",
        """CREATE TABLE hr_deleted (
            id TEXT PRIMARY KEY, deleted_at TEXT NOT NULL)""",
    ]


async def write_v1_store(tx: Transaction, dialect: str) -> None:
    """A version-1 store with one pipeline, one finished instance and its attempt."""
    for statement in schema_v1(dialect):
        await tx.execute(statement)
    await tx.execute("INSERT INTO hr_meta (key, value) VALUES ('schema', '1')")
    await tx.execute("INSERT INTO hr_pipelines (id, name, unique_id, state, created_at, tags, "
                     "cancel_active) VALUES ('df-OLD', 'old', 'old-1', 'FINISHED', "
                     "'2024-01-01T00:00:00.000000', '{}', 1)")
    await tx.execute(
        "INSERT INTO hr_instances (pipeline_id, id, object_id, type, category, "
        "scheduled_start, scheduled_end, eligible_at, status, attempts, depends_on, version) "
        "VALUES ('df-OLD', '@A_2024-01-01T00:00:00', 'A', 'ShellCommandActivity', "
        "'activity', '2024-01-01T00:00:00.000000', '2024-01-01T01:00:00.000000', "
        "'2024-01-01T00:00:00.000000', 'FINISHED', 1, '[]', 1)")
    await tx.execute(
        "INSERT INTO hr_attempts (pipeline_id, instance_id, number, status, started_at, host) "
        "VALUES ('df-OLD', '@A_2024-01-01T00:00:00', 1, 'FINISHED', "
        "'2024-01-01T00:00:01.000000', 'old-host:1')")
