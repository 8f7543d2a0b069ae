"""Attempts in virtual time: retries and retryDelay, attemptTimeout with shielded cleanup
(RELIABILITY case 16), lateAfterTimeout + onLateAction, preconditions and preconditionTimeout
(case 15), onSuccess/onFail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from engine.store import AttemptStatus, Status
from engine.testing.scripted import Script
from engine.testing.virtual import activity, check, open_virtual, pipeline, ref

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=1)  # "now" for backfilled runs
ONE = {"end": "2024-01-01T00:15:00"}  # a window of one interval


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


def alarm(object_id: str) -> dict[str, Any]:
    return {"id": object_id, "name": object_id, "type": "SnsAlarm",
            "topicArn": "arn:aws:sns:us-east-1:000000000000:t", "subject": f"{object_id}",
            "message": "#{node.@scheduledStartTime} #{node.errorMessage}"}


async def test_retries_until_success_with_retry_delay(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "fail-until 3", retryDelay="10 minutes", maximumRetries="2",
                             onSuccess=ref("Ok"), onFail=ref("Bad")),
                    alarm("Ok"), alarm("Bad"), **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    assert result.succeeded
    starts = [c.started for c in script.of("A")]
    assert starts == [LATER, LATER + timedelta(minutes=10), LATER + timedelta(minutes=20)]
    rec = result.instances[0]
    assert rec.attempts == 3 and rec.status == Status.FINISHED
    attempts = await vp.attempts(rec.id)
    assert [a.status for a in attempts] == [AttemptStatus.FAILED, AttemptStatus.FAILED,
                                            AttemptStatus.FINISHED]
    assert "scripted failure" in (attempts[0].error or "")
    assert len(vp.notifier.of("Ok")) == 1 and vp.notifier.of("Bad") == []
    assert vp.history(rec.id) == ["WAITING_FOR_RUNNER", "RUNNING", "WAITING_FOR_RUNNER",
                                  "RUNNING", "WAITING_FOR_RUNNER", "RUNNING", "FINISHED"]
    await vp.store.close()


async def test_retries_exhausted_fail_once_and_fire_on_fail_once(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "fail", retryDelay="5 minutes", maximumRetries="1",
                             onFail=ref("Bad")), alarm("Bad"), **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    assert not result.succeeded
    rec = result.instances[0]
    assert rec.status == Status.FAILED and rec.attempts == 2
    assert len(script.of("A")) == 2
    alarms = vp.notifier.of("Bad")
    assert len(alarms) == 1
    assert alarms[0].message.startswith("2024-01-01T00:00:00") and "scripted failure" in \
        alarms[0].message
    await vp.store.close()


async def test_default_retry_policy_is_three_tries_ten_minutes_apart(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A", "fail"), **ONE))
    assert result.instances[0].status == Status.FAILED
    assert [c.started - LATER for c in script.of("A")] == [
        timedelta(0), timedelta(minutes=10), timedelta(minutes=20)]
    await vp.store.close()


async def test_terminal_error_is_not_retried(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A", "fatal", maximumRetries="3"), **ONE))
    assert result.instances[0].status == Status.FAILED
    assert len(script.of("A")) == 1
    await vp.store.close()


async def test_attempt_timeout_cancels_cleans_up_retries_then_fails(tmp_path: Path) -> None:
    """RELIABILITY case 16, in virtual time."""
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", "hang", attemptTimeout="30 minutes", retryDelay="5 minutes",
                             maximumRetries="2", onFail=ref("Bad")),
                    activity("After", dependsOn=ref("A")), alarm("Bad"),
                    failureAndRerunMode="cascade", **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    calls = script.of("A")
    assert len(calls) == 3
    assert all(c.outcome == "cancelled" and c.cleaned_up for c in calls)
    # each attempt: 30 min until the timeout, 1 s of shielded cleanup, then 5 min of retryDelay
    gap = timedelta(minutes=35, seconds=1)
    assert [c.started - LATER for c in calls] == [timedelta(0), gap, 2 * gap]
    a = next(i for i in result.instances if i.object_id == "A")
    assert a.status == Status.FAILED and a.attempts == 3
    assert "timed out after 30 min" in (a.error or "")
    attempts = await vp.attempts(a.id)
    assert [x.status for x in attempts] == [AttemptStatus.TIMEDOUT] * 3
    assert len(vp.notifier.of("Bad")) == 1
    after = next(i for i in result.instances if i.object_id == "After")
    assert after.status == Status.CASCADE_FAILED and after.cascade_failed_on == a.id
    assert script.of("After") == []
    await vp.store.close()


async def test_late_instance_fires_on_late_action_once_and_still_runs(tmp_path: Path) -> None:
    vp = await open_virtual(T0 - timedelta(minutes=1), tmp_path)
    body = pipeline(activity("Slow", "sleep 7200"),
                    activity("A", dependsOn=ref("Slow"), lateAfterTimeout="1 hours",
                             onLateAction=ref("Late")),
                    alarm("Late"), **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    assert result.succeeded
    assert len(vp.notifier.of("Late")) == 1
    a = next(i for i in result.instances if i.object_id == "A")
    assert a.late_fired
    assert script.of("A")[0].started == T0 + timedelta(hours=2)
    assert any(e.startswith("onLateAction Late") for e in result.events)
    await vp.store.close()


async def test_backfilled_instance_past_its_deadline_is_late_exactly_once(
        tmp_path: Path) -> None:
    """Judged on the recorded start, not on which task runs first: deterministic."""
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", lateAfterTimeout="1 hours", onLateAction=ref("Late")),
                    alarm("Late"), end="2024-01-01T01:00:00")
    with Script().install():
        result = await vp.run(body)
        assert result.succeeded
        assert len(vp.notifier.of("Late")) == 4
        assert all(i.late_fired for i in result.instances)
        await vp.store.update_instance(vp.pipeline_id, result.instances[0].id,
                                       status=Status.WAITING_FOR_RUNNER)
        await vp.run(body)  # the rerun instance was already reported late
    assert len(vp.notifier.of("Late")) == 4
    await vp.store.close()


async def test_last_instance_on_fail_alarm_is_delivered_before_the_run_returns(
        tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)

    class SlowNotifier:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def publish(self, alarm: Any) -> None:
            await anyio.sleep(5)
            self.sent.append(alarm.action_id)

    slow = SlowNotifier()
    vp.notifier = slow  # type: ignore[assignment]
    body = pipeline(activity("A", "fatal", onFail=ref("Bad")), alarm("Bad"), **ONE)
    with Script().install():
        result = await vp.run(body)
    assert result.instances[0].status == Status.FAILED
    assert slow.sent == ["Bad"]
    await vp.store.close()


async def test_instance_started_in_time_is_not_late(tmp_path: Path) -> None:
    vp = await open_virtual(T0 - timedelta(minutes=1), tmp_path)
    body = pipeline(activity("A", "sleep 7200", lateAfterTimeout="1 hours",
                             onLateAction=ref("Late")), alarm("Late"), **ONE)
    with Script().install():
        result = await vp.run(body)
    assert result.succeeded
    assert vp.notifier.of("Late") == []
    await vp.store.close()


async def test_terminate_on_late_cancels_the_instance(tmp_path: Path) -> None:
    vp = await open_virtual(T0 - timedelta(minutes=1), tmp_path)
    body = pipeline(activity("Slow", "sleep 7200"),
                    activity("A", dependsOn=ref("Slow"), lateAfterTimeout="1 hours",
                             onLateAction=ref("Stop")),
                    {"id": "Stop", "name": "Stop", "type": "Terminate"}, **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    a = next(i for i in result.instances if i.object_id == "A")
    assert a.status == Status.CANCELED and "Stop" in (a.error or "")
    assert script.of("A") == []
    await vp.store.close()


async def test_precondition_true_after_polls_lets_the_activity_run(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", precondition=ref("Ready")),
                    check("Ready", "true-after 3", retryDelay="10 minutes"), **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    assert result.succeeded
    polls = script.of("Ready")
    assert [p.started - LATER for p in polls] == [timedelta(minutes=10 * k) for k in range(3)]
    assert script.of("A")[0].started == LATER + timedelta(minutes=20)
    await vp.store.close()


@pytest.mark.parametrize("mode", ["cascade", "none"])
async def test_precondition_timeout_bounded_polls_then_dependents(tmp_path: Path,
                                                                 mode: str) -> None:
    """RELIABILITY case 15 in virtual time: polls every retryDelay, at most
    preconditionTimeout/retryDelay + 1 of them, then FAILED; dependents CASCADE_FAILED under
    cascade, left WAITING_ON_DEPENDENCIES under none (and the run still returns)."""
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", precondition=ref("Never"), onFail=ref("Bad")),
                    check("Never", "false", retryDelay="10 minutes",
                          preconditionTimeout="1 hours", onFail=ref("Bad")),
                    activity("B", dependsOn=ref("A")), alarm("Bad"),
                    failureAndRerunMode=mode, **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    polls = script.of("Never")
    assert len(polls) == 7  # t = 0, 10, ..., 60 minutes
    assert [p.started - LATER for p in polls] == [timedelta(minutes=10 * k) for k in range(7)]
    by_object = {i.object_id: i for i in result.instances}
    pre = by_object["Never"]
    assert pre.status == Status.FAILED and "not met within 1 hours" in (pre.error or "")
    assert len(vp.notifier.of("Bad")) == 1  # the precondition's onFail, once
    assert script.of("A") == [] and script.of("B") == []
    if mode == "cascade":
        assert by_object["A"].status == Status.CASCADE_FAILED
        assert by_object["B"].status == Status.CASCADE_FAILED
    else:
        assert by_object["A"].status == Status.WAITING_ON_DEPENDENCIES
        assert by_object["B"].status == Status.WAITING_ON_DEPENDENCIES
    assert vp.clock.now() == LATER + timedelta(hours=1)
    await vp.store.close()


async def test_precondition_without_timeout_stops_after_maximum_retries(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", precondition=ref("Never")),
                    check("Never", "false", retryDelay="10 minutes", maximumRetries="2"), **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    assert len(script.of("Never")) == 3
    assert next(i for i in result.instances if i.object_id == "Never").status == Status.FAILED
    await vp.store.close()


async def test_data_node_precondition_gates_its_consumer(tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    node = {"id": "In", "name": "In", "type": "S3DataNode", "filePath": "file:///nowhere",
            "precondition": ref("Ready")}
    body = pipeline(activity("A", input=ref("In")), node,
                    check("Ready", "true-after 2", retryDelay="15 minutes"), **ONE)
    with Script().install() as script:
        result = await vp.run(body)
    assert result.succeeded
    assert script.of("A")[0].started == LATER + timedelta(minutes=15)
    await vp.store.close()


async def test_waiting_preconditions_do_not_starve_activities(tmp_path: Path) -> None:
    """Polling preconditions hold an engine slot only while they check, not while they
    sleep between checks."""
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("Gated", precondition=ref("Never")),
                    check("Never", "false", retryDelay="10 minutes",
                          preconditionTimeout="2 hours"),
                    activity("Free", "sleep 60"), end="2024-01-01T01:00:00")
    with Script().install() as script:
        result = await vp.run(body, max_concurrency=2)
    assert len(script.of("Free")) == 4
    assert all(c.started < LATER + timedelta(minutes=10) for c in script.of("Free"))
    assert script.peak_running <= 2
    assert all(i.status == Status.FAILED for i in result.instances if i.object_id == "Never")
    await vp.store.close()


async def test_a_field_bad_only_at_run_time_fails_the_instance_naming_it(
        tmp_path: Path) -> None:
    vp = await open_virtual(LATER, tmp_path)
    body = pipeline(activity("A", retryDelay="#{myDelay}", onFail=ref("Bad")), alarm("Bad"),
                    **ONE)
    body["parameters"] = [{"id": "myDelay", "type": "String", "default": "soon"}]
    with Script().install() as script:
        result = await vp.run(body)
    a = result.instances[0]
    assert a.status == Status.FAILED and script.of("A") == []
    assert a.error is not None and a.error.startswith("object 'A', field 'retryDelay': ")
    assert "'soon'" in a.error
    assert len(vp.notifier.of("Bad")) == 1
    await vp.store.close()
