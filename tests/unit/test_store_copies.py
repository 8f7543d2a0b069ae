"""The incremental copies' tables of the store (``hr_copies``, ``hr_copy_runs``) on SQLite;
tests/integration/test_store_copies_pg.py runs the same tests on PostgreSQL. And the lease
under which one copy's runs take turns (engine.activities.incremental.one_at_a_time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from engine.activities.incremental import CopyLeaseLost, lease_owner, one_at_a_time
from engine.store import Store, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture
def shared_url(store_url: str) -> str:
    """A store URL two Store objects (two connections) can open at once."""
    return store_url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with open_store(store_url) as s:
        yield s


async def record(store: Store, key: str, rows: int, mark: str,
                 instance: str | None = None) -> int:
    return await store.record_copy_run(key, source="src", dest="dst", column="ts",
                                       state=f'{{"mark": "{mark}"}}', rows=rows,
                                       watermark=mark, instance_id=instance)


async def test_runs_are_numbered_and_instances_show_their_latest(store: Store) -> None:
    assert await record(store, "activity:df-1/Load", 50, "a", "@Load_1") == 1
    assert await record(store, "activity:df-1/Load", 0, "a", "@Load_2") == 2
    assert await record(store, "activity:df-1/Load", 7, "b", "@Load_2") == 3  # a rerun
    assert await record(store, "activity:df-10/Load", 9, "x", "@Load_1") == 1
    assert await record(store, "copy:abc", 3, "c") == 1
    copy = await store.copy_state("activity:df-1/Load")
    assert copy is not None and (copy.runs, copy.rows_moved, copy.state) == \
        (3, 57, '{"mark": "b"}')
    # only df-1's instances, not df-10's (whose key shares the prefix), each its latest run
    assert await store.instance_copy_runs("df-1") == {"@Load_1": (50, "a"),
                                                      "@Load_2": (7, "b")}
    assert await store.instance_copy_runs("df-2") == {}
    assert [r[:3] for r in await store.copy_runs("activity:df-1/Load")] == \
        [(1, 50, "a"), (2, 0, "a"), (3, 7, "b")]


async def test_a_store_made_before_instance_ids_gains_the_column(shared_url: str) -> None:
    async with open_store(shared_url) as old, old.backend.transaction() as tx:
        await tx.execute("CREATE TABLE hr_copy_runs (copy_key TEXT NOT NULL, run INTEGER "
                         "NOT NULL, rows_moved INTEGER NOT NULL, watermark TEXT, "
                         "finished_at TEXT NOT NULL, PRIMARY KEY (copy_key, run))")
        await tx.execute("INSERT INTO hr_copy_runs VALUES ('copy:old', 1, 5, 'w', 'then')")
    async with open_store(shared_url) as one, open_store(shared_url) as two:
        async with anyio.create_task_group() as tg:  # two processes' first use at once
            tg.start_soon(one.instance_copy_runs, "df-1")
            tg.start_soon(two.instance_copy_runs, "df-1")
        assert await record(one, "activity:df-1/A", 1, "m", "@A_1") == 1
        assert await two.instance_copy_runs("df-1") == {"@A_1": (1, "m")}
        assert [r[:3] for r in await two.copy_runs("copy:old")] == [(1, 5, "w")]


async def test_runs_of_one_copy_take_turns(shared_url: str) -> None:
    now = datetime.now(UTC)
    order: list[str] = []
    async with open_store(shared_url) as one, open_store(shared_url) as two:

        async def run(store: Store, name: str) -> None:
            async with one_at_a_time(store, "copy:k", lease_owner(name),
                                     lambda: datetime.now(UTC)):
                order.append(f"{name} in")
                await anyio.sleep(0.3)
                order.append(f"{name} out")

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, one, "a")
            await anyio.sleep(0.05)
            tg.start_soon(run, two, "b")
        assert order == ["a in", "a out", "b in", "b out"]
        # a lease whose holder is a dead process on this host is taken over at once
        dead = lease_owner("x").rsplit(":", 1)[0] + ":999999999"
        assert await one.acquire_lease("increment:copy:d", dead, now.replace(year=2100),
                                       now) is None
        with anyio.fail_after(5):
            async with one_at_a_time(two, "copy:d", lease_owner("y"), lambda: now):
                pass


async def test_a_run_that_lost_its_lease_is_stopped(store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.activities.incremental as incremental

    monkeypatch.setattr(incremental, "LEASE_SECONDS", 0.3)
    with pytest.raises(CopyLeaseLost, match="took over its lease"):
        async with one_at_a_time(store, "copy:l", lease_owner("a"),
                                 lambda: datetime.now(UTC)):
            far = datetime.now(UTC).replace(year=2100)
            await store.release_lease("increment:copy:l", lease_owner("a"))
            assert await store.acquire_lease("increment:copy:l", "other@elsewhere:1", far,
                                              datetime.now(UTC)) is None
            await anyio.sleep(5)  # cancelled when the renewal finds the other owner
