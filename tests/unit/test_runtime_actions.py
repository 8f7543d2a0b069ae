"""Failure modes and user actions in virtual time: cascade vs none, RERUN (and cascade rerun),
MARK_FINISHED, TRY_CANCEL, PAUSE/RESUME, graceful stop and resume, recovery of an attempt left
RUNNING by a dead process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from engine.actions.notify import Alarm
from engine.clock import Clock
from engine.runtime.context import Limits, PipelineRuntime
from engine.runtime.pipeline import PipelineSupervisor
from engine.runtime.runner import RunResult, activate, ensure_pipeline
from engine.store import Action, AttemptRecord, AttemptStatus, Status
from engine.testing.scripted import Script
from engine.testing.virtual import (
    VirtualPipeline,
    activity,
    definition_from,
    open_virtual,
    pipeline,
    ref,
)

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=1)
ONE = {"end": "2024-01-01T00:15:00"}


def iid(object_id: str) -> str:
    return f"@{object_id}_2024-01-01T00:00:00"


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


def by_object(result: RunResult) -> dict[str, Any]:
    return {i.object_id: i for i in result.instances}


async def offline_action(vp: VirtualPipeline, body: dict[str, Any], action: Action,
                         target: str) -> str:
    """What ``set-status`` does when no process runs the pipeline: apply it to the store."""
    definition = definition_from(body)
    record = await vp.store.get_pipeline(vp.pipeline_id)
    rt = PipelineRuntime(vp.pipeline_id, definition, record.latest_version or 1, vp.store,
                         vp.clock, None, Limits(), vp.log_root)
    sup = PipelineSupervisor(rt, request_interval=None)
    await sup.load()
    return await sup.apply(action, target)


async def run_with(vp: VirtualPipeline, body: dict[str, Any], actor: Any) -> RunResult:
    """Run ``body`` while ``actor(vp)`` acts on it; the run's result."""
    out: list[RunResult] = []
    async with anyio.create_task_group() as tg:
        async def runner() -> None:
            out.append(await vp.run(body))
        tg.start_soon(runner)
        await actor(vp)
    return out[0]


# --- failure modes ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["cascade", "none"])
async def test_failure_cascades_or_blocks_and_independent_branch_finishes(
        tmp_path: Path, mode: str) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "fatal"), activity("B", dependsOn=ref("A")),
                    activity("C", dependsOn=ref("B")), activity("Other", "sleep 60"),
                    failureAndRerunMode=mode, **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    objs = by_object(result)
    assert objs["A"].status == Status.FAILED
    assert objs["Other"].status == Status.FINISHED
    assert script.of("B") == [] and script.of("C") == []
    if mode == "cascade":
        assert objs["B"].status == objs["C"].status == Status.CASCADE_FAILED
        assert objs["B"].cascade_failed_on == iid("A")
        assert objs["C"].cascade_failed_on == iid("B")
    else:  # reported as they stand: waiting on a dependency that failed
        assert objs["B"].status == objs["C"].status == Status.WAITING_ON_DEPENDENCIES
    assert not result.succeeded and not result.interrupted
    await vp.store.close()


async def test_cascade_cancels_pending_preconditions_of_the_failed_consumer(
        tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "fatal"),
                    activity("B", dependsOn=ref("A"), precondition=ref("Pre")),
                    {"id": "Pre", "name": "Pre", "type": "ShellCommandPrecondition",
                     "command": "true"},
                    failureAndRerunMode="cascade", **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    objs = by_object(result)
    assert objs["B"].status == Status.CASCADE_FAILED
    assert objs["Pre"].status == Status.CANCELED
    assert script.of("Pre") == []
    await vp.store.close()


# --- RERUN -----------------------------------------------------------------------------------

