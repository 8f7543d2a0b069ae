"""Cutting a table's sorted keys into ranges for partitioned reads (PostgreSQL and MySQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def quantiles(keys: Sequence[tuple[Any, ...]], n: int) -> list[tuple[Any, ...]]:
    """At most ``n - 1`` distinct boundaries cutting ``keys`` (in key order) into ``n`` runs."""
    bounds: list[tuple[Any, ...]] = []
    for i in range(1, n):
        k = keys[i * len(keys) // n]
        if k != keys[0] and (not bounds or k != bounds[-1]):
            bounds.append(k)
    return bounds
