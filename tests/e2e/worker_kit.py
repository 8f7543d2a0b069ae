"""Schedulers and worker processes on one PostgreSQL store, driven through the CLI: a store per
test (the ``pg_database`` fixture), children started and stopped by the test, the store read
directly to check what ran where."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.cli_kit import Cli, stop, wait_for


@dataclass
class PgCli(Cli):
    """The CLI kit on a PostgreSQL store; every child it starts is stopped by ``close``."""

    dsn: str = ""
    children: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def store(self) -> str:
        return self.dsn

    def child(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        full = {**self.env(), **(env or {})}
        proc = subprocess.Popen([*_headrace(), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=full, cwd=self.root)
        self.children.append(proc)
        return proc

    def scheduler(self, *args: str) -> subprocess.Popen[str]:
        """A scheduler-only engine (its output is read only when the test ends: pass
        ``-q`` when it would print more than a pipe holds, a line per status change)."""
        return self.child("engine", "--store", self.dsn, "--scheduler-only",
                          "--poll-interval", "0.2", *args)

    def worker(self, worker_id: str, *args: str, lease: float = 3.0,
               env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return self.child("worker", "--store", self.dsn, "--worker-id", worker_id,
                          "--lease-seconds", str(lease), "--poll-interval", "0.1", "-v", *args,
                          env=env)

    def close(self) -> list[tuple[str, str]]:
        outputs = [stop(p) for p in self.children]
        self.children.clear()
        return outputs

    def new_pipeline(self, definition: Path, name: str = "demo") -> str:
        pid = str(self.json("create-pipeline", "--store", self.dsn, "--name", name,
                            "--unique-id", f"token-{name}")["pipelineId"])
        put = self.json("put-pipeline-definition", "--store", self.dsn, "--pipeline-id", pid,
                        "--pipeline-definition", str(definition))
        assert put["errored"] is False, put
        self.json("activate-pipeline", "--store", self.dsn, "--pipeline-id", pid,
                  "--allow-backfill")
        return pid

    def runs(self, pid: str) -> list[dict[str, Any]]:
        return list(self.json("list-runs", "--store", self.dsn, "--pipeline-id", pid,
                              timeout=120)["runs"])

    def wait_finished(self, pid: str, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []

        def done() -> bool:
            seen[:] = [r for r in self.runs(pid) if not str(r["type"]).endswith("DataNode")]
            ended = [r for r in seen if r["status"] in ("FINISHED", "FAILED", "CANCELED")]
            return len(ended) >= count

        wait_for(done, timeout, f"{count} instances of {pid} to end")
        return seen


def _headrace() -> list[str]:
    from tests.e2e.cli_kit import HEADRACE

    return [HEADRACE]


def shell_step(object_id: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"id": object_id, "name": object_id, "type": "ShellCommandActivity",
            "command": command, **fields}


def definition(path: Path, *objects: dict[str, Any], instances: int = 1,
               period_minutes: int = 15) -> Path:
    """Objects on a cron schedule that makes ``instances`` instances of each."""
    from datetime import datetime, timedelta

    start = datetime(2024, 1, 1)
    end = start + timedelta(minutes=period_minutes * instances)
    body = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "cron",
         "schedule": {"ref": "S"}, "failureAndRerunMode": "cascade"},
        {"id": "S", "name": "S", "type": "Schedule", "period": f"{period_minutes} minutes",
         "startDateTime": start.isoformat(), "endDateTime": end.isoformat()},
        *objects]}
    path.write_text(json.dumps(body))
    return path


def queue_ready(dsn: str, command: str, instances: int) -> str:
    """A pipeline whose ``instances`` instances of one ShellCommandActivity are written
    straight into the store, ready and queued for the default group (no scheduler needed:
    what the workers do with a full queue is what is tested). Returns the pipeline id."""
    import asyncio

    from benchmarks.workers import fill_queue

    return asyncio.run(fill_queue(dsn, instances, command))
