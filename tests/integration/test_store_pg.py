"""The store tests of tests/unit/test_store.py, against a real PostgreSQL on loopback (a fresh
database per test): CAS updates, racing attempt starts and lease takers on two connection
pools, requests, resume through the run loop."""

from __future__ import annotations

import pytest

from tests.unit.test_store import (  # noqa: F401  (collected here against PostgreSQL)
    store,
    test_add_instances_keeps_existing_state,
    test_compare_and_set_updates,
    test_create_pipeline_is_idempotent_by_unique_id,
    test_definition_versions_and_not_found,
    test_delete_pipeline_removes_everything,
    test_lease_is_exclusive_renewable_and_taken_over_when_expired,
    test_lease_of_a_dead_owner_is_taken_at_once,
    test_list_instances_filters,
    test_pause_flags,
    test_racing_attempt_starts_only_one_wins,
    test_racing_lease_takers_only_one_wins,
    test_requests_are_taken_once_in_order,
    test_run_refuses_a_pipeline_leased_by_another_live_process,
    test_run_resumes_from_the_store,
    test_start_and_end_attempt_are_conditional,
    test_update_pipeline_round_trips_fields,
)
from tests.unit.test_store_schema import (  # noqa: F401  (the upgrade, on PostgreSQL)
    test_a_newer_store_is_refused_untouched,
    test_a_version_1_store_is_upgraded_in_place_and_keeps_its_data,
    test_two_processes_upgrading_at_once_upgrade_once,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def store_url(pg_database: str) -> str:
    return pg_database


@pytest.fixture
def shared_url(pg_database: str) -> str:
    return pg_database


async def test_postgres_errors_become_store_errors(pg_database: str) -> None:
    from engine.errors import StoreError
    from engine.store import open_store

    async with open_store(pg_database) as s:
        with pytest.raises(StoreError, match="UndefinedTableError"):
            async with s.backend.transaction() as tx:
                await tx.fetch("SELECT * FROM no_such_table")



async def test_pipeline_leases_are_measured_by_the_database_clock(pg_database: str) -> None:
    """Engines whose clocks are ten minutes apart share a pipeline lease by the database's
    clock: the one ahead does not find a live lease expired, the one behind does not find a
    lapsed lease still held; what is stored is the database's time."""
    from datetime import UTC, datetime, timedelta

    import anyio

    from engine.store import open_store

    real = datetime.now(UTC)
    ahead, behind = real + timedelta(minutes=10), real - timedelta(minutes=10)
    async with open_store(pg_database) as s:
        assert await s.acquire_lease("pipeline:z", "behind", behind + timedelta(seconds=2),
                                     behind) is None
        holder = await s.lease_holder("pipeline:z")
        assert holder is not None and abs(holder[1] - real) < timedelta(seconds=30)
        assert await s.acquire_lease("pipeline:z", "ahead", ahead + timedelta(seconds=30),
                                     ahead) == "behind"  # live, whatever "ahead" thinks
        await anyio.sleep(2.5)
        assert await s.acquire_lease("pipeline:z", "ahead", ahead + timedelta(seconds=2),
                                     ahead) is None  # lapsed by the database's clock
        await anyio.sleep(2.5)
        assert await s.acquire_lease("pipeline:z", "behind", behind + timedelta(seconds=30),
                                     behind) is None  # lapsed, whatever "behind" thinks
