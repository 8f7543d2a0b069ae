"""``headrace serve`` on a shared PostgreSQL store: boto3 creates, defines and activates a
pipeline, the engine in the server runs it, and a second, API-only server on the same store
sees the same instances (the scale-out shape: one scheduler, several API front ends)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.api_kit import fields, start_server, wait_for, wire_objects


def test_serve_on_postgres(pg_database: str, tmp_path: Path) -> None:
    main = start_server(tmp_path / "a", "--poll-interval", "0.2", store=pg_database)
    front = start_server(tmp_path / "b", "--no-scheduler", store=pg_database)
    try:
        c = main.client()
        pid = c.create_pipeline(name="pg", uniqueId="pg")["pipelineId"]
        objects = wire_objects(
            {"id": "Default", "name": "Default", "scheduleType": "cron",
             "schedule": {"ref": "S"}},
            {"id": "S", "name": "S", "type": "Schedule", "period": "15 minutes",
             "startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-01-01T00:30:00"},
            {"id": "A", "name": "A", "type": "ShellCommandActivity", "command": "true"})
        assert c.put_pipeline_definition(pipelineId=pid, pipelineObjects=objects)[
            "errored"] is False
        c.activate_pipeline(pipelineId=pid, startTimestamp=datetime(2024, 1, 1, tzinfo=UTC))
        other = front.client()

        def finished() -> list[str]:
            return list(other.query_objects(pipelineId=pid, sphere="INSTANCE", query={
                "selectors": [{"fieldName": "@status",
                               "operator": {"type": "EQ", "values": ["FINISHED"]}}]})["ids"])

        wait_for(lambda: len(finished()) == 2, what="the engine to run both intervals")
        described = other.describe_objects(pipelineId=pid, objectIds=finished())
        assert {fields(o)["@attemptCount"] for o in described["pipelineObjects"]} == {"1"}
        attempts = other.query_objects(pipelineId=pid, sphere="ATTEMPT")["ids"]
        assert len(attempts) == 2
    finally:
        assert main.stop() == 130
        front.stop()
