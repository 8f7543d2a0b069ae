"""Spans and metrics of in-process runs (virtual time), read from in-memory exporters: the
trace of each instance run, attempts, activities, precondition checks, links to upstream
instances and to a previous run, ids kept in the store, and the engine's counters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from trio.testing import MockClock

from engine.store import AttemptStatus, Status
from engine.testing.scripted import Script
from engine.testing.virtual import activity, check, open_virtual, pipeline, ref
from tests.otel_kit import METRICS, SPANS, install_providers, recording

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=1)
ONE = {"end": "2024-01-01T00:15:00"}


def iid(object_id: str) -> str:
    return f"@{object_id}_2024-01-01T00:00:00"


@pytest.fixture(scope="module")
def _providers() -> None:
    install_providers()


@pytest.fixture
def spans(_providers: None) -> Iterator[InMemorySpanExporter]:
    with recording() as exporter:
        yield exporter


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


def _hex(value: int) -> str:
    return format(value, "016x")


def _trace(value: int) -> str:
    return format(value, "032x")


def _named(spans: list[ReadableSpan], name: str, **attrs: Any) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name
            and all((s.attributes or {}).get(k) == v for k, v in attrs.items())]


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.parent is not None
                   and s.parent.span_id == parent.context.span_id),
                  key=lambda s: s.start_time or 0)


def _metric_points(name: str) -> list[Any]:
    data = METRICS.get_metrics_data()
    points: list[Any] = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    points.extend(metric.data.data_points)
    return points


def _count(name: str, **attrs: str) -> float:
    return sum(p.value for p in _metric_points(name)
               if all(p.attributes.get(k) == v for k, v in attrs.items()))


async def test_each_instance_run_is_a_trace_with_attempts_checks_links_and_stored_ids(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    vp = await open_virtual(LATER, tmp_path)
    vp.pipeline_id = "df-telemetry-tree"
    body = pipeline(
        activity("A", "fail-until 2", retryDelay="5 minutes", maximumRetries="2",
                 precondition=ref("P")),
        check("P", "true-after 2", retryDelay="1 minutes", maximumRetries="5"),
        activity("B", dependsOn=ref("A")), **ONE)
    with Script().install():
        result = await vp.run(body)
    assert result.succeeded
    done = list(spans.get_finished_spans())

    [a_run] = _named(done, "instance A")
    [b_run] = _named(done, "instance B")
    [p_run] = _named(done, "instance P")
    # one trace per instance run; a precondition's run is a child of its node's
    assert a_run.parent is None and b_run.parent is None
    assert a_run.context.trace_id != b_run.context.trace_id
    assert p_run.parent is not None and p_run.parent.span_id == a_run.context.span_id
    assert a_run.attributes["headrace.pipeline.id"] == "df-telemetry-tree"
    assert a_run.attributes["headrace.pipeline.name"] == "virtual"
    assert a_run.attributes["headrace.object.type"] == "ShellCommandActivity"
    assert a_run.attributes["headrace.instance.id"] == iid("A")
    assert a_run.attributes["headrace.scheduled.start"] == "2024-01-01T00:00:00Z"
    assert a_run.attributes["headrace.scheduled.end"] == "2024-01-01T00:15:00Z"
    assert a_run.attributes["headrace.status"] == "FINISHED"
    assert a_run.attributes["headrace.attempts"] == 2
    assert a_run.status.status_code == StatusCode.OK

    # two attempts, each running the activity; the first failed and was retried
    attempts = [s for s in _children(done, a_run) if s.name == "attempt"]
    assert [s.attributes["headrace.attempt.number"] for s in attempts] == [1, 2]
    assert [s.attributes["headrace.attempt.status"] for s in attempts] == ["FAILED",
                                                                          "FINISHED"]
    assert attempts[0].status.status_code == StatusCode.ERROR
    assert "scripted failure" in (attempts[0].status.description or "")
    for attempt in attempts:
        assert [s.name for s in _children(done, attempt)] == ["ShellCommandActivity"]
    [retry] = [e for e in a_run.events if e.name == "retry scheduled"]
    assert "scripted failure" in retry.attributes["headrace.retry.cause"]
    assert retry.attributes["headrace.retry.at"] == "2024-01-02T00:06:00Z"  # P took 1 min

    # the precondition: one attempt, one span per check, the last one satisfied
    [p_attempt] = _children(done, p_run)
    checks = _children(done, p_attempt)
    assert [s.name for s in checks] == ["check ShellCommandPrecondition"] * 2
    assert [s.attributes["headrace.check.result"] for s in checks] == [False, True]
    assert [s.attributes["headrace.check.number"] for s in checks] == [1, 2]

    # B waited for A: its run links to A's
    upstream = [lk for lk in b_run.links if lk.attributes["headrace.link.type"] == "upstream"]
    assert [(lk.context.trace_id, lk.context.span_id) for lk in upstream] == [
        (a_run.context.trace_id, a_run.context.span_id)]
    assert upstream[0].attributes["headrace.instance.id"] == iid("A")

    # the store keeps the run's ids: the instance's span, and each attempt's trace
    stored = await vp.instance(iid("A"))
    assert (stored.trace_id, stored.span_id) == (_trace(a_run.context.trace_id),
                                                 _hex(a_run.context.span_id))
    assert [a.trace_id for a in await vp.attempts(iid("A"))] == [
        _trace(a_run.context.trace_id)] * 2
    await vp.store.close()


async def test_a_resumed_instance_links_to_its_interrupted_run_and_upstream_from_store(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    vp = await open_virtual(LATER, tmp_path)
    vp.pipeline_id = "df-telemetry-resume"
    body = pipeline(activity("A"), activity("B", "hang-until 2", maximumRetries="0",
                                            dependsOn=ref("A")), **ONE)

    async def stop_when_b_runs() -> None:
        await vp.wait_status(iid("B"), Status.RUNNING)
        assert vp.supervisor is not None
        await vp.supervisor.stop()

    with Script().install():
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_when_b_runs)
            first = await vp.run(body)
        assert first.interrupted
        first_spans = list(spans.get_finished_spans())
        [a_run] = _named(first_spans, "instance A")
        [b_first] = _named(first_spans, "instance B")
        assert b_first.attributes["headrace.status"] == "WAITING_FOR_RUNNER"
        [interrupted] = _named(first_spans, "attempt")[-1:]
        assert interrupted.attributes["headrace.attempt.status"] == "INTERRUPTED"
        spans.clear()
        second = await vp.run(body)  # a new process would read the same ids from the store
    assert second.succeeded
    [b_second] = _named(list(spans.get_finished_spans()), "instance B")
    kinds = {lk.attributes["headrace.link.type"]: lk.context for lk in b_second.links}
    assert kinds["previous_run"].span_id == b_first.context.span_id
    assert kinds["upstream"].span_id == a_run.context.span_id  # A finished in the first run
    assert b_second.context.trace_id != b_first.context.trace_id
    stored = await vp.instance(iid("B"))
    assert stored.span_id == _hex(b_second.context.span_id)
    attempts = await vp.attempts(iid("B"))
    assert [a.status for a in attempts] == [AttemptStatus.INTERRUPTED, AttemptStatus.FINISHED]
    assert [a.trace_id for a in attempts] == [_trace(b_first.context.trace_id),
                                              _trace(b_second.context.trace_id)]
    await vp.store.close()


async def test_metrics_count_final_statuses_attempts_retries_and_precondition_waits(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    vp = await open_virtual(LATER, tmp_path)
    pid = vp.pipeline_id = "df-telemetry-metrics"
    body = pipeline(activity("A", "fail-until 2", retryDelay="1 minutes",
                             precondition=ref("P")),
                    check("P", "true-after 3", retryDelay="1 minutes", maximumRetries="5"),
                    activity("Bad", "fatal"), **ONE)
    with Script().install():
        await vp.run(body)
    shell = {"headrace.pipeline.id": pid, "headrace.object.type": "ShellCommandActivity"}
    assert _count("headrace.instances", **shell, **{"headrace.status": "FINISHED"}) == 1
    assert _count("headrace.instances", **shell, **{"headrace.status": "FAILED"}) == 1
    assert _count("headrace.attempts", **shell, **{"headrace.attempt.status": "FAILED"}) == 2
    assert _count("headrace.attempts", **shell, **{"headrace.attempt.status": "FINISHED"}) == 1
    assert _count("headrace.retries", **shell, **{"headrace.retry.level": "attempt"}) == 1
    waits = [p for p in _metric_points("headrace.precondition.wait")
             if p.attributes.get("headrace.pipeline.id") == pid]
    assert [(p.count, p.sum) for p in waits] == [(1, 120.0)]  # 3 checks a minute apart
    lateness = [p for p in _metric_points("headrace.lateness")
                if p.attributes.get("headrace.pipeline.id") == pid]
    # backfilled a day late; A started after its precondition's two minutes
    assert sum(p.count for p in lateness) == 2
    assert max(p.max for p in lateness) == 86400.0 + 120.0
    await vp.store.close()


async def test_a_run_sampled_out_records_nothing_and_tells_children_so(
        tmp_path: Path, _providers: None) -> None:
    """The sampler says no (the switch is off): no span is recorded, and a child process's
    TRACEPARENT carries the not-sampled flag."""
    vp = await open_virtual(LATER, tmp_path)
    vp.pipeline_id = "df-telemetry-off"
    seen: list[dict[str, str]] = []

    async def record_env(ctx: Any) -> None:
        seen.append(dict(ctx.env))

    from engine.activities.base import ACTIVITIES

    saved = ACTIVITIES["ShellCommandActivity"]
    ACTIVITIES["ShellCommandActivity"] = record_env
    before = len(SPANS.get_finished_spans())
    try:
        result = await vp.run(pipeline(activity("A"), **ONE))
    finally:
        ACTIVITIES["ShellCommandActivity"] = saved
    assert result.succeeded
    assert len(SPANS.get_finished_spans()) == before
    # a trace that is not sampled still has ids; a child learns it was not sampled
    assert len(seen) == 1
    assert int(seen[0]["TRACEPARENT"].rsplit("-", 1)[1], 16) & 1 == 0  # the sampled bit
    await vp.store.close()



async def test_a_copy_is_a_span_with_one_child_per_stage_and_its_volumes(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    from connectors.base import CSV, JSONL
    from connectors.copy import copy
    from connectors.local import LocalSink, LocalSource

    source = tmp_path / "in.csv"
    source.write_text("".join(f"{n},name {n}\n" for n in range(250)))
    result = await copy(LocalSource(str(source), CSV), LocalSink(str(tmp_path / "out.jsonl"),
                                                                 JSONL))
    done = list(spans.get_finished_spans())
    [whole] = _named(done, "copy")
    assert whole.attributes["headrace.rows"] == result.rows == 250
    assert whole.attributes["headrace.bytes"] == result.bytes
    assert whole.attributes["headrace.copy.lane"] == "rows"
    assert whole.attributes["headrace.copy.source"] == str(source)
    assert whole.attributes["headrace.copy.destination"].endswith("out.jsonl")
    assert whole.attributes["headrace.throughput_bytes_per_s"] > 0
    stages = _children(done, whole)
    assert sorted(s.name for s in stages) == ["copy decode", "copy encode", "copy read",
                                              "copy write"]
    by_name = {s.name: s for s in stages}
    assert by_name["copy read"].attributes["headrace.bytes"] == source.stat().st_size
    assert by_name["copy decode"].attributes["headrace.rows"] == 250
    assert by_name["copy write"].attributes["headrace.bytes"] == result.bytes


async def test_a_failed_copy_sets_error_status_on_its_span_and_stage(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    from connectors.base import CSV
    from connectors.copy import copy
    from connectors.errors import ConnectorError
    from connectors.local import LocalSink, LocalSource

    with pytest.raises(ConnectorError):
        await copy(LocalSource(str(tmp_path / "missing.csv"), CSV),
                   LocalSink(str(tmp_path / "out.csv"), CSV))
    done = list(spans.get_finished_spans())
    [whole] = _named(done, "copy")
    assert whole.status.status_code == StatusCode.ERROR
    assert whole.attributes["error.type"]
    [event] = [e for e in whole.events if e.name == "exception"]
    assert "missing.csv" in event.attributes["exception.message"]
    assert "exception.stacktrace" not in event.attributes  # the message only
    [read] = _named(done, "copy read")
    assert read.status.status_code == StatusCode.ERROR


async def test_an_alarm_is_a_span_in_the_trace_of_the_instance_that_fired_it(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    vp = await open_virtual(LATER, tmp_path)
    vp.pipeline_id = "df-telemetry-alarm"
    body = pipeline(activity("A", "fatal", onFail=ref("Bad")),
                    {"id": "Bad", "name": "Bad", "type": "SnsAlarm", "subject": "s",
                     "topicArn": "arn:aws:sns:us-east-1:000000000000:t", "message": "m"},
                    **ONE)
    with Script().install():
        await vp.run(body)
    assert len(vp.notifier.of("Bad")) == 1
    done = list(spans.get_finished_spans())
    [a_run] = _named(done, "instance A")
    [action] = _named(done, "action Bad")
    assert action.parent is not None and action.parent.span_id == a_run.context.span_id
    assert action.attributes["headrace.action.field"] == "onFail"
    assert a_run.status.status_code == StatusCode.ERROR
    assert a_run.attributes["error.type"] == "FAILED"
    await vp.store.close()


def _files_text(root: Path) -> str:
    """Everything written under ``root`` (the attempts' logs)."""
    return "".join(f.read_text(errors="replace") for f in root.rglob("*") if f.is_file())


async def test_a_failed_check_masks_secrets_in_its_span_and_the_attempt_log(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    vp = await open_virtual(LATER, tmp_path)
    vp.pipeline_id = "df-telemetry-check-secret"
    body = pipeline(activity("A", precondition=ref("P")),
                    check("P", "leak #{*myToken}", retryDelay="1 minutes",
                          maximumRetries="1"), **ONE)
    body["parameters"] = [{"id": "*myToken", "type": "String", "default": "hunter2-s3cret"}]
    with Script().install():
        result = await vp.run(body)
    assert not result.succeeded
    checks = _named(list(spans.get_finished_spans()), "check ShellCommandPrecondition")
    assert checks and all(s.status.status_code == StatusCode.ERROR for s in checks)
    assert all("hunter2-s3cret" not in (s.status.description or "") for s in checks)
    logged = _files_text(tmp_path)
    assert "check 1 failed: unknown scripted check" in logged
    assert "hunter2-s3cret" not in logged
