"""Commands started by headrace join the run's trace: a ShellCommandActivity's process gets
``TRACEPARENT`` of its attempt span, a ShellCommandPrecondition's that of its check span (the
exported spans read from the console exporter's output)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.e2e.cli_kit import Cli, write_definition
from tests.otel_kit import spans_in

#: W3C trace context: version-traceid-spanid-flags
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class ConsoleCli(Cli):
    """The CLI with spans printed by the console exporter on stderr (no backend needed)."""

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in super().env().items() if not k.startswith("OTEL_")}
        return {**env, "OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none"}


def _console(cli: Cli, definition: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = cli("run", str(definition), "--output", "json")
    return json.loads(result.stdout), spans_in(result.stderr)


def _hex(value: str) -> str:
    return value.removeprefix("0x")


def test_a_shell_activity_gets_the_traceparent_of_its_attempt_span(tmp_path: Path) -> None:
    cli = ConsoleCli(tmp_path)
    seen = tmp_path / "traceparent.txt"
    definition = write_definition(
        tmp_path / "p.json",
        {"id": "Step", "name": "Step", "type": "ShellCommandActivity",
         "command": f"printf '%s' \"$TRACEPARENT\" >> {seen}"})
    output, spans = _console(cli, definition)
    assert [i["status"] for i in output["instances"]] == ["FINISHED"]
    match = TRACEPARENT.match(seen.read_text())
    assert match, seen.read_text()
    trace_id, span_id, flags = match.groups()
    [attempt] = [s for s in spans if s["name"] == "attempt"]
    assert _hex(attempt["context"]["trace_id"]) == trace_id
    assert _hex(attempt["context"]["span_id"]) == span_id
    assert int(flags, 16) & 1  # sampled
    [instance] = [s for s in spans if s["name"] == "instance Step"]
    assert _hex(attempt["parent_id"]) == _hex(instance["context"]["span_id"])


def test_a_shell_precondition_gets_the_traceparent_of_each_check(tmp_path: Path) -> None:
    cli = ConsoleCli(tmp_path)
    seen = tmp_path / "checks.txt"
    flag = tmp_path / "ready"
    definition = write_definition(
        tmp_path / "p.json",
        {"id": "Step", "name": "Step", "type": "ShellCommandActivity", "command": "true",
         "precondition": {"ref": "Ready"}},
        # the first check fails and creates the flag, the second finds it
        {"id": "Ready", "name": "Ready", "type": "ShellCommandPrecondition",
         "command": f"echo \"$TRACEPARENT\" >> {seen}; test -e {flag} || "
                    f"{{ touch {flag}; exit 1; }}",
         "retryDelay": "1 seconds", "maximumRetries": "3"})
    output, spans = _console(cli, definition)
    assert {i["objectId"]: i["status"] for i in output["instances"]}["Step"] == "FINISHED"
    parents = [TRACEPARENT.match(line) for line in seen.read_text().split()]
    assert len(parents) == 2 and all(parents)
    checks = sorted((s for s in spans if s["name"] == "check ShellCommandPrecondition"),
                    key=lambda s: s["attributes"]["headrace.check.number"])
    assert [(_hex(s["context"]["trace_id"]), _hex(s["context"]["span_id"]))
            for s in checks] == [(m.group(1), m.group(2)) for m in parents if m]
    assert [s["attributes"]["headrace.check.result"] for s in checks] == [False, True]
