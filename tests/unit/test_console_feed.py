"""The console's change feed and read models over a real SQLite store: a change is seen once
per look whatever the number of pages, each page gets only its pipeline's changes, a page that
falls behind is dropped (told to reload) without holding the others, and the grid and pipeline
overview read the store in a few queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.server.console.feed import BATCH_MAX, BUFFER, ChangeFeed
from engine.service import PipelineService
from engine.service.overview import Overview
from engine.store import InstanceRecord, Status, Store, open_store

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BODY: dict[str, Any] = {"objects": [
    {"id": "Default", "name": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}},
    {"id": "S", "name": "S", "type": "Schedule", "period": "1 hour",
     "startDateTime": "2024-01-01T00:00:00"},
    {"id": "A", "name": "A", "type": "ShellCommandActivity", "command": "true"},
    {"id": "B", "name": "B", "type": "ShellCommandActivity", "command": "true",
     "dependsOn": {"ref": "A"}}]}


async def pipeline(store: Store, name: str, intervals: int = 3) -> str:
    record = await PipelineService(store).create(name, name)
    version = await store.put_definition(record.id, BODY)
    await store.update_pipeline(record.id, active_version=version)
    rows = []
    for i in range(intervals):
        start = T0 + timedelta(hours=i)
        stamp = f"{start:%Y-%m-%dT%H:%M:%S}"
        for oid in ("A", "B"):
            rows.append(InstanceRecord(
                record.id, f"@{oid}_{stamp}", oid, "ShellCommandActivity", "activity", start,
                start + timedelta(hours=1), start,
                status=Status.FINISHED if oid == "A" else Status.WAITING_ON_DEPENDENCIES,
                depends_on=[f"@A_{stamp}"] if oid == "B" else []))
    await store.add_instances(rows)
    return record.id


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/s.db"


@pytest.fixture
async def store(store_url: str):  # type: ignore[no-untyped-def]
    async with open_store(store_url) as opened:
        yield opened


@pytest.mark.anyio
async def test_one_look_serves_every_page_and_each_gets_its_pipeline(store: Store) -> None:
    first, second = await pipeline(store, "one"), await pipeline(store, "two")
    feed = ChangeFeed(store)
    with feed.subscribe(first) as mine, feed.subscribe(None) as every, \
            feed.subscribe(second) as other:
        assert await feed.poll() == []  # the first look takes note only
        await store.update_instance(first, "@B_2024-01-01T00:00:00", status=Status.RUNNING)
        changes = await feed.poll()
        assert [(c.kind, c.pipeline_id) for c in changes] == [
            ("instances", first), ("summary", first)]  # the page's, and the pipelines row
        assert changes[0].data["changes"] == [{
            "id": "@B_2024-01-01T00:00:00", "component": "B", "status": "RUNNING",
            "late": False, "attempts": 0}]
        assert changes[1].data["counts"] == {"FINISHED": 3, "RUNNING": 1,
                                             "WAITING_ON_DEPENDENCIES": 2}
        assert [h["status"] for h in changes[1].data["recent"]] == [
            "RUNNING", "WAITING_ON_DEPENDENCIES", "WAITING_ON_DEPENDENCIES"]
        feed.publish(changes)
        assert (await mine.receive()).data["changes"][0]["status"] == "RUNNING"
        assert (await every.receive()).kind == "summary"  # the pipelines page: rows only
        with pytest.raises(anyio.WouldBlock):
            every.receive_nowait()
        with pytest.raises(anyio.WouldBlock):
            mine.receive_nowait()  # a pipeline's page gets no row summary
        with pytest.raises(anyio.WouldBlock):
            other.receive_nowait()
        # seen once: the next look inside the overlap window does not repeat it
        assert await feed.poll() == []
        await store.update_pipeline(second, state="SCHEDULED")
        await store.set_paused(second, "A", True)
        kinds = {(c.kind, c.pipeline_id) for c in await feed.poll()}
        assert kinds == {("pipeline", second), ("paused", second)}
    # per look, whatever the number of pages; and four per row summary
    assert feed.stats.summaries == 1
    assert feed.stats.queries == 4 * feed.stats.ticks + 4 * feed.stats.summaries


@pytest.mark.anyio
async def test_a_page_that_falls_behind_is_dropped_and_the_others_go_on(store: Store) -> None:
    pid = await pipeline(store, "busy", intervals=BUFFER + 5)
    feed = ChangeFeed(store)
    with feed.subscribe(pid) as slow, feed.subscribe(pid) as fast:
        await feed.poll()
        for i in range(BUFFER + 2):
            stamp = f"{T0 + timedelta(hours=i):%Y-%m-%dT%H:%M:%S}"
            await store.update_instance(pid, f"@B_{stamp}", status=Status.RUNNING)
            changes = await feed.poll()
            feed.publish(changes)
            assert len(changes) == 1
            await fast.receive()  # this page keeps up
        assert feed.subscribers == 1 and feed.stats.dropped_subscribers == 1
        received = 0
        with pytest.raises(anyio.EndOfStream):
            while True:
                await slow.receive()
                received += 1
        assert received == BUFFER  # what it had, then the end: reload


@pytest.mark.anyio
async def test_the_grid_and_the_overview_read_the_store(store: Store) -> None:
    pid = await pipeline(store, "grid", intervals=4)
    await store.update_instance(pid, "@A_2024-01-01T03:00:00", status=Status.FAILED)
    await store.update_instance(pid, "@A_2024-01-01T02:00:00", status=Status.RUNNING)
    grid = await Overview(store).grid(pid, BODY, intervals=3)
    assert [t.hour for t in grid.intervals] == [1, 2, 3]
    assert [row.component for row in grid.rows] == ["A", "B"]
    assert grid.total == 8 and grid.shown == 6
    b = grid.rows[1].cells[grid.keys[2]]
    assert (b.status, b.waiting_on) == ("WAITING_ON_DEPENDENCIES", ["@A_2024-01-01T03:00:00"])
    assert grid.rows[1].cells[grid.keys[0]].waiting_on == []  # A finished
    [overview] = await Overview(store).pipelines()
    assert overview.schedule == "every 1 hour from 2024-01-01T00:00:00"
    # each interval's worst status
    assert [h.status for h in overview.recent] == ["WAITING_ON_DEPENDENCIES",
                                                   "WAITING_ON_DEPENDENCIES", "RUNNING", "FAILED"]
    assert overview.counts == {"FINISHED": 2, "WAITING_ON_DEPENDENCIES": 4, "RUNNING": 1,
                               "FAILED": 1}
    assert overview.failing == 1


@pytest.mark.anyio
async def test_a_look_s_changes_are_one_event_and_a_huge_burst_a_reload(store: Store) -> None:
    pid = await pipeline(store, "burst", intervals=BATCH_MAX + 41)
    feed = ChangeFeed(store)
    waiting = await store.list_instances(pid, statuses=[Status.WAITING_ON_DEPENDENCIES])
    with feed.subscribe(pid) as page, feed.subscribe(None) as overview:
        await feed.poll()
        for inst in waiting[:40]:
            await store.update_instance(pid, inst.id, status=Status.RUNNING)
        changes = await feed.poll()
        assert [c.kind for c in changes] == ["instances", "summary"]
        assert len(changes[0].data["changes"]) == 40  # one slot of a page's buffer
        feed.publish(changes)
        assert len((await page.receive()).data["changes"]) == 40
        row = await overview.receive()  # the pipelines page: the row, nothing else
        assert row.kind == "summary" and row.data["counts"]["RUNNING"] == 40
        for inst in waiting[40:]:
            await store.update_instance(pid, inst.id, status=Status.RUNNING)
        changes = await feed.poll()
        assert [c.kind for c in changes] == ["planned", "summary"]
        assert changes[0].data == {"changed": BATCH_MAX + 1}
        feed.publish(changes)
        assert (await page.receive()).kind == "planned"  # the grid reloads once
        with pytest.raises(anyio.WouldBlock):
            page.receive_nowait()
