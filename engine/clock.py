"""Time for the engine: wall-clock ``now()`` and sleeping, through one injectable object.

Every schedule, timeout, retry delay and lateness check goes through a :class:`Clock`. Its
wall time is derived from anyio's monotonic ``current_time()``, so under a virtual-time event
loop (trio's ``MockClock`` with ``autojump_threshold=0``) the engine runs hours of schedule in
milliseconds: tests build a ``Clock(start=...)`` and run on that loop.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio


class Clock:
    """Wall time = ``start`` + (monotonic now - monotonic at creation)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._wall0 = start if start is not None else datetime.now(UTC)
        self._mono0 = anyio.current_time()

    def __repr__(self) -> str:
        return f"<Clock now={self.now().isoformat(timespec='seconds')}>"

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=anyio.current_time() - self._mono0)

    def monotonic(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await anyio.sleep(seconds)
        else:
            await anyio.lowlevel.checkpoint()

    async def sleep_until(self, when: datetime) -> None:
        await self.sleep((when - self.now()).total_seconds())
