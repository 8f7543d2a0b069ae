"""Pipeline definitions the benchmarks run with ``headrace run``.

* a CopyActivity between two data nodes (the DB <-> S3 paths, through the scheduler, store
  and activity code, not just the copy engine);
* N no-op ShellCommandActivity instances (``true``): engine overhead per instance;
* N instances waiting on an ``Exists`` precondition that never holds: the cost of idle polls.

Instances come from a 15-minute schedule (the shortest AWS allows) over a window that holds
exactly N of them; the window lies in the past so ``headrace run`` starts them all at once.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import config

START = datetime(2024, 1, 1)
PERIOD = timedelta(minutes=15)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _scheduled(instances: int, objects: list[dict[str, Any]]) -> dict[str, Any]:
    end = START + PERIOD * instances
    return {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "cron",
         "schedule": {"ref": "Every"}, "failureAndRerunMode": "CASCADE"},
        {"id": "Every", "type": "Schedule", "period": "15 minutes",
         "startDateTime": _stamp(START), "endDateTime": _stamp(end)},
        *objects]}


def window_args(instances: int) -> list[str]:
    return ["--start", _stamp(START), "--end", _stamp(START + PERIOD * instances)]


def _pg_database() -> dict[str, Any]:
    return {"id": "PgDb", "type": "JdbcDatabase", "username": "postgres", "*password": "",
            "connectionString": f"jdbc:postgresql://{config.HOST}:{config.PG_PORT}/{config.PG_DB}",
            "jdbcDriverClass": "org.postgresql.Driver"}


def _mysql_database() -> dict[str, Any]:
    return {"id": "MyDb", "type": "JdbcDatabase", "username": "root", "*password": "",
            "connectionString":
                f"jdbc:mysql://{config.HOST}:{config.MYSQL_PORT}/{config.MYSQL_DB}",
            "jdbcDriverClass": "com.mysql.jdbc.Driver"}


_COLUMNS = ["id BIGINT", "ts TIMESTAMP", "name STRING", "amount DECIMAL", "flag BOOLEAN",
            "payload STRING"]


def node(end: str, object_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A data node for ``pg:TABLE``, ``mysql:TABLE`` or ``s3:KEY``, with what it refers to."""
    kind, _, name = end.partition(":")
    if kind == "pg":
        return ({"id": object_id, "type": "SqlDataNode", "table": name,
                 "database": {"ref": "PgDb"}}, [_pg_database()])
    if kind == "mysql":
        return ({"id": object_id, "type": "MySqlDataNode", "table": name,
                 "database": {"ref": "MyDb"}}, [_mysql_database()])
    if kind == "s3":
        return ({"id": object_id, "type": "S3DataNode", "filePath": config.s3_url(name),
                 "dataFormat": {"ref": "Csv"}},
                [{"id": "Csv", "type": "CSV", "column": _COLUMNS}])
    raise ValueError(f"unknown data node kind {end!r}")


def copy_definition(source: str, target: str) -> dict[str, Any]:
    """One CopyActivity instance from ``source`` to ``target`` (see :func:`node`)."""
    src, src_refs = node(source, "Input")
    dst, dst_refs = node(target, "Output")
    refs = {obj["id"]: obj for obj in (*src_refs, *dst_refs)}
    activity = {"id": "Copy", "type": "CopyActivity", "input": {"ref": "Input"},
                "output": {"ref": "Output"}, "maximumRetries": "0"}
    return _scheduled(1, [src, dst, *refs.values(), activity])


def noop_definition(instances: int, max_active: int) -> dict[str, Any]:
    return _scheduled(instances, [
        {"id": "Noop", "type": "ShellCommandActivity", "command": "true",
         "maxActiveInstances": str(max_active), "maximumRetries": "0"}])


def idle_precondition_definition(instances: int, missing_path: Path,
                                 retry_delay: str) -> dict[str, Any]:
    """Each instance's input waits for a file that never appears."""
    return _scheduled(instances, [
        {"id": "Never", "type": "Exists", "retryDelay": retry_delay},
        {"id": "Input", "type": "S3DataNode", "filePath": f"file://{missing_path}",
         "precondition": {"ref": "Never"}},
        {"id": "Work", "type": "ShellCommandActivity", "command": "true",
         "input": {"ref": "Input"}, "maxActiveInstances": "5"}])


def write(definition: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(definition, indent=1))
    return path


def run_argv(definition: Path, store: Path, *extra: str) -> list[str]:
    return [config.HEADRACE, "run", str(definition), "--store", f"sqlite:///{store}",
            "--output", "json", *extra]
