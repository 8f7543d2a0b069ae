"""engine.runtime.batches.Batched: callers that arrive together share one call of ``run``."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from engine.runtime.batches import Batched

pytestmark = pytest.mark.anyio


class _Store:
    """Stands in for one statement per batch: records the keys of each call."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    async def run(self, keys: Sequence[str]) -> dict[str, bool]:
        self.calls.append(list(keys))
        await anyio.sleep(0.01)  # a round trip: later callers queue meanwhile
        if self.fail:
            raise RuntimeError("the statement failed")
        return {k: True for k in keys if not k.startswith("gone")}


async def test_callers_that_arrive_together_ride_few_batches() -> None:
    store = _Store()
    batched = Batched(store.run, False)
    results: dict[str, bool] = {}

    async def call(key: str) -> None:
        results[key] = await batched(key)

    async with anyio.create_task_group() as tg:
        for n in range(100):
            tg.start_soon(call, f"i{n}")
        tg.start_soon(call, "gone-1")
    assert results == {**{f"i{n}": True for n in range(100)}, "gone-1": False}
    # the first caller leads alone; everyone who arrived during its trip rides the second
    assert [len(c) for c in store.calls] == [1, 100]
    assert sorted(k for c in store.calls for k in c) == sorted(results)


async def test_a_lone_call_is_sent_at_once() -> None:
    store = _Store()
    batched = Batched(store.run, False)
    with anyio.fail_after(1):
        assert await batched("i1") is True
        assert await batched("i2") is True
    assert store.calls == [["i1"], ["i2"]]


async def test_a_failed_batch_fails_each_of_its_callers() -> None:
    batched = Batched(_Store(fail=True).run, False)
    errors: list[str] = []

    async def call(key: str) -> None:
        try:
            await batched(key)
        except RuntimeError as exc:
            errors.append(str(exc))

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(call, f"i{n}")
    assert errors == ["the statement failed"] * 5


async def test_a_cancelled_caller_still_waits_for_its_batch() -> None:
    """What the store did is never in doubt: a caller whose deadline passes during the batch
    still gets its answer; the cancellation reaches it at its next checkpoint."""
    store = _Store()
    batched = Batched(store.run, False)
    answers: list[bool] = []
    with anyio.move_on_after(0.001) as scope:
        answers.append(await batched("i1"))
        await anyio.sleep(1)
    assert scope.cancelled_caught
    assert answers == [True]
    assert store.calls == [["i1"]]


async def test_batches_are_bounded() -> None:
    store = _Store()
    batched = Batched(store.run, False, limit=10)
    async with anyio.create_task_group() as tg:
        for n in range(25):
            tg.start_soon(batched, f"i{n}")
    assert [len(c) for c in store.calls] == [1, 10, 10, 4]
