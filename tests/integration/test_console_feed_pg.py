"""The console's change feed, grid and pipeline overview against a real PostgreSQL store (a
shared store is how several engines and servers run): the same tests as on SQLite."""

from __future__ import annotations

import pytest

from tests.unit.test_console_feed import (  # noqa: F401  (collected here against PostgreSQL)
    store,
    test_a_look_s_changes_are_one_event_and_a_huge_burst_a_reload,
    test_a_page_that_falls_behind_is_dropped_and_the_others_go_on,
    test_one_look_serves_every_page_and_each_gets_its_pipeline,
    test_the_grid_and_the_overview_read_the_store,
)


@pytest.fixture
def store_url(pg_database: str) -> str:
    return pg_database
