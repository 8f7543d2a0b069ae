"""The store's schema version: a store written by the first release is upgraded in place on
first use (its data kept), two processes opening it at once upgrade it once, and a store
newer than this code is refused without being touched. Run on SQLite here and on PostgreSQL
by tests/integration/test_store_pg.py (``shared_url`` overridden)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from engine.errors import StoreError
from engine.store import Status, open_store
from engine.store.schema import SCHEMA_VERSION
from tests.unit.store_v1 import write_v1_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def shared_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/old.db"


async def _make_v1(url: str) -> None:
    """Write a version-1 store at ``url`` through a bare backend (no migration)."""
    store = open_store(url)
    await store.backend.open()
    try:
        async with store.backend.transaction() as tx:
            await write_v1_store(tx, store.backend.dialect)
    finally:
        await store.backend.close()


async def test_a_version_1_store_is_upgraded_in_place_and_keeps_its_data(
        shared_url: str) -> None:
    await _make_v1(shared_url)
    async with open_store(shared_url) as store:
        assert store.found_version == 1
        rows = await store.backend.query("SELECT value FROM hr_meta WHERE key = 'schema'")
        assert rows == [(str(SCHEMA_VERSION),)]
        pipeline = await store.get_pipeline("df-OLD")
        assert pipeline.name == "old"
        [rec] = await store.list_instances("df-OLD")
        assert rec.status == Status.FINISHED and rec.attempts == 1
        assert rec.lease_version == 0 and rec.worker_id is None and rec.queued_at is None
        [attempt] = await store.list_attempts("df-OLD")
        assert attempt.host == "old-host:1" and attempt.worker_id is None
        # the new columns and table are usable
        assert await store.update_instance("df-OLD", rec.id, worker_group="etl",
                                           lease_version=3)
        assert (await store.get_instance("df-OLD", rec.id)).lease_version == 3
        assert await store.backend.query("SELECT COUNT(*) FROM hr_workers") == [(0,)]
    async with open_store(shared_url) as store:  # second open: nothing left to do
        assert store.found_version == SCHEMA_VERSION


async def test_two_processes_upgrading_at_once_upgrade_once(shared_url: str) -> None:
    await _make_v1(shared_url)
    found: list[int | None] = []

    async def open_one() -> None:
        async with open_store(shared_url) as store:
            found.append(store.found_version)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(open_one)
    assert sorted(found, key=str) == sorted([1, SCHEMA_VERSION, SCHEMA_VERSION], key=str)


async def test_a_newer_store_is_refused_untouched(shared_url: str) -> None:
    async with open_store(shared_url) as store, store.backend.transaction() as tx:
        await tx.execute("UPDATE hr_meta SET value = ? WHERE key = 'schema'",
                         str(SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer than "
                                         f"this headrace reads .*upgrade headrace"):
        await open_store(shared_url).open()
    store = open_store(shared_url)
    await store.backend.open()
    try:
        rows = await store.backend.query("SELECT value FROM hr_meta WHERE key = 'schema'")
    finally:
        await store.backend.close()
    assert rows == [(str(SCHEMA_VERSION + 1),)]
