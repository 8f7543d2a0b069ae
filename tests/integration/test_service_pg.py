"""The service layer's store look-ups (QueryObjects filters and keyset pages, deleted
pipelines) against a real PostgreSQL on loopback: the same tests as on SQLite."""

from __future__ import annotations

import pytest

from tests.unit.test_service_query import (  # noqa: F401  (collected here against PostgreSQL)
    objects,
    test_deleted_pipelines_are_told_apart,
    test_markers_are_checked,
    test_selectors_filter_in_the_store,
)


@pytest.fixture
def store_url(pg_database: str) -> str:
    return pg_database
