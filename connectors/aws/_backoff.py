"""Jittered exponential backoff, shared by every connector that retries (S3, DynamoDB)."""

from __future__ import annotations

import math
import random


def full_jitter(attempt: int, *, base: float, cap: float,
                rng: random.Random | None = None) -> float:
    """A delay drawn uniformly from ``[0, min(cap, base * 2**attempt)]`` (AWS's "full jitter"),
    so parallel workers do not retry in lockstep."""
    ceiling = min(cap, base * math.pow(2, min(attempt, 62)))
    return (rng or random).uniform(0, ceiling)
