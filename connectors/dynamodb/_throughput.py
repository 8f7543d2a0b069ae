"""Pacing DynamoDB traffic: a capacity-unit token bucket and jittered exponential backoff.

``readThroughputPercent`` / ``writeThroughputPercent`` cap a copy at a share of the table's
provisioned capacity. DynamoDB reports what a request *consumed* only afterwards, so the bucket
lets a request start while it holds any tokens and charges the real cost when the reply arrives
(it may go into debt; later requests wait until it is paid back). That keeps the average rate at
the cap without guessing item sizes up front.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from connectors.aws import full_jitter


class TokenBucket:
    """``rate`` capacity units per second, bursting to ``burst`` (default: one second's worth).

    ``clock`` and ``sleep`` are injectable so the pacing can be tested in virtual time.
    """

    def __init__(self, rate: float, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = anyio.sleep) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else self.rate
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = anyio.Lock()
        self.waited = 0.0  # total seconds spent waiting, for reports

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    async def acquire(self) -> None:
        """Wait until the bucket is out of debt (holds a positive balance). FIFO among waiters."""
        async with self._lock:
            self._refill()
            while self._tokens <= 0:
                delay = max((-self._tokens + 1e-9) / self.rate, 1e-3)
                self.waited += delay
                await self._sleep(delay)
                self._refill()

    def spend(self, units: float) -> None:
        """Charge ``units`` actually consumed (the balance may go negative)."""
        self._refill()
        self._tokens -= max(0.0, units)


def throughput_rate(percent: float | None, capacity_units: float | None) -> float | None:
    """Units per second allowed for ``percent`` of ``capacity_units``; None means no limit.

    No limit when no percent is asked, or the table has no provisioned capacity (on-demand, or
    unknown).
    """
    if percent is None or not capacity_units or capacity_units <= 0:
        return None
    return max(0.1, percent * capacity_units)


@dataclass
class RetryPolicy:
    """How a batch (or a scan page) is retried after throttling, transient faults or resends.

    ``max_attempts`` bounds the *consecutive* attempts that make no progress (a throttle, a
    transient fault, or a reply with every item unprocessed); any progress resets the count, so
    a batch that keeps shrinking always finishes while one that is starved fails in bounded time.
    """

    base_delay: float = 0.05
    max_delay: float = 5.0
    max_attempts: int = 12
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return full_jitter(attempt, base=self.base_delay, cap=self.max_delay, rng=self.rng)