async def test_rerun_with_cascade_reruns_cascade_failed_consumers(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "fail-until 2", maximumRetries="0"),
                    activity("B", dependsOn=ref("A")), failureAndRerunMode="cascade", **ONE)
    with Script().install() as script:
        first = await vp.run(body)
        assert by_object(first)["B"].status == Status.CASCADE_FAILED
        assert await offline_action(vp, body, Action.RERUN, iid("A")) == f"RERUN {iid('A')}"
        b = await vp.instance(iid("B"))
        assert b.status == Status.WAITING_ON_DEPENDENCIES and b.cascade_failed_on is None
        second = await vp.run(body)
    assert second.succeeded
    a = by_object(second)["A"]
    assert a.attempts == 2 and a.error is None
    assert len(script.of("A")) == 2 and len(script.of("B")) == 1
    assert [x.status for x in await vp.attempts(a.id)] == [AttemptStatus.FAILED,
                                                           AttemptStatus.FINISHED]
    await vp.store.close()


async def test_rerun_without_cascade_reruns_only_the_target(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A"), activity("B", dependsOn=ref("A")), **ONE)
    with Script().install() as script:
        assert (await vp.run(body)).succeeded
        await offline_action(vp, body, Action.RERUN, iid("A"))
        second = await vp.run(body)
    assert second.succeeded
    assert len(script.of("A")) == 2 and len(script.of("B")) == 1
    await vp.store.close()


async def test_rerun_gets_a_fresh_retry_budget(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "fail-until 4", maximumRetries="1", retryDelay="1 minutes"),
                    **ONE)
    with Script().install() as script:
        first = await vp.run(body)
        assert first.instances[0].status == Status.FAILED
        assert first.instances[0].attempts == 2
        await offline_action(vp, body, Action.RERUN, iid("A"))
        second = await vp.run(body)
    assert second.succeeded and second.instances[0].attempts == 4
    assert len(script.of("A")) == 4
    await vp.store.close()


async def test_live_rerun_while_the_run_goes_on(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "fail-until 2", maximumRetries="0"),
                    activity("B", dependsOn=ref("A")), activity("Keep", "sleep 3600"),
                    failureAndRerunMode="cascade", **ONE)

    async def act(vp: VirtualPipeline) -> None:
        await vp.wait_status(iid("B"), Status.CASCADE_FAILED)
        assert vp.supervisor is not None
        await vp.supervisor.apply(Action.RERUN, iid("A"))

    with Script().install() as script:
        result = await run_with(vp, body, act)
    assert result.succeeded
    assert len(script.of("A")) == 2 and len(script.of("B")) == 1
    history = vp.history(iid("B"))
    assert history[0] == "CASCADE_FAILED" and history[-1] == "FINISHED"
    assert by_object(result)["Keep"].status == Status.FINISHED
    await vp.store.close()


# --- MARK_FINISHED ---------------------------------------------------------------------------

async def test_mark_finished_unblocks_dependents(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "fatal"), activity("B", dependsOn=ref("A")), **ONE)
    with Script().install() as script:
        first = await vp.run(body)
        assert by_object(first)["B"].status == Status.WAITING_ON_DEPENDENCIES
        await offline_action(vp, body, Action.MARK_FINISHED, iid("A"))
        second = await vp.run(body)
    assert second.succeeded
    objs = by_object(second)
    assert objs["A"].attempts == 1 and objs["A"].error is None
    assert len(script.of("A")) == 1 and len(script.of("B")) == 1
    await vp.store.close()


async def test_mark_finished_on_a_running_attempt_stops_it(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "hang"), activity("B", dependsOn=ref("A")), **ONE)

    async def act(vp: VirtualPipeline) -> None:
        await vp.wait_status(iid("A"), Status.RUNNING)
        await anyio.sleep(60)
        assert vp.supervisor is not None
        await vp.supervisor.apply(Action.MARK_FINISHED, iid("A"))

    with Script().install() as script:
        result = await run_with(vp, body, act)
    assert result.succeeded
    assert script.of("A")[0].cleaned_up
    attempts = await vp.attempts(iid("A"))
    assert [a.status for a in attempts] == [AttemptStatus.CANCELED]
    assert script.of("B")[0].started >= script.of("A")[0].ended  # type: ignore[operator]
    await vp.store.close()


