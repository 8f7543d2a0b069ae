"""The state store on SQLite (a file, and in memory). tests/integration/test_store_pg.py runs
these same tests against a real PostgreSQL by overriding the ``store_url`` and ``shared_url``
fixtures."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from engine.errors import NotFound, StoreError
from engine.runtime.runner import ensure_pipeline, run_window
from engine.store import (
    Action,
    AttemptRecord,
    AttemptStatus,
    InstanceRecord,
    PipelineState,
    Status,
    Store,
    open_store,
)
from engine.store.store import sqlite_path
from engine.testing.scripted import Script
from engine.testing.virtual import activity, definition_from, pipeline, ref

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["file", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.db" if request.param == "file" else "sqlite://:memory:"


@pytest.fixture
def shared_url(tmp_path: Path) -> str:
    """A store URL two Store objects (two connections) can open at once."""
    return f"sqlite:///{tmp_path}/shared.db"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    async with open_store(store_url) as s:
        yield s


def instance(pid: str, object_id: str, minute: int = 0, **fields: object) -> InstanceRecord:
    start = T0 + timedelta(minutes=minute)
    return InstanceRecord(pipeline_id=pid, id=f"@{object_id}_{minute}", object_id=object_id,
                          type="ShellCommandActivity", category="activity",
                          scheduled_start=start, scheduled_end=start + timedelta(minutes=15),
                          eligible_at=start, **fields)  # type: ignore[arg-type]


async def new_pipeline(store: Store, pid: str = "df-1") -> str:
    record = await store.create_pipeline("p", unique_id=f"u-{pid}", pipeline_id=pid)
    return record.id


# --- pipelines and definitions ---------------------------------------------------------------

async def test_create_pipeline_is_idempotent_by_unique_id(store: Store) -> None:
    first = await store.create_pipeline("p", unique_id="token")
    again = await store.create_pipeline("other name", unique_id="token")
    assert again.id == first.id and again.name == "p"
    assert first.id.startswith("df-") and len(first.id) == 23
    assert first.state == PipelineState.PENDING
    assert [p.id for p in await store.list_pipelines()] == [first.id]


async def test_definition_versions_and_not_found(store: Store) -> None:
    pid = await new_pipeline(store)
    assert await store.put_definition(pid, {"objects": [{"id": "a"}]}) == 1
    assert await store.put_definition(pid, {"objects": [{"id": "b"}]}) == 2
    assert (await store.get_pipeline(pid)).latest_version == 2
    assert await store.get_definition(pid, 1) == {"objects": [{"id": "a"}]}
    with pytest.raises(NotFound, match="no definition version 3"):
        await store.get_definition(pid, 3)
    with pytest.raises(NotFound, match="no pipeline 'df-nope'"):
        await store.get_pipeline("df-nope")
    with pytest.raises(NotFound):
        await store.put_definition("df-nope", {})


async def test_update_pipeline_round_trips_fields(store: Store) -> None:
    pid = await new_pipeline(store)
    await store.update_pipeline(pid, state=PipelineState.DEACTIVATING, cancel_active=False,
                                window_start=T0, window_end=None, active_version=3)
    record = await store.get_pipeline(pid)
    assert record.state == PipelineState.DEACTIVATING and record.cancel_active is False
    assert record.window_start == T0 and record.window_end is None
    assert record.active_version == 3


# --- instances -------------------------------------------------------------------------------

async def test_add_instances_keeps_existing_state(store: Store) -> None:
    """Activation inserts what is new and never resets what a run already did (resume)."""
    pid = await new_pipeline(store)
    await store.add_instances([instance(pid, "A"), instance(pid, "B", depends_on=["@A_0"])])
    await store.update_instance(pid, "@A_0", status=Status.FINISHED, attempts=1)
    await store.add_instances([instance(pid, "A"), instance(pid, "A", 15)])
    rows = {r.id: r for r in await store.list_instances(pid)}
    assert set(rows) == {"@A_0", "@B_0", "@A_15"}
    assert rows["@A_0"].status == Status.FINISHED and rows["@A_0"].attempts == 1
    assert rows["@B_0"].depends_on == ["@A_0"]


async def test_list_instances_filters(store: Store) -> None:
    pid = await new_pipeline(store)
    await store.add_instances([instance(pid, "A", m) for m in (0, 15, 30)]
                              + [instance(pid, "B", 0)])
    await store.update_instance(pid, "@A_15", status=Status.FAILED)
    assert [r.id for r in await store.list_instances(pid, object_id="A")] == [
        "@A_0", "@A_15", "@A_30"]
    assert [r.id for r in await store.list_instances(pid, statuses=[Status.FAILED])] == [
        "@A_15"]
    assert await store.list_instances(pid, statuses=[]) == []
    window = await store.list_instances(pid, scheduled_from=T0 + timedelta(minutes=15),
                                        scheduled_to=T0 + timedelta(minutes=30))
    assert [r.id for r in window] == ["@A_15"]


async def test_compare_and_set_updates(store: Store) -> None:
    pid = await new_pipeline(store)
    await store.add_instances([instance(pid, "A")])
    assert await store.update_instance(pid, "@A_0", expect=[Status.WAITING_ON_DEPENDENCIES],
                                       status=Status.WAITING_FOR_RUNNER)
    # a second writer that still believes the old status loses, and changes nothing
    assert not await store.update_instance(pid, "@A_0",
                                           expect=[Status.WAITING_ON_DEPENDENCIES],
                                           status=Status.CANCELED, error="late writer")
    rec = await store.get_instance(pid, "@A_0")
    assert rec.status == Status.WAITING_FOR_RUNNER and rec.error is None
    assert rec.updated_at is not None


async def test_start_and_end_attempt_are_conditional(store: Store) -> None:
    pid = await new_pipeline(store)
    await store.add_instances([instance(pid, "A", status=Status.WAITING_FOR_RUNNER)])
    rec = await store.get_instance(pid, "@A_0")
    attempt = AttemptRecord(pid, rec.id, 1, started_at=T0, host="h:1", log_path="/l")
    assert await store.start_attempt(rec, attempt, actual_start=T0)
    stale = AttemptRecord(pid, rec.id, 1, started_at=T0, host="h:2")
    assert not await store.start_attempt(rec, stale)  # rec.status is stale: refused
    running = await store.get_instance(pid, rec.id)
    assert running.status == Status.RUNNING and running.attempts == 1
    assert running.actual_start == T0
    attempt.status, attempt.ended_at, attempt.exit_code = AttemptStatus.FINISHED, T0, 0
    assert await store.end_attempt(attempt, {"status": Status.FINISHED, "actual_end": T0},
                                   expect=[Status.RUNNING])
    assert not await store.end_attempt(attempt, {"status": Status.FAILED},
                                       expect=[Status.RUNNING])
    assert (await store.get_instance(pid, rec.id)).status == Status.FINISHED
    [saved] = await store.list_attempts(pid, rec.id)
    assert saved.status == AttemptStatus.FINISHED and saved.exit_code == 0
    assert saved.host == "h:1" and saved.log_path == "/l" and saved.id == "@A_0_Attempt=1"


async def test_racing_attempt_starts_only_one_wins(shared_url: str) -> None:
    """Two store connections (two engine processes) start the same instance at once."""
    async with open_store(shared_url) as one, open_store(shared_url) as two:
        pid = await new_pipeline(one)
        await one.add_instances([instance(pid, "A", status=Status.WAITING_FOR_RUNNER)])
        results: list[bool] = []
        seen = [await one.get_instance(pid, "@A_0"), await two.get_instance(pid, "@A_0")]

        async def start(store: Store, rec: InstanceRecord, host: str) -> None:
            results.append(await store.start_attempt(
                rec, AttemptRecord(pid, rec.id, rec.attempts + 1, started_at=T0, host=host)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(start, one, seen[0], "one")
            tg.start_soon(start, two, seen[1], "two")
        assert sorted(results) == [False, True]
        assert len(await one.list_attempts(pid)) == 1
        # a reader that saw the instance after the winner started it cannot start it either
        late = await two.get_instance(pid, "@A_0")
        assert late.status == Status.RUNNING
        assert not await two.start_attempt(late, AttemptRecord(pid, late.id, 2))


# --- requests, pauses, leases ------------------------------------------------------------------

async def test_requests_are_taken_once_in_order(store: Store) -> None:
    pid = await new_pipeline(store)
    await store.add_request(pid, "@A_0", Action.RERUN)
    await store.add_request(pid, "@B_0", Action.MARK_FINISHED)
    await store.add_request("df-other", "@C_0", Action.TRY_CANCEL)
    taken = await store.take_requests(pid)
    assert [(r.target, r.action) for r in taken] == [("@A_0", Action.RERUN),
                                                      ("@B_0", Action.MARK_FINISHED)]
    assert await store.take_requests(pid) == []
    assert [r.target for r in await store.take_requests("df-other")] == ["@C_0"]


async def test_pause_flags(store: Store) -> None:
    pid = await new_pipeline(store)
    await store.set_paused(pid, "A", True)
    await store.set_paused(pid, "A", True)
    await store.set_paused(pid, "B", True)
    await store.set_paused(pid, "B", False)
    assert await store.paused(pid) == {"A"}


async def test_lease_is_exclusive_renewable_and_taken_over_when_expired(store: Store) -> None:
    later = T0 + timedelta(seconds=30)
    assert await store.acquire_lease("pipeline:x", "a", later, T0) is None
    assert await store.acquire_lease("pipeline:x", "b", later, T0) == "a"
    # renewing is taking it again as the same owner
    assert await store.acquire_lease("pipeline:x", "a", later + timedelta(seconds=30),
                                     T0 + timedelta(seconds=10)) is None
    assert await store.acquire_lease("pipeline:x", "b", later, T0 + timedelta(seconds=10)) \
        == "a"  # not yet
    # a renewal that has already run out (ends before "now", by any store's clock)
    assert await store.acquire_lease("pipeline:x", "a", T0, T0 + timedelta(seconds=1)) is None
    assert await store.acquire_lease("pipeline:x", "b", later + timedelta(seconds=1),
                                     T0 + timedelta(seconds=1)) is None
    assert (await store.lease_holder("pipeline:x"))[0] == "b"  # type: ignore[index]
    await store.release_lease("pipeline:x", "a")  # not a's: nothing happens
    assert (await store.lease_holder("pipeline:x"))[0] == "b"  # type: ignore[index]
    await store.release_lease("pipeline:x", "b")
    assert await store.lease_holder("pipeline:x") is None


async def test_lease_of_a_dead_owner_is_taken_at_once(store: Store) -> None:
    far = T0 + timedelta(hours=1)
    assert await store.acquire_lease("pipeline:x", "host:111", far, T0) is None
    assert await store.acquire_lease("pipeline:x", "host:222", far, T0,
                                     steal_from=["host:999"]) == "host:111"
    assert await store.acquire_lease("pipeline:x", "host:222", far, T0,
                                     steal_from=["host:111"]) is None


async def test_racing_lease_takers_only_one_wins(shared_url: str) -> None:
    async with open_store(shared_url) as one, open_store(shared_url) as two:
        await one.acquire_lease("pipeline:y", "old", T0 - timedelta(minutes=2),
                                T0 - timedelta(minutes=1))  # already run out
        results: dict[str, str | None] = {}

        async def take(store: Store, owner: str) -> None:
            results[owner] = await store.acquire_lease(
                "pipeline:y", owner, T0 + timedelta(minutes=1), T0 + timedelta(seconds=1))

        async with anyio.create_task_group() as tg:
            for n in range(4):
                tg.start_soon(take, one if n % 2 else two, f"owner{n}")
        winners = [o for o, holder in results.items() if holder is None]
        assert len(winners) == 1
        assert all(holder == winners[0] for o, holder in results.items() if o != winners[0])


async def test_delete_pipeline_removes_everything(store: Store) -> None:
    pid = await new_pipeline(store)
    await store.put_definition(pid, {"objects": []})
    await store.add_instances([instance(pid, "A", status=Status.WAITING_FOR_RUNNER)])
    rec = await store.get_instance(pid, "@A_0")
    await store.start_attempt(rec, AttemptRecord(pid, rec.id, 1, started_at=T0))
    await store.add_request(pid, "A", Action.PAUSE)
    await store.set_paused(pid, "A", True)
    await store.acquire_lease(f"pipeline:{pid}", "me", T0, T0)
    await store.delete_pipeline(pid)
    with pytest.raises(NotFound):
        await store.get_pipeline(pid)
    assert await store.list_instances(pid) == [] and await store.list_attempts(pid) == []
    assert await store.take_requests(pid) == [] and await store.paused(pid) == set()
    assert await store.lease_holder(f"pipeline:{pid}") is None


# --- resume through the run loop ---------------------------------------------------------------

async def test_run_resumes_from_the_store(shared_url: str, tmp_path: Path) -> None:
    """A second ``run`` against the same store and pipeline does not repeat finished work and
    runs what the first left undone (here: what waited on an instance marked failed)."""
    body = pipeline(activity("A"), activity("B", dependsOn=ref("A")),
                    end="2024-01-01T00:30:00")
    definition = definition_from(body)
    script = Script()
    with script.install():
        async with open_store(shared_url) as store:
            _, version = await ensure_pipeline(store, "df-resume", "resume", definition)
            first = await run_window(store, "df-resume", definition, version,
                                     handle_signals=False, log_root=tmp_path)
            assert first.succeeded and len(script.calls) == 4
            await store.update_instance("df-resume", "@B_2024-01-01T00:15:00",
                                        status=Status.WAITING_FOR_RUNNER, error=None)
        async with open_store(shared_url) as store:
            second = await run_window(store, "df-resume", definition, version,
                                      handle_signals=False, log_root=tmp_path)
            assert second.succeeded
            assert (await store.get_pipeline("df-resume")).state == PipelineState.FINISHED
    assert len(script.calls) == 5
    assert script.calls[-1].instance_id == "@B_2024-01-01T00:15:00"


async def test_run_refuses_a_pipeline_leased_by_another_live_process(shared_url: str,
                                                                     tmp_path: Path) -> None:
    definition = definition_from(pipeline(activity("A"), end="2024-01-01T00:15:00"))
    async with open_store(shared_url) as store:
        _, version = await ensure_pipeline(store, "df-busy", "busy", definition)
        await store.acquire_lease("pipeline:df-busy", "elsewhere:1",
                                  datetime.now(UTC) + timedelta(minutes=5), datetime.now(UTC))
        with pytest.raises(StoreError, match="being run by elsewhere:1"):
            await run_window(store, "df-busy", definition, version, handle_signals=False,
                             log_root=tmp_path)


# --- schema -----------------------------------------------------------------------------------

async def test_store_file_is_created_and_data_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/deep/dir/store.db"
    async with open_store(url) as store:
        pid = await new_pipeline(store)
    assert (tmp_path / "deep/dir/store.db").exists()
    async with open_store(url) as store:
        assert (await store.get_pipeline(pid)).name == "p"


async def test_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    async with open_store(url) as store, store.backend.transaction() as tx:
        await tx.execute("UPDATE hr_meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="schema version 99"):
        await open_store(url).open()


def test_store_urls() -> None:
    assert open_store("sqlite://:memory:").backend.path == ":memory:"  # type: ignore[attr-defined]
    assert open_store("/tmp/x.db").url == "sqlite:////tmp/x.db"
    pg = open_store("postgresql://user:secret@127.0.0.1/db")
    assert "secret" not in pg.url and "****" in pg.url
    with pytest.raises(StoreError, match="unknown store URL 'mysql://u:\\*\\*\\*\\*@h/d'"):
        open_store("mysql://u:pw@h/d")


def test_sqlite_urls_follow_sqlalchemy() -> None:
    assert sqlite_path("sqlite:///x.db") == "x.db"
    assert sqlite_path("sqlite:///data/x.db") == "data/x.db"
    assert sqlite_path("sqlite:////srv/x.db") == "/srv/x.db"
    assert sqlite_path("sqlite://") == sqlite_path("sqlite:///:memory:") == ":memory:"
    for ambiguous in ("sqlite://x.db", "sqlite:x.db", "sqlite:///"):
        with pytest.raises(StoreError, match=r"sqlite:///relative/path\.db or "):
            sqlite_path(ambiguous)
    assert open_store("x.db").url == "sqlite:///x.db"  # a path: the URL that means it


async def test_a_store_that_does_not_exist_is_made_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "new" / "store.db"
    with pytest.raises(StoreError, match=f"no store at {re.escape(str(path))} "):
        await open_store(str(path), create=False).open()
    assert not path.parent.exists()
    async with open_store(str(path)) as store:
        assert store.created and store.sqlite_path == str(path)
    async with open_store(str(path), create=False) as store:
        assert not store.created
