"""Running one task per item, a bounded number at a time."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TypeVar

import anyio

from connectors.errors import single_failure

T = TypeVar("T")


async def each_at_most(parallel: int, items: Iterable[T] | AsyncIterable[T],
                       work: Callable[[T], Awaitable[None]]) -> None:
    """``work(item)`` for every item, ``parallel`` at a time.

    A slot is taken before an item's task starts and given back when it ends, so at most
    ``parallel`` tasks exist (a listing or a file of many parts is not one waiting task per
    item, and the items are drawn only as slots free up). The first failure cancels the rest
    and is raised as itself (:func:`connectors.errors.single_failure`).
    """
    slots = anyio.Semaphore(max(1, parallel))

    async def run(item: T) -> None:
        try:
            await work(item)
        finally:
            slots.release()

    with single_failure():
        async with anyio.create_task_group() as tg:
            if isinstance(items, AsyncIterable):
                async for item in items:
                    await slots.acquire()
                    tg.start_soon(run, item)
            else:
                for item in items:
                    await slots.acquire()
                    tg.start_soon(run, item)