# --- TRY_CANCEL ------------------------------------------------------------------------------

async def test_try_cancel_running_attempt_cleans_up_and_cascades(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "hang", maximumRetries="3"),
                    activity("B", dependsOn=ref("A")), failureAndRerunMode="cascade", **ONE)

    async def act(vp: VirtualPipeline) -> None:
        await vp.wait_status(iid("A"), Status.RUNNING)
        assert vp.supervisor is not None
        await vp.supervisor.apply(Action.TRY_CANCEL, iid("A"))

    with Script().install() as script:
        result = await run_with(vp, body, act)
    objs = by_object(result)
    assert objs["A"].status == Status.CANCELED and "TRY_CANCEL" in (objs["A"].error or "")
    assert objs["B"].status == Status.CASCADE_FAILED
    assert len(script.of("A")) == 1 and script.of("A")[0].cleaned_up  # no retry
    assert [a.status for a in await vp.attempts(iid("A"))] == [AttemptStatus.CANCELED]
    await vp.store.close()


async def test_try_cancel_waiting_instance_never_runs(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "sleep 600"), activity("B", dependsOn=ref("A")), **ONE)

    async def act(vp: VirtualPipeline) -> None:
        await vp.wait_status(iid("A"), Status.RUNNING)
        assert vp.supervisor is not None
        await vp.supervisor.apply(Action.TRY_CANCEL, iid("B"))

    with Script().install() as script:
        result = await run_with(vp, body, act)
    objs = by_object(result)
    assert objs["A"].status == Status.FINISHED and objs["B"].status == Status.CANCELED
    assert script.of("B") == []
    await vp.store.close()


# --- PAUSE / RESUME --------------------------------------------------------------------------

async def test_pause_holds_a_component_until_resume(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "sleep 600"), activity("B", dependsOn=ref("A")),
                    activity("Keep", "sleep 3600"), **ONE)

    async def act(vp: VirtualPipeline) -> None:
        await vp.wait_status(iid("A"), Status.RUNNING)
        assert vp.supervisor is not None
        await vp.supervisor.apply(Action.PAUSE, "B")
        assert await vp.store.paused(vp.pipeline_id) == {"B"}
        await vp.wait_status(iid("A"), Status.FINISHED)  # at +10 min
        await anyio.sleep(20 * 60)
        assert (await vp.instance(iid("B"))).status == Status.WAITING_ON_DEPENDENCIES
        await vp.supervisor.apply(Action.RESUME, "B")

    with Script().install() as script:
        result = await run_with(vp, body, act)
    assert result.succeeded
    assert script.of("B")[0].started >= LATER + timedelta(minutes=30)
    assert await vp.store.paused(vp.pipeline_id) == set()
    await vp.store.close()


async def test_paused_component_settles_the_run_and_stays_paused(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A"), activity("B", dependsOn=ref("A")), **ONE)
    await ensure_pipeline(vp.store, vp.pipeline_id, "virtual", definition_from(body))
    await vp.store.set_paused(vp.pipeline_id, "B", True)
    with Script().install() as script:
        first = await vp.run(body)
        assert by_object(first)["B"].status == Status.WAITING_ON_DEPENDENCIES
        assert script.of("B") == []
        await offline_action(vp, body, Action.RESUME, "B")
        second = await vp.run(body)
    assert second.succeeded and len(script.of("B")) == 1
    await vp.store.close()


# --- stopping, resuming, recovering ------------------------------------------------------------

async def test_graceful_stop_interrupts_attempts_and_restart_retries_them(
        tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "hang-until 2", maximumRetries="0"),
                    activity("B", dependsOn=ref("A")), activity("Quick"), **ONE)

    async def act(vp: VirtualPipeline) -> None:
        await vp.wait_status(iid("A"), Status.RUNNING)
        await vp.wait_status(iid("Quick"), Status.FINISHED)
        assert vp.supervisor is not None
        await vp.supervisor.stop()

    with Script().install() as script:
        first = await run_with(vp, body, act)
        assert first.interrupted and not first.succeeded
        objs = by_object(first)
        assert objs["A"].status == Status.WAITING_FOR_RUNNER
        assert objs["B"].status == Status.WAITING_ON_DEPENDENCIES
        assert script.of("A")[0].cleaned_up
        assert [a.status for a in await vp.attempts(iid("A"))] == [AttemptStatus.INTERRUPTED]
        second = await vp.run(body)
    assert second.succeeded
    objs = by_object(second)
    # the interrupted attempt counts as an attempt
    assert objs["A"].attempts == 2
    assert len(script.of("Quick")) == 1  # finished work is not repeated
    assert len(script.of("B")) == 1
    await vp.store.close()


