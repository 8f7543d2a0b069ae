"""Group commit: blocking calls that arrive together share one worker-thread trip."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from engine.store.trips import Trips, run_each

pytestmark = pytest.mark.anyio


async def test_calls_arriving_during_a_trip_share_the_next_one() -> None:
    trips = Trips()
    gate = threading.Event()
    results: dict[int, int] = {}

    def first() -> int:
        gate.wait(10)
        return -1

    async def call(n: int) -> None:
        results[n] = await trips.run(lambda: n * n)

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: trips.run(first))
        await anyio.sleep(0.05)  # the first trip is in the thread, blocked on the gate
        for n in range(20):
            tg.start_soon(call, n)
        await anyio.sleep(0.05)
        gate.set()
    assert results == {n: n * n for n in range(20)}
    assert trips.calls == 21 and trips.trips == 2


async def test_an_error_goes_to_its_own_caller_only() -> None:
    trips = Trips()
    gate = threading.Event()
    outcomes: list[object] = []

    def boom() -> None:
        raise ValueError("boom")

    async def call(fn: Any) -> None:
        try:
            outcomes.append(await trips.run(fn))
        except ValueError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, lambda: gate.wait(10))
        await anyio.sleep(0.05)
        tg.start_soon(call, boom)
        tg.start_soon(call, lambda: "fine")
        await anyio.sleep(0.05)
        gate.set()
    assert outcomes[0] is True and "fine" in outcomes
    assert any(isinstance(o, ValueError) for o in outcomes)
    assert trips.trips == 2


async def test_a_failed_trip_fails_every_call_in_it() -> None:
    def runner(calls: Sequence[Any]) -> None:
        run_each(calls)
        raise OSError("commit failed")

    trips = Trips(runner=runner)
    with pytest.raises(OSError, match="commit failed"):
        await trips.run(lambda: 1)


async def test_a_cancelled_caller_still_waits_for_its_call() -> None:
    trips = Trips()
    gate = threading.Event()
    done: list[str] = []

    def slow() -> None:
        gate.wait(10)
        done.append("ran")

    with anyio.move_on_after(0.05) as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(trips.run, slow)
            await anyio.sleep(0.01)
            threading.Timer(0.2, gate.set).start()
    assert scope.cancelled_caught
    assert done == ["ran"]  # the caller returned only once the call had finished


async def test_inline_trips_run_in_the_event_loop_thread() -> None:
    trips = Trips(inline=True)
    main = threading.get_ident()
    assert await trips.run(threading.get_ident) == main
