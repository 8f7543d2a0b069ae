"""tests/unit/test_store_copies.py against a real PostgreSQL on loopback (a fresh database
per test)."""

from __future__ import annotations

import pytest

from tests.unit.test_store_copies import (  # noqa: F401  (collected here against PostgreSQL)
    store,
    test_a_run_that_lost_its_lease_is_stopped,
    test_a_store_made_before_instance_ids_gains_the_column,
    test_runs_are_numbered_and_instances_show_their_latest,
    test_runs_of_one_copy_take_turns,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def store_url(pg_database: str) -> str:
    return pg_database


@pytest.fixture
def shared_url(pg_database: str) -> str:
    return pg_database
