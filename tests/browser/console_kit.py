"""Driving the console in a browser: log in, open pages, read the grid, record requests."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.api_kit import KEY_ID, SECRET, Server, wire_objects

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
DEBIAN_CHROMIUM = "/usr/bin/chromium"
#: the servers' link to a trace (a tracing UI on loopback; the tests only read the link)
TRACE_URL = "http://127.0.0.1:16686/trace/{trace_id}"


def chromium_path() -> str | None:
    if Path(DEBIAN_CHROMIUM).exists():
        return DEBIAN_CHROMIUM
    return shutil.which("chromium")


class Console:
    def __init__(self, server: Server, context: Any) -> None:
        self.server = server
        self.context = context
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        self.page = context.new_page()
        self.page.on("dialog", self._dialog)
        self.page.set_default_timeout(20_000)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    @property
    def base(self) -> str:
        return f"{self.server.url}/console"

    def external_requests(self) -> list[str]:
        own = self.server.url + "/"
        return [u for u in self.requests
                if not (u.startswith(own) or u.startswith(("data:", "about:", "blob:")))]

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def login(self, key: str = KEY_ID, secret: str = SECRET) -> None:
        self.goto("/pipelines")
        self.page.fill("#access_key", key)
        self.page.fill("#secret_key", secret)
        self.page.click("form.login button[type=submit]")
        self.page.wait_for_load_state()

    def shot(self, name: str, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def grid(self) -> dict[str, str]:
        """instance id -> data-status of every cell of the grid on the page."""
        cells = self.page.eval_on_selector_all(
            "table.grid td[data-id]", "cells => cells.map(c => [c.dataset.id, c.dataset.status])")
        return dict(cells)

    def csrf(self) -> str:
        return str(self.page.get_attribute("meta[name=csrf-token]", "content"))


def make_pipeline(server: Server, name: str, objects: list[dict[str, Any]], *,
                  start: str = "2024-01-01T00:00:00", end: str = "2024-01-01T01:00:00",
                  period: str = "15 minutes", unique_id: str | None = None,
                  activate: bool = True, tags: dict[str, str] | None = None,
                  parameter_values: list[dict[str, str]] | None = None) -> str:
    """A pipeline through the API (as boto3 users make one): a Default with a schedule of
    ``period`` from ``start`` to ``end``, then ``objects``; activated from ``start``."""
    client = server.client()
    pid: str = client.create_pipeline(
        name=name, uniqueId=unique_id or name,
        tags=[{"key": k, "value": v} for k, v in (tags or {}).items()])["pipelineId"]
    body = [{"id": "Default", "name": "Default", "scheduleType": "cron",
             "schedule": {"ref": "S"}, "failureAndRerunMode": "cascade"},
            {"id": "S", "name": "S", "type": "Schedule", "period": period,
             "startDateTime": start, "endDateTime": end}, *objects]
    put = client.put_pipeline_definition(pipelineId=pid, pipelineObjects=wire_objects(*body),
                                         parameterValues=parameter_values or [])
    assert not put["errored"], json.dumps(put)
    if activate:
        client.activate_pipeline(pipelineId=pid, startTimestamp=start)
    return pid


def statuses(server: Server, pipeline_id: str) -> dict[str, str]:
    """instance id -> @status, from the API (QueryObjects then DescribeObjects)."""
    client = server.client()
    ids: list[str] = []
    marker = ""
    while True:
        page = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE", limit=1000,
                                    **({"marker": marker} if marker else {}))
        ids += page.get("ids", [])
        if not page.get("hasMoreResults"):
            break
        marker = page["marker"]
    out: dict[str, str] = {}
    for i in range(0, len(ids), 100):
        described = client.describe_objects(pipelineId=pipeline_id, objectIds=ids[i:i + 100])
        for obj in described["pipelineObjects"]:
            status = next(f["stringValue"] for f in obj["fields"] if f["key"] == "@status")
            out[obj["id"]] = status
    return out


def wait_until(predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
