"""engine.runtime.attempt and engine.runtime.precondition driven without a PipelineSupervisor,
as a worker process holding one claimed attempt would: a runtime, a host that says where logs
go, the instance record from the store; and their rules (retry budget, when to check again)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from trio.testing import MockClock

from engine.activities.base import AttemptContext
from engine.clock import Clock
from engine.errors import RunError
from engine.runtime.attempt import ATTEMPT_MARK, Attempt, Outcome, RetryPolicy, run_key
from engine.runtime.context import Limits, PipelineRuntime
from engine.runtime.precondition import PollPlan, PreconditionPoll
from engine.runtime.runner import activate, ensure_pipeline
from engine.schedule import parse_period
from engine.store import AttemptStatus, InstanceRecord, Status, open_store
from engine.testing.virtual import MemoryNotifier, activity, check, definition_from, pipeline

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=1)
ONE = {"end": "2024-01-01T00:15:00"}


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


@dataclass
class Host:
    """All an attempt asks of whoever drives it."""

    root: Path
    activation: datetime | None = T0

    def log_root_for(self, rec: InstanceRecord) -> Path:
        return self.root


async def _ready(tmp_path: Path, *objects: dict[str, object],
                 object_id: str) -> tuple[PipelineRuntime, InstanceRecord]:
    """A planned pipeline in an in-memory store, and the instance of ``object_id`` moved on to
    WAITING_FOR_RUNNER as a scheduler would leave it for a runner."""
    store = await open_store("sqlite://:memory:").open()
    clock = Clock(start=LATER)
    definition = definition_from(pipeline(*objects, **ONE))
    _, version = await ensure_pipeline(store, "df-attempt", "attempt", definition)
    await activate(store, "df-attempt", definition, version, clock)
    rt = PipelineRuntime("df-attempt", definition, version, store, clock, MemoryNotifier(),
                         Limits(), tmp_path, inline_io=True)
    for rec in await store.list_instances("df-attempt"):
        rt.instances[rec.id] = rec
    rec = next(r for r in rt.instances.values() if r.object_id == object_id)
    assert await store.update_instance("df-attempt", rec.id, status=Status.WAITING_FOR_RUNNER)
    rec.status = Status.WAITING_FOR_RUNNER
    return rt, rec


def _attempt(rt: PipelineRuntime, rec: InstanceRecord, tmp_path: Path, *,
             reason: str = "unused") -> Attempt:
    return Attempt(rt, rec, Host(tmp_path), publish=lambda: None, cancel_reason=lambda: reason)


async def test_an_attempt_runs_and_settles_without_a_supervisor(tmp_path: Path) -> None:
    rt, rec = await _ready(tmp_path, activity("A", maximumRetries="1", retryDelay="5 minutes"),
                           object_id="A")
    published: list[Status] = []
    seen: list[AttemptContext] = []

    async def fails(ctx: AttemptContext) -> None:
        seen.append(ctx)
        raise RunError("the source went away", transient=True)

    attempt = Attempt(rt, rec, Host(tmp_path), publish=lambda: published.append(rec.status),
                      cancel_reason=lambda: "unused")
    assert await attempt.begin()
    assert rec.status == Status.RUNNING and rec.attempts == 1
    outcome = await attempt.run_activity(fails, None)
    assert not outcome.ok and outcome.transient and "went away" in (outcome.error or "")
    status, recorded = await attempt.settle(RetryPolicy.of(rt, rec), outcome)
    assert (status, recorded) == (Status.WAITING_FOR_RUNNER, True)
    assert published == [Status.RUNNING, Status.WAITING_FOR_RUNNER]

    ctx = seen[0]
    assert ctx.env[ATTEMPT_MARK] == f"{rec.id}_Attempt=1"
    assert ctx.run_key == run_key("df-attempt", T0, rec)
    assert ctx.run_key == f"df-attempt@{T0.isoformat()}/{rec.id}/0"
    stored = await rt.store.get_instance("df-attempt", rec.id)
    assert stored.status == Status.WAITING_FOR_RUNNER
    assert stored.retry_at == LATER + timedelta(minutes=5)
    [record] = await rt.store.list_attempts("df-attempt", rec.id)
    assert record.status == AttemptStatus.FAILED and "went away" in (record.error or "")
    assert (tmp_path / "df-attempt" / "A").is_dir()  # the host's log root was used
    await rt.store.close()


async def test_a_stale_attempt_is_refused_by_the_store(tmp_path: Path) -> None:
    """The instance moved on after the driver read it (another process finished it)."""
    rt, rec = await _ready(tmp_path, activity("A"), object_id="A")
    assert await rt.store.update_instance("df-attempt", rec.id, status=Status.FINISHED)
    attempt = _attempt(rt, rec, tmp_path)
    assert not await attempt.begin()
    assert rec.status == Status.WAITING_FOR_RUNNER  # untouched: the driver reads it again
    assert await rt.store.list_attempts("df-attempt", rec.id) == []
    await rt.store.close()


async def test_a_cancelled_attempt_records_the_drivers_reason(tmp_path: Path) -> None:
    rt, rec = await _ready(tmp_path, activity("A"), object_id="A")
    attempt = _attempt(rt, rec, tmp_path, reason="the lease was lost")

    async def hangs(ctx: AttemptContext) -> None:
        await anyio.sleep_forever()

    assert await attempt.begin()
    with anyio.move_on_after(30):
        await attempt.run_activity(hangs, None)
    [record] = await rt.store.list_attempts("df-attempt", rec.id)
    assert record.status == AttemptStatus.CANCELED and record.error == "the lease was lost"
    await rt.store.close()


async def test_attempt_timeout_ends_the_body_as_timedout(tmp_path: Path) -> None:
    rt, rec = await _ready(tmp_path, activity("A"), object_id="A")
    attempt = _attempt(rt, rec, tmp_path)

    async def slow(ctx: AttemptContext) -> None:
        await anyio.sleep(120)

    assert await attempt.begin()
    outcome = await attempt.run_activity(slow, timedelta(seconds=90))
    assert outcome.status == AttemptStatus.TIMEDOUT and outcome.transient
    assert outcome.error == "attempt timed out after 90 s"
    assert rt.now() == LATER + timedelta(seconds=90)
    await rt.store.close()


def _rec(attempts: int, base: int = 0) -> InstanceRecord:
    return InstanceRecord("df", "@A_1", "A", "ShellCommandActivity", "activity", T0, T0, T0,
                          attempts=attempts, attempt_base=base)


def test_retry_policy_counts_the_budget_from_the_latest_rerun() -> None:
    policy = RetryPolicy(max_retries=2, delay=timedelta(minutes=10), timeout=None)
    failed = Outcome(False, "boom")
    assert policy.after(failed, _rec(3), T0) == (Status.FAILED,
                                                 {"actual_end": T0, "error": "boom"})
    assert policy.after(failed, _rec(2), T0) == (
        Status.WAITING_FOR_RUNNER, {"retry_at": T0 + timedelta(minutes=10), "error": "boom"})
    assert policy.after(failed, _rec(5, base=3), T0)[0] == Status.WAITING_FOR_RUNNER
    assert policy.after(Outcome(False, "bad", transient=False), _rec(1), T0)[0] == Status.FAILED
    assert policy.after(Outcome(True), _rec(1), T0) == (Status.FINISHED,
                                                        {"actual_end": T0, "error": None})


def test_poll_plan_waits_retry_delay_but_never_past_the_timeout() -> None:
    plan = PollPlan(T0, parse_period("25 minutes"), timedelta(minutes=10), None, None)
    assert plan.after_false(1, T0) == T0 + timedelta(minutes=10)
    assert plan.after_false(3, T0 + timedelta(minutes=20)) == T0 + timedelta(minutes=25)
    assert plan.after_false(4, T0 + timedelta(minutes=25)) == \
        "precondition not met within 25 minutes (4 checks)"
    counted = PollPlan(T0, None, timedelta(minutes=1), 2, None)
    assert counted.after_false(2, T0) == T0 + timedelta(minutes=1)
    assert counted.after_false(3, T0) == "precondition not met after 3 checks"


async def test_a_precondition_poll_drives_one_attempt_without_a_supervisor(
        tmp_path: Path) -> None:
    rt, rec = await _ready(tmp_path, check("P"), activity("A", precondition={"ref": "P"}),
                           object_id="P")
    answers = iter([False, False, True])

    async def holds_on_third(ctx: AttemptContext) -> bool:
        return next(answers)

    poll = PreconditionPoll(rt, holds_on_third, PollPlan.of(rt, rec, rt.now()))
    attempt = _attempt(rt, rec, tmp_path)
    assert await attempt.begin()
    outcome = await attempt.run(poll, None)
    assert outcome.ok and poll.failure is None and poll.checks == 3
    assert rt.now() == LATER + timedelta(minutes=20)  # retryDelay's default, twice
    await rt.store.close()
