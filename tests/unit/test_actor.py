"""Actor building blocks: bounded mailboxes, supervisors (restart policies, intensity, per-child
cancellation) and the repr that shows live children; on trio's MockClock."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from trio.testing import MockClock

from engine.runtime.actor import Mailbox, Supervisor, SupervisorFailed
from engine.store import Status
from engine.testing.scripted import Script
from engine.testing.virtual import activity, open_virtual, pipeline

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


@pytest.mark.parametrize("size", [0, -1, math.inf])
async def test_mailbox_must_be_bounded(size: float) -> None:
    with pytest.raises(ValueError, match="bounded"):
        Mailbox(size)  # type: ignore[arg-type]


async def test_full_mailbox_blocks_the_sender() -> None:
    box: Mailbox[int] = Mailbox(2)
    assert box.send_nowait(1) and box.send_nowait(2)
    assert not box.send_nowait(3)
    assert repr(box) == "<Mailbox 2/2>"
    with anyio.move_on_after(5) as scope:
        await box.send(3)
    assert scope.cancelled_caught  # still blocked after 5 s: backpressure, not an error
    assert await box.receive() == 1
    await box.send(3)
    box.close()
    assert not box.send_nowait(4)


async def test_supervisor_repr_names_live_children() -> None:
    sup = Supervisor("demo")
    async with sup:
        release = anyio.Event()
        sup.spawn("alpha", release.wait)
        sup.spawn("beta", release.wait)
        await anyio.sleep(1)
        assert repr(sup) == "<Supervisor demo 2 live: alpha, beta>"
        release.set()
        await anyio.sleep(1)
        assert repr(sup) == "<Supervisor demo 0 live>"


async def test_on_exit_is_told_once_a_child_has_ended_for_good() -> None:
    """A monitor: after the child left ``children``, once, whether it returned, failed (its
    error handled first) or was cancelled."""
    events: list[tuple[str, str, bool]] = []

    async def on_error(name: str, exc: BaseException) -> None:
        events.append(("handled", name, name in sup.children))

    sup = Supervisor("demo", on_error=on_error)

    async def fails() -> None:
        raise RuntimeError("boom")

    def exit_of(name: str) -> Callable[[], None]:
        return lambda: events.append(("exit", name, name in sup.children))

    async with sup:
        sup.spawn("done", anyio.sleep, 1, on_exit=exit_of("done"))
        sup.spawn("failed", fails, on_exit=exit_of("failed"))
        child = sup.spawn("cancelled", anyio.sleep_forever, on_exit=exit_of("cancelled"))
        await anyio.sleep(2)
        child.cancel()
        await anyio.sleep(1)
    assert events == [("handled", "failed", True), ("exit", "failed", False),
                      ("exit", "done", False), ("exit", "cancelled", False)]


async def test_one_child_can_be_cancelled_without_its_siblings() -> None:
    sup = Supervisor("demo")
    finished: list[str] = []

    async def work(name: str) -> None:
        await anyio.sleep(10)
        finished.append(name)

    async with sup:
        sup.spawn("a", work, "a")
        sup.spawn("b", work, "b")
        await anyio.sleep(1)
        sup.children["a"].cancel()
    assert finished == ["b"]


async def test_transient_child_restarts_after_errors_then_succeeds() -> None:
    calls: list[float] = []

    async def flaky() -> None:
        calls.append(anyio.current_time())
        if len(calls) < 3:
            raise RuntimeError("boom")

    async with Supervisor("demo", max_restarts=5) as sup:
        sup.spawn("flaky", flaky, restart="transient")
    assert len(calls) == 3
    assert calls[1] > calls[0] and calls[2] > calls[1]  # restarts back off


async def test_restart_intensity_exceeded_fails_the_supervisor() -> None:
    async def always() -> None:
        raise RuntimeError("boom")

    with pytest.raises(BaseExceptionGroup) as info:
        async with Supervisor("demo", max_restarts=2, max_seconds=60) as sup:
            sup.spawn("bad", always, restart="permanent")
    assert info.group_contains(SupervisorFailed, match="restarted more than 2 times")


async def test_temporary_child_error_goes_to_on_error() -> None:
    seen: list[tuple[str, str]] = []

    async def on_error(name: str, exc: BaseException) -> None:
        seen.append((name, str(exc)))

    async def bad() -> None:
        raise RuntimeError("boom")

    async with Supervisor("demo", on_error=on_error) as sup:
        sup.spawn("bad", bad)
        sup.spawn("good", anyio.sleep, 1)
    assert seen == [("bad", "boom")]


async def test_spawn_needs_a_running_supervisor_and_unique_names() -> None:
    sup = Supervisor("demo")
    with pytest.raises(RuntimeError, match="not running"):
        sup.spawn("x", anyio.sleep, 1)
    async with sup:
        sup.spawn("x", anyio.sleep, 1)
        with pytest.raises(RuntimeError, match="already has a child"):
            sup.spawn("x", anyio.sleep, 1)


async def test_pipeline_supervisor_repr_shows_its_instance_actors(tmp_path: Path) -> None:
    now = datetime(2024, 1, 2, tzinfo=UTC)
    vp = await open_virtual(now, tmp_path)
    body = pipeline(activity("A", "sleep 600"), activity("B", "sleep 1200"),
                    end="2024-01-01T00:15:00")
    seen: list[str] = []

    async def watch() -> None:
        await vp.wait_status("@B_2024-01-01T00:00:00", Status.RUNNING)
        await vp.wait_status("@A_2024-01-01T00:00:00", Status.FINISHED)
        seen.append(repr(vp.supervisor))

    with Script().install():
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            result = await vp.run(body)
    assert result.succeeded
    assert seen == ["<PipelineSupervisor df-virtual run 1/2 instances ended; "
                    "2 live: @B_2024-01-01T00:00:00, requests>"]
    assert vp.clock.now() == now + timedelta(seconds=1200)
    await vp.store.close()
