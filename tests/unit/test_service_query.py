"""QueryObjects' selectors over a real SQLite store: statuses (and the AWS CLI's status
words), components, time ranges intersected, keyset pages that neither skip nor repeat, the
ATTEMPT sphere; malformed selectors refused with what would be valid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.service import InvalidRequest, Objects, PipelineService, parse_selectors
from engine.store import AttemptRecord, InstanceRecord, Status, open_store

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sel(field: str, op: str, *values: str) -> dict[str, object]:
    return {"fieldName": field, "operator": {"type": op, "values": list(values)}}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/s.db"


@pytest.fixture
async def objects(store_url: str):  # type: ignore[no-untyped-def]
    async with open_store(store_url) as store:
        record = await PipelineService(store).create("q", "q")
        statuses = [Status.FINISHED, Status.WAITING_FOR_RUNNER, Status.FAILED,
                    Status.WAITING_ON_DEPENDENCIES]
        records = []
        for i in range(40):
            start = T0 + timedelta(minutes=15 * i)
            for oid in ("A", "B"):
                records.append(InstanceRecord(
                    record.id, f"@{oid}_{start:%Y-%m-%dT%H:%M:%S}", oid, "ShellCommandActivity",
                    "activity", start, start + timedelta(minutes=15), start,
                    status=statuses[i % 4],
                    actual_start=start + timedelta(minutes=1) if i % 4 != 3 else None))
        await store.add_instances(records)
        for rec in records[:6]:  # one attempt each; the instance keeps its status
            assert await store.start_attempt(rec, AttemptRecord(record.id, rec.id, 1,
                                                                started_at=rec.scheduled_start))
            await store.update_instance(record.id, rec.id, status=rec.status)
        yield Objects(store), record.id


@pytest.mark.anyio
async def test_selectors_filter_in_the_store(objects) -> None:  # type: ignore[no-untyped-def]
    o, pid = objects

    async def ids(*selectors: dict[str, object], sphere: str = "INSTANCE") -> list[str]:
        out, marker = [], None
        while True:
            page, marker = await o.query(pid, sphere, parse_selectors(list(selectors)),
                                         limit=7, marker=marker)
            out += page
            if marker is None:
                return out

    assert len(await ids()) == 80
    finished = await ids(sel("@status", "EQ", "FINISHED"))
    assert len(finished) == 20 and finished == sorted(finished)
    assert len(await ids(sel("@status", "EQ", "WAITING"))) == 40  # the CLI's word: both kinds
    assert len(await ids(sel("@status", "EQ", "FINISHED", "FAILED"))) == 40
    window = await ids(sel("@scheduledStartTime", "BETWEEN", "2024-01-01T01:00:00",
                           "2024-01-01T02:00:00"), sel("@componentParent", "REF_EQ", "B"))
    assert window == [f"@B_2024-01-01T{h}:00" for h in ("01:00", "01:15", "01:30", "01:45",
                                                         "02:00")]
    narrowed = await ids(sel("@scheduledStartTime", "GE", "2024-01-01T01:00:00"),
                         sel("@scheduledStartTime", "LE", "2024-01-01T01:30:00"),
                         sel("@componentParent", "EQ", "A"))
    assert len(narrowed) == 3
    assert len(await ids(sel("@actualStartTime", "GE", "2000-01-01T00:00:00"))) == 60
    assert await ids(sel("@status", "EQ", "FINISHED"), sel("@status", "EQ", "FAILED")) == []
    assert await ids(sel("parent", "EQ", "A")) == []  # instances have no parent field
    assert await ids(sel("@sphere", "EQ", "COMPONENT")) == []
    attempts = await ids(sphere="ATTEMPT")
    assert len(attempts) == 6 and all(a.endswith("_Attempt=1") for a in attempts)
    assert await ids(sel("@componentParent", "EQ", "B"), sphere="ATTEMPT") == [
        a for a in attempts if a.startswith("@B_")]


@pytest.mark.anyio
async def test_deleted_pipelines_are_told_apart(store_url: str) -> None:
    from engine.service import PipelineDeleted, PipelineNotFound

    async with open_store(store_url) as store:
        service = PipelineService(store)
        record = await service.create("d", "d")
        await service.delete(record.id)
        with pytest.raises(PipelineDeleted, match="deleted at"):
            await service.pipeline(record.id)
        with pytest.raises(PipelineNotFound):
            await service.pipeline("df-NEVER")


def test_malformed_selectors_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="operator type must be one of EQ, REF_EQ"):
        parse_selectors([sel("@status", "LIKE", "x")])
    with pytest.raises(InvalidRequest, match="BETWEEN takes 2 value"):
        parse_selectors([sel("@scheduledStartTime", "BETWEEN", "2024-01-01T00:00:00")])
    with pytest.raises(InvalidRequest, match="LE applies to"):
        parse_selectors([sel("@status", "LE", "x")])
    with pytest.raises(InvalidRequest, match=r"query.selectors\[0\]"):
        parse_selectors([sel("@actualEndTime", "GE", "last tuesday")])
    with pytest.raises(InvalidRequest, match="at most 10 selectors"):
        parse_selectors([sel("@status", "EQ", "x")] * 11)


@pytest.mark.anyio
async def test_markers_are_checked(objects) -> None:  # type: ignore[no-untyped-def]
    o, pid = objects
    _, marker = await o.query(pid, "INSTANCE", [], limit=5)
    assert marker is not None
    with pytest.raises(InvalidRequest, match="another sphere"):
        await o.query(pid, "ATTEMPT", [], marker=marker)
    with pytest.raises(InvalidRequest, match="not one this service handed out"):
        await o.query(pid, "INSTANCE", [], marker="!!")
