"""Where SnsAlarm messages go: SNS, or the local log. Never silently dropped.

The notifier is chosen by ``HEADRACE_NOTIFIER`` (``sns`` or ``log``); unset, SNS is used when an
SNS endpoint is configured (``AWS_ENDPOINT_URL_SNS`` or ``AWS_ENDPOINT_URL``), else the log. A
message SNS refuses is written to the log with the reason.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio

from engine.owner_only import make_private_dirs
from engine.store.records import utcnow

log = logging.getLogger("headrace.alarms")


@dataclass
class Alarm:
    pipeline_id: str
    action_id: str
    topic_arn: str
    subject: str
    message: str
    node: str


class Notifier(Protocol):
    async def publish(self, alarm: Alarm) -> None: ...


@dataclass
class LogNotifier:
    """Appends each alarm as a JSON line to ``path`` and to the ``headrace.alarms`` logger."""

    path: Path
    sent: list[Alarm] = field(default_factory=list)

    async def publish(self, alarm: Alarm) -> None:
        self.sent.append(alarm)
        line = json.dumps({"time": utcnow().isoformat(), **alarm.__dict__}) + "\n"
        log.warning("alarm %s for %s: %s", alarm.action_id, alarm.node, alarm.subject)

        def write() -> None:
            make_private_dirs(self.path.parent)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)

        await anyio.to_thread.run_sync(write)


@dataclass
class SnsNotifier:
    fallback: LogNotifier

    async def publish(self, alarm: Alarm) -> None:
        from connectors.aws import publish_sns

        try:
            await publish_sns(alarm.topic_arn, alarm.subject, alarm.message)
        except Exception as exc:  # a refused alarm must still be seen
            log.error("SNS refused alarm %s: %s; logging it instead", alarm.action_id, exc)
            await self.fallback.publish(alarm)


def default_notifier(log_dir: Path) -> Notifier:
    fallback = LogNotifier(log_dir / "alarms.jsonl")
    choice = os.environ.get("HEADRACE_NOTIFIER", "").lower()
    if choice == "sns" or (choice != "log" and (os.environ.get("AWS_ENDPOINT_URL_SNS")
                                                or os.environ.get("AWS_ENDPOINT_URL"))):
        return SnsNotifier(fallback)
    return fallback