async def test_attempt_left_running_by_a_dead_process_is_retried(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A"), activity("B", dependsOn=ref("A")), **ONE)
    definition = definition_from(body)
    _, version = await ensure_pipeline(vp.store, vp.pipeline_id, "virtual", definition)
    await activate(vp.store, vp.pipeline_id, definition, version, vp.clock)
    a = await vp.instance(iid("A"))
    # what a process killed in the middle of attempt 1 leaves behind
    await vp.store.update_instance(vp.pipeline_id, a.id, status=Status.WAITING_FOR_RUNNER)
    a.status = Status.WAITING_FOR_RUNNER
    assert await vp.store.start_attempt(a, AttemptRecord(vp.pipeline_id, a.id, 1,
                                                         started_at=LATER, host="gone:1"),
                                        actual_start=LATER)
    with Script().install() as script:
        result = await vp.run(body)
    assert result.succeeded
    assert by_object(result)["A"].attempts == 2
    attempts = await vp.attempts(a.id)
    assert [x.status for x in attempts] == [AttemptStatus.INTERRUPTED, AttemptStatus.FINISHED]
    assert len(script.of("A")) == 1
    await vp.store.close()


async def test_alarm_with_a_bad_expression_is_still_delivered(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    bad = {"id": "Bad", "name": "Bad", "type": "SnsAlarm", "topicArn": "arn:t",
           "subject": "failed", "message": "#{node.@actualEndTime + 1}"}
    body = pipeline(activity("A", "fatal", onFail=ref("Bad")), bad, **ONE)
    with Script().install():
        await vp.run(body)
    alarms: list[Alarm] = vp.notifier.of("Bad")
    assert len(alarms) == 1 and alarms[0].subject == "failed"
    assert "not evaluated" in alarms[0].message
    await vp.store.close()


async def test_clock_is_virtual_here() -> None:
    clock = Clock(start=T0)
    await anyio.sleep(3600)
    assert clock.now() == T0 + timedelta(hours=1)


# --- deactivation (the engine's path) ----------------------------------------------------------

@pytest.mark.parametrize("cancel_active", [False, True])
async def test_deactivate_lets_running_finish_or_cancels_it(tmp_path: Path,
                                                            cancel_active: bool) -> None:
    vp = await open_virtual(LATER, tmp_path)
    definition = definition_from(pipeline(activity("A", "sleep 600"),
                                          activity("B", dependsOn=ref("A")), **ONE))
    _, version = await ensure_pipeline(vp.store, vp.pipeline_id, "virtual", definition)
    activation, _, end = await activate(vp.store, vp.pipeline_id, definition, version,
                                        vp.clock)
    rt = PipelineRuntime(vp.pipeline_id, definition, version, vp.store, vp.clock, vp.notifier,
                         Limits(), tmp_path, inline_io=True)
    sup = PipelineSupervisor(rt, mode="engine", window_end=end, activation=activation,
                             request_interval=None)
    vp.supervisor = sup
    with Script().install() as script:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sup.run)
            await vp.wait_status(iid("A"), Status.RUNNING)
            await sup.deactivate(cancel_active)
    a, b = await vp.instance(iid("A")), await vp.instance(iid("B"))
    assert script.of("B") == []
    assert b.status in (Status.WAITING_ON_DEPENDENCIES, Status.WAITING_FOR_RUNNER)
    if cancel_active:
        assert a.status == Status.CANCELED and "deactivated" in (a.error or "")
        assert vp.clock.now() < LATER + timedelta(minutes=10)
    else:
        assert a.status == Status.FINISHED
        assert vp.clock.now() == LATER + timedelta(minutes=10)
    await vp.store.close()


async def test_a_run_that_loses_its_lease_stops(tmp_path: Path) -> None:
    """A process that stalled past its lease and finds another owner must not go on."""
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "hang"), **ONE)

    async def thief(vp: VirtualPipeline) -> None:
        await vp.wait_status(iid("A"), Status.RUNNING)
        # as a second process that judged the lease expired would
        holder = await vp.store.acquire_lease(f"pipeline:{vp.pipeline_id}", "thief:1",
                                              LATER + timedelta(hours=1),
                                              LATER + timedelta(hours=1))
        assert holder is None

    with Script().install() as script:
        result = await run_with(vp, body, thief)
    assert result.interrupted
    assert vp.clock.now() < LATER + timedelta(seconds=30)
    assert script.of("A")[0].cleaned_up
    assert [a.status for a in await vp.attempts(iid("A"))] == [AttemptStatus.INTERRUPTED]
    lease = await vp.store.lease_holder(f"pipeline:{vp.pipeline_id}")
    assert lease is not None and lease[0] == "thief:1"  # not released from under the thief
    await vp.store.close()


