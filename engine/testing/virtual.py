"""Run a pipeline definition in virtual time: an in-memory store, a clock on the event loop's
time, log file work inline, alarms kept in memory. For tests on trio's ``MockClock``
(``autojump_threshold=0``) together with :mod:`engine.testing.scripted`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from engine.actions.notify import Alarm
from engine.clock import Clock
from engine.definition import Definition, LoadOptions, load
from engine.errors import DefinitionError
from engine.runtime.pipeline import PipelineSupervisor
from engine.runtime.runner import RunResult, ensure_pipeline, run_window
from engine.store import AttemptRecord, InstanceRecord, Status, Store, open_store


@dataclass
class MemoryNotifier:
    sent: list[Alarm] = field(default_factory=list)

    async def publish(self, alarm: Alarm) -> None:
        self.sent.append(alarm)

    def of(self, action_id: str) -> list[Alarm]:
        return [a for a in self.sent if a.action_id == action_id]


def definition_from(body: dict[str, Any]) -> Definition:
    """Load a definition from its JSON body; validation errors raise DefinitionError."""
    definition, report = load("<test>", LoadOptions(), strict=True, text=json.dumps(body))
    if report.errors:
        raise DefinitionError(report.errors, report.warnings)
    return definition


@dataclass
class VirtualPipeline:
    """One pipeline in an in-memory store; ``run()`` runs a window as ``headrace run`` does."""

    store: Store
    clock: Clock
    log_root: Path
    pipeline_id: str = "df-virtual"
    notifier: MemoryNotifier = field(default_factory=MemoryNotifier)
    supervisor: PipelineSupervisor | None = None
    statuses: list[tuple[datetime, str, str]] = field(default_factory=list)

    async def run(self, body: dict[str, Any], *, start: datetime | None = None,
                  end: datetime | None = None, max_concurrency: int = 32,
                  on_start: Callable[[PipelineSupervisor], None] | None = None,
                  request_interval: float | None = 60.0,
                  worker_groups: dict[str, int] | None = None) -> RunResult:
        definition = definition_from(body)
        _, version = await ensure_pipeline(self.store, self.pipeline_id, "virtual", definition)

        def started(sup: PipelineSupervisor) -> None:
            self.supervisor = sup
            if on_start is not None:
                on_start(sup)

        def on_status(rec: InstanceRecord) -> None:
            self.statuses.append((self.clock.now(), rec.id, rec.status.value))

        return await run_window(self.store, self.pipeline_id, definition, version,
                                clock=self.clock, start=start, end=end,
                                notifier=self.notifier, max_concurrency=max_concurrency,
                                on_status=on_status, handle_signals=False,
                                log_root=self.log_root, inline_io=True, on_start=started,
                                request_interval=request_interval,
                                worker_groups=worker_groups)

    async def instance(self, instance_id: str) -> InstanceRecord:
        return await self.store.get_instance(self.pipeline_id, instance_id)

    async def attempts(self, instance_id: str) -> list[AttemptRecord]:
        return await self.store.list_attempts(self.pipeline_id, instance_id)

    async def wait_status(self, instance_id: str, *statuses: Status,
                          poll: float = 1.0) -> InstanceRecord:
        """Wait (in virtual time) until the running supervisor sees the instance in one of
        ``statuses``."""
        wanted = set(statuses)
        while True:
            sup = self.supervisor
            rec = sup.rt.instances.get(instance_id) if sup is not None else None
            if rec is not None and rec.status in wanted:
                return rec
            await anyio.sleep(poll)

    def history(self, instance_id: str) -> list[str]:
        """The statuses an instance went through, in order, as this process published them."""
        out: list[str] = []
        for _, iid, status in self.statuses:
            if iid == instance_id and (not out or out[-1] != status):
                out.append(status)
        return out


async def open_virtual(now: datetime, log_root: Path) -> VirtualPipeline:
    """An open in-memory store and a clock that reads ``now`` at this moment of the loop."""
    store = await open_store("sqlite://:memory:").open()
    return VirtualPipeline(store, Clock(start=now), log_root)


# --- building definitions --------------------------------------------------------------------

def pipeline(*objects: dict[str, Any], period: str = "15 minutes",
             start: str = "2024-01-01T00:00:00", end: str | None = "2024-01-01T01:00:00",
             schedule_type: str = "cron", **default: Any) -> dict[str, Any]:
    """A definition body: a Default (cron, schedule S, plus ``default`` fields), the Schedule
    ``S`` and ``objects``."""
    schedule: dict[str, Any] = {"id": "S", "name": "S", "type": "Schedule", "period": period,
                                "startDateTime": start}
    if end is not None:
        schedule["endDateTime"] = end
    base = {"id": "Default", "name": "Default", "scheduleType": schedule_type,
            "schedule": {"ref": "S"}, **default}
    return {"objects": [base, schedule, *objects]}


def activity(object_id: str, command: str = "ok", **fields: Any) -> dict[str, Any]:
    """A ShellCommandActivity whose ``command`` is a scripted behaviour."""
    return {"id": object_id, "name": object_id, "type": "ShellCommandActivity",
            "command": command, "workerGroup": "test", **fields}


def check(object_id: str, command: str = "true", **fields: Any) -> dict[str, Any]:
    """A ShellCommandPrecondition whose ``command`` is a scripted check."""
    return {"id": object_id, "name": object_id, "type": "ShellCommandPrecondition",
            "command": command, **fields}


def ref(object_id: str) -> dict[str, str]:
    return {"ref": object_id}
