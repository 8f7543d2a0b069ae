"""When instances run: cron vs timeseries, backfill, maxActiveInstances, dependencies, ondemand.

Every test runs the real run loop (``run_window``: lease, activation, PipelineSupervisor,
InstanceActors, in-memory SQLite store) on trio's MockClock, with scripted in-process activities.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import anyio
import pytest
from trio.testing import MockClock

from engine.store import Status
from engine.testing.scripted import Script
from engine.testing.virtual import activity, open_virtual, pipeline, ref

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


async def test_cron_instances_start_at_interval_start(tmp_path: Path) -> None:
    vp = await open_virtual(T0 - minutes(5), tmp_path)
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A")))
    assert result.succeeded
    starts = [c.started for c in script.of("A")]
    assert starts == [T0 + minutes(15 * k) for k in range(4)]
    assert [c.scheduled_start for c in script.of("A")] == starts
    await vp.store.close()


async def test_timeseries_instances_start_at_interval_end(tmp_path: Path) -> None:
    vp = await open_virtual(T0 - minutes(5), tmp_path)
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A"), schedule_type="timeseries"))
    assert result.succeeded
    calls = script.of("A")
    assert [c.scheduled_start for c in calls] == [T0 + minutes(15 * k) for k in range(4)]
    assert [c.started for c in calls] == [T0 + minutes(15 * (k + 1)) for k in range(4)]
    await vp.store.close()


async def test_past_intervals_backfill_at_once(tmp_path: Path) -> None:
    now = T0 + timedelta(days=1)
    vp = await open_virtual(now, tmp_path)
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A"), end="2024-01-01T03:00:00"))
    assert result.succeeded
    calls = script.of("A")
    assert len(calls) == 12
    assert {c.started for c in calls} == {now}  # no waiting for schedule times in the past
    assert sorted(c.scheduled_start for c in calls) == [T0 + minutes(15 * k)
                                                        for k in range(12)]
    await vp.store.close()


async def test_open_ended_schedule_runs_up_to_now(tmp_path: Path) -> None:
    now = T0 + minutes(50)
    vp = await open_virtual(now, tmp_path)
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A"), end=None))
    assert result.succeeded
    assert sorted(c.scheduled_start for c in script.of("A")) == [T0 + minutes(15 * k)
                                                                 for k in range(4)]
    await vp.store.close()


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (2, 2), (None, 5)])
async def test_max_active_instances_caps_concurrent_attempts(
        tmp_path: Path, limit: int | None, expected: int) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    fields = {} if limit is None else {"maxActiveInstances": str(limit)}
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A", "sleep 600", **fields),
                                       end="2024-01-01T03:00:00"))
    assert result.succeeded
    assert script.peaks["A"] == expected
    calls = script.of("A")
    assert len(calls) == 12
    if limit == 1:  # strict chronological order, one at a time
        assert [c.scheduled_start for c in calls] == sorted(c.scheduled_start for c in calls)
        for before, after in pairwise(calls):
            assert before.ended is not None and before.ended <= after.started
    await vp.store.close()


async def test_engine_wide_limit_caps_all_components(tmp_path: Path) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A", "sleep 60"), activity("B", "sleep 60")),
                              max_concurrency=3)
    assert result.succeeded
    assert script.peak_running == 3
    await vp.store.close()


async def test_worker_group_slots_cap_the_group_across_components(tmp_path: Path) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    body = pipeline(activity("A", "sleep 60", workerGroup="etl"),
                    activity("B", "sleep 60", workerGroup="etl"),
                    activity("Other", "sleep 60", workerGroup="elsewhere"))
    with Script().install() as script:
        result = await vp.run(body, worker_groups={"etl": 2})
    assert result.succeeded
    assert len(script.of("A")) == len(script.of("B")) == 4
    # A and B together never exceed the group's 2 slots; Other (uncapped group) runs its 4
    etl = [c for c in script.calls if c.object_id in ("A", "B")]
    overlaps = [sum(1 for o in etl if o.started <= call.started
                    and (o.ended is None or o.ended > call.started)) for call in etl]
    assert max(overlaps) == 2
    assert script.peaks["Other"] == 4
    assert script.peak_running == 6
    await vp.store.close()


async def test_runs_on_resource_id_is_the_group_without_a_worker_group(tmp_path: Path) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    one = activity("One", "sleep 60", runsOn=ref("Box"))
    del one["workerGroup"]
    box = {"id": "Box", "name": "Box", "type": "Ec2Resource", "instanceType": "m5.large"}
    with Script().install() as script:
        result = await vp.run(pipeline(one, box), worker_groups={"Box": 1})
    assert result.succeeded
    assert len(script.of("One")) == 4
    assert script.peaks["One"] == 1
    await vp.store.close()


async def test_depends_on_chain_runs_in_order_per_interval(tmp_path: Path) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    body = pipeline(activity("A", "sleep 60"), activity("B", "sleep 30", dependsOn=ref("A")),
                    activity("C", dependsOn=ref("B")))
    with Script().install() as script:
        result = await vp.run(body)
    assert result.succeeded
    for k in range(4):
        when = T0 + minutes(15 * k)
        a, b, c = (next(x for x in script.of(o) if x.scheduled_start == when) for o in "ABC")
        assert a.ended is not None and b.ended is not None
        assert a.ended <= b.started and b.ended <= c.started
    await vp.store.close()


async def test_fan_in_waits_for_all_parallel_branches(tmp_path: Path) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    body = pipeline(activity("P1", "sleep 60"), activity("P2", "sleep 120"),
                    activity("P3", "sleep 30"),
                    activity("Join", dependsOn=[ref("P1"), ref("P2"), ref("P3")]),
                    end="2024-01-01T00:15:00")
    with Script().install() as script:
        result = await vp.run(body)
    assert result.succeeded
    branches = [script.of(p)[0] for p in ("P1", "P2", "P3")]
    join = script.of("Join")[0]
    assert len({b.started for b in branches}) == 1  # all three start together
    assert join.started == max(b.ended for b in branches if b.ended)
    await vp.store.close()


async def test_data_node_chain_input_waits_for_producer(tmp_path: Path) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    node = {"id": "Node", "name": "Node", "type": "S3DataNode",
            "directoryPath": f"file://{tmp_path}/data"}
    body = pipeline(activity("Producer", "sleep 300", output=ref("Node")),
                    activity("Consumer", input=ref("Node")), node,
                    end="2024-01-01T00:15:00")
    with Script().install() as script:
        result = await vp.run(body)
    assert result.succeeded
    producer, consumer = script.of("Producer")[0], script.of("Consumer")[0]
    assert producer.ended == consumer.started
    node_rec = await vp.instance("@Node_2024-01-01T00:00:00")
    assert node_rec.status == Status.FINISHED
    await vp.store.close()


async def test_ondemand_runs_once_per_invocation(tmp_path: Path) -> None:
    vp = await open_virtual(T0, tmp_path)
    body = {"objects": [{"id": "Default", "name": "Default", "scheduleType": "ondemand"},
                        activity("A"), activity("B", dependsOn=ref("A"))]}
    with Script().install() as script:
        first = await vp.run(body)
        second = await vp.run(body)
    assert first.succeeded and second.succeeded
    assert len(script.of("A")) == 2 and len(script.of("B")) == 2
    assert len(first.instances) == len(second.instances) == 2
    assert {i.id for i in first.instances}.isdisjoint({i.id for i in second.instances})
    await vp.store.close()


async def test_explicit_window_plans_only_its_intervals(tmp_path: Path) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    with Script().install() as script:
        result = await vp.run(pipeline(activity("A")), start=T0 + minutes(15),
                              end=T0 + minutes(45))
    assert result.succeeded
    assert sorted(c.scheduled_start for c in script.of("A")) == [T0 + minutes(15),
                                                                 T0 + minutes(30)]
    await vp.store.close()


async def test_open_ended_run_does_not_wait_for_intervals_not_yet_due(tmp_path: Path) -> None:
    """"Up to now": a timeseries interval that has not ended is left for a later run."""
    now = T0 + minutes(50)
    vp = await open_virtual(now, tmp_path)
    body = pipeline(activity("A"), activity("B", dependsOn=ref("A")), end=None,
                    schedule_type="timeseries")
    with Script().install() as script:
        result = await vp.run(body)
        assert result.succeeded
        assert vp.clock.now() == now  # nothing waited
        assert sorted(c.scheduled_start for c in script.of("B")) == [
            T0 + minutes(15 * k) for k in range(3)]  # 00:45 ends at 01:00, after now
        await anyio.sleep(15 * 60)
        later = await vp.run(body)
    assert later.succeeded
    assert len(script.of("A")) == len(script.of("B")) == 4
    await vp.store.close()


async def test_engine_mode_plans_an_open_ended_schedule_as_time_passes(tmp_path: Path) -> None:
    from engine.runtime.context import Limits, PipelineRuntime
    from engine.runtime.pipeline import PipelineSupervisor
    from engine.runtime.runner import activate, ensure_pipeline
    from engine.testing.virtual import definition_from

    vp = await open_virtual(T0 - minutes(1), tmp_path)
    definition = definition_from(pipeline(activity("A"), end=None))
    _, version = await ensure_pipeline(vp.store, vp.pipeline_id, "engine", definition)
    activation, _, _ = await activate(vp.store, vp.pipeline_id, definition, version, vp.clock)

    async def run_engine_for(seconds: float) -> None:
        rt = PipelineRuntime(vp.pipeline_id, definition, version, vp.store, vp.clock,
                             vp.notifier, Limits(), tmp_path, inline_io=True)
        sup = PipelineSupervisor(rt, mode="engine", activation=activation,
                                 request_interval=None)
        with anyio.move_on_after(seconds):
            await sup.run()

    with Script().install() as script:
        await run_engine_for(2 * 3600)  # the engine runs two hours, then stops
        assert [c.started for c in sorted(script.of("A"), key=lambda c: c.started)] == [
            T0 + minutes(15 * k) for k in range(8)]
        await run_engine_for(3600)  # a restart goes on from where planning stopped
    starts = sorted(c.scheduled_start for c in script.of("A"))
    assert starts == [T0 + minutes(15 * k) for k in range(12)]
    await vp.store.close()


async def test_activating_at_a_later_start_skips_the_intervals_before_it(
        tmp_path: Path) -> None:
    from engine.runtime.runner import activate, ensure_pipeline
    from engine.testing.virtual import definition_from

    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    definition = definition_from(pipeline(activity("A"), activity("B", dependsOn=ref("A"))))
    _, version = await ensure_pipeline(vp.store, vp.pipeline_id, "skips", definition)
    with Script().install() as script:
        first = await vp.run(pipeline(activity("A"), activity("B", dependsOn=ref("A"))),
                             start=T0, end=T0 + minutes(15))
        assert first.succeeded
        # planned but never run: the 00:15 interval waits for a runner when the user
        # re-activates the pipeline to start at 00:45
        await activate(vp.store, vp.pipeline_id, definition, version, vp.clock,
                       start=T0 + minutes(15), end=T0 + minutes(30))
        await activate(vp.store, vp.pipeline_id, definition, version, vp.clock,
                       start=T0 + minutes(45))
        later = await vp.run(pipeline(activity("A"), activity("B", dependsOn=ref("A"))),
                             start=T0 + minutes(45))
    assert later.succeeded
    status = {(i.object_id, i.scheduled_start - T0): i.status
              for i in await vp.store.list_instances(vp.pipeline_id)
              if i.category == "activity"}
    assert status == {
        **{(o, minutes(0)): Status.FINISHED for o in "AB"},
        **{(o, minutes(15)): Status.SKIPPED for o in "AB"},  # planned, never started
        **{(o, minutes(30)): Status.SKIPPED for o in "AB"},  # the gap, added as skipped
        **{(o, minutes(45)): Status.FINISHED for o in "AB"},
    }
    assert sorted(c.scheduled_start for c in script.of("A")) == [T0, T0 + minutes(45)]
    skipped = await vp.store.list_instances(vp.pipeline_id, statuses=[Status.SKIPPED])
    assert all("activated to start at 2024-01-01T00:45:00" in (i.error or "") for i in skipped)
    await vp.store.close()


async def test_a_window_asked_for_again_runs_its_skipped_intervals(tmp_path: Path) -> None:
    vp = await open_virtual(T0 + timedelta(days=1), tmp_path)
    body = pipeline(activity("A"))
    with Script().install() as script:
        assert (await vp.run(body, start=T0, end=T0 + minutes(15))).succeeded
        assert (await vp.run(body, start=T0 + minutes(45))).succeeded  # 00:15, 00:30 skipped
        skipped = await vp.store.list_instances(vp.pipeline_id, statuses=[Status.SKIPPED])
        assert sorted(i.scheduled_start - T0 for i in skipped) == [minutes(15), minutes(30)]
        again = await vp.run(body, start=T0 + minutes(15), end=T0 + minutes(45))
    assert again.succeeded
    assert sorted(c.scheduled_start - T0 for c in script.of("A")) == [
        minutes(0), minutes(15), minutes(30), minutes(45)]  # each interval once
    assert await vp.store.list_instances(vp.pipeline_id, statuses=[Status.SKIPPED]) == []
    await vp.store.close()