async def test_rerun_of_an_instance_that_has_not_ended_is_refused(tmp_path: Path) -> None:
    from engine.runtime.pipeline import ConflictError

    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "sleep 600"), **ONE)
    refused: list[str] = []

    async def act(vp: VirtualPipeline) -> None:
        await vp.wait_status(iid("A"), Status.RUNNING)
        assert vp.supervisor is not None
        with pytest.raises(ConflictError, match="is RUNNING: only an instance that has ended"):
            await vp.supervisor.apply(Action.RERUN, iid("A"))
        refused.append("yes")

    with Script().install() as script:
        result = await run_with(vp, body, act)
    assert refused and result.succeeded and len(script.of("A")) == 1
    await vp.store.close()


async def test_a_rerun_left_for_a_pipeline_whose_schedule_ended_is_run_by_the_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A RERUN request sent while the engine's supervisor ran, but taken by nobody before the
    schedule ended (the pipeline FINISHED, its lease released): the engine carries it out on
    the store, which reopens the pipeline, and then runs it to FINISHED again."""
    from engine.runtime.engine import Engine
    from engine.store import PipelineState

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the engine's log root
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A"), activity("B", dependsOn=ref("A")), **ONE)
    with Script().install() as script:
        assert (await vp.run(body)).succeeded
        assert (await vp.store.get_pipeline(vp.pipeline_id)).state == PipelineState.FINISHED
        await vp.store.add_request(vp.pipeline_id, iid("A"), Action.RERUN)
        engine = Engine(vp.store, clock=vp.clock, poll_interval=1.0, notifier=vp.notifier)
        with anyio.fail_after(3600):  # virtual seconds
            async with anyio.create_task_group() as tg:
                tg.start_soon(engine.run)
                while True:  # polls the store, as a user would
                    rerun = (await vp.instance(iid("A"))).attempts == 2
                    state = (await vp.store.get_pipeline(vp.pipeline_id)).state
                    if rerun and state == PipelineState.FINISHED:
                        break
                    await anyio.sleep(1)
                await engine.stop()
    assert (await vp.instance(iid("A"))).status == Status.FINISHED
    assert len(script.of("A")) == 2 and len(script.of("B")) == 1
    assert await vp.store.pipelines_with_requests() == set()
    await vp.store.close()
