"""Acting from the console in a real browser, and watching it happen live: a rerun in a pipeline
whose schedule has ended, a running attempt's log streamed, pause/resume, mark finished,
deactivate/activate; the instance page's attempts, trace link and evaluated fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.console_kit import Console, make_pipeline, statuses, wait_until
from tests.e2e.api_kit import Server


def shell(object_id: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"id": object_id, "name": object_id, "type": "ShellCommandActivity",
            "command": command, "maximumRetries": "0", **fields}


def pipeline_state(server: Server, pid: str) -> str:
    described = server.client().describe_pipelines(pipelineIds=[pid])
    fields = described["pipelineDescriptionList"][0]["fields"]
    return str(next(f["stringValue"] for f in fields if f["key"] == "@pipelineState"))


def cell_status(console: Console, instance_id: str) -> str | None:
    value = console.page.get_attribute(f"td[data-id='{instance_id}']", "data-status")
    return str(value) if value is not None else None


def wait_for_cell(console: Console, instance_id: str, status: str, timeout: float = 60) -> None:
    console.page.wait_for_selector(f"td[data-id='{instance_id}'][data-status='{status}']",
                                   timeout=timeout * 1000)


def confirm(console: Console, action: str, *options: str) -> None:
    """Click an action's button, tick ``options`` on the confirmation page, confirm."""
    console.page.click(f"button[data-action='{action}']")
    console.page.wait_for_selector("#confirm-button")
    for option in options:
        console.page.check(f"#{option}")
    console.page.click("#confirm-button")
    console.page.wait_for_load_state()


def test_a_rerun_of_a_finished_pipeline_changes_the_cell_live(
        console: Console, server: Server, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    broken = tmp_path / "broken"
    pid = make_pipeline(server, "rerun-me", [
        shell("Extract", "echo extract"),
        shell("Load", f"echo load; if [ -f {broken} ]; then while [ ! -f {gate} ]; do "
                      "sleep 0.1; done; echo 'no input' >&2; exit 3; fi",
              dependsOn={"ref": "Extract"}),
    ], end="2024-01-01T00:15:00", unique_id="rerun-me")
    wait_until(lambda: pipeline_state(server, pid) == "FINISHED", what="the schedule to end")
    load = "@Load_2024-01-01T00:00:00"
    broken.touch()
    console.login()
    console.goto(f"/pipelines/{pid}/instances/{load}")
    assert console.page.get_attribute("#instance-status", "data-status") == "FINISHED"
    confirm(console, "rerun")
    assert console.page.url.endswith(f"/console/pipelines/{pid}")
    assert f"RERUN {load}" in console.page.locator("p.notice").inner_text()
    console.page.evaluate("window.notReloaded = true")
    wait_for_cell(console, load, "RUNNING")  # the engine runs it: no longer stuck waiting
    assert pipeline_state(server, pid) == "SCHEDULED"
    console.page.wait_for_selector("#pipeline-state[data-state='SCHEDULED']")
    console.shot("rerun-running")
    gate.touch()
    wait_for_cell(console, load, "FAILED")
    assert console.page.evaluate("window.notReloaded") is True  # changed live, in place
    assert console.page.get_attribute(f"td[data-id='{load}']", "class") == "s-FAILED"
    wait_until(lambda: pipeline_state(server, pid) == "FINISHED", what="FINISHED again")
    console.page.wait_for_selector("#pipeline-state[data-state='FINISHED']")
    assert statuses(server, pid) == {"@Extract_2024-01-01T00:00:00": "FINISHED",
                                     load: "FAILED"}
    # the instance page: two attempts, the second's error, a trace link
    console.goto(f"/pipelines/{pid}/instances/{load}")
    rows = console.page.locator("table.attempts tbody tr")
    assert rows.count() == 2
    assert rows.nth(1).locator("td .cell").inner_text() == "FAILED"
    assert "exited with code 3" in rows.nth(1).locator("td.error-text").inner_text()
    link = rows.nth(1).locator("a.trace")
    trace_id = link.inner_text()
    assert len(trace_id) == 32
    assert link.get_attribute("href") == f"http://127.0.0.1:16686/trace/{trace_id}"
    assert "no input" in console.page.locator("#log-stderr").inner_text()
    console.page.wait_for_selector("#log-state[data-state='ended']")


def test_a_running_attempt_s_log_streams_live(console: Console, server: Server,
                                              tmp_path: Path) -> None:
    gate = tmp_path / "go"
    pid = make_pipeline(server, "streamer", [
        shell("Talk", f"echo first line; while [ ! -f {gate} ]; do sleep 0.1; done; "
                      "echo second line; echo to-stderr >&2"),
    ], end="2024-01-01T00:15:00", unique_id="streamer")
    talk = "@Talk_2024-01-01T00:00:00"
    wait_until(lambda: statuses(server, pid).get(talk) == "RUNNING", what="Talk to run")
    console.login()
    console.goto(f"/pipelines/{pid}/instances/{talk}")
    console.page.wait_for_selector("#log-state[data-state='streaming']")
    console.page.wait_for_function(
        "() => document.getElementById('log-stdout').textContent.includes('first line')")
    assert "second line" not in console.page.locator("#log-stdout").inner_text()
    console.shot("instance-streaming")
    gate.touch()
    console.page.wait_for_function(
        "() => document.getElementById('log-stdout').textContent.includes('second line')")
    console.page.wait_for_selector("#log-state[data-state='ended']", timeout=30_000)
    assert console.page.locator("#log-stdout").inner_text() == "first line\nsecond line\n"
    assert "to-stderr" in console.page.locator("#log-stderr").inner_text()
    assert "attempt 1 ended FINISHED" in console.page.locator("#log-events").inner_text()
    console.page.wait_for_selector("#instance-status[data-status='FINISHED']")


def test_evaluated_fields_pause_resume_and_mark_finished(
        console: Console, server: Server, tmp_path: Path) -> None:
    gate = tmp_path / "never"
    pid = make_pipeline(server, "fields", [
        shell("Stamp", "echo day #{format(@scheduledStartTime,'YYYY-MM-dd')}"),
        shell("Hold", f"while [ ! -f {gate} ]; do sleep 0.1; done"),
        shell("Blocked", "echo blocked", dependsOn={"ref": "Hold"},
              lateAfterTimeout="1 hour"),  # of a 2024 interval: late at once, not started
    ], end="2024-01-01T00:15:00", unique_id="fields")
    stamp, blocked = "@Stamp_2024-01-01T00:00:00", "@Blocked_2024-01-01T00:00:00"
    wait_until(lambda: statuses(server, pid).get(stamp) == "FINISHED", what="Stamp to end")
    console.login()
    console.goto(f"/pipelines/{pid}/instances/{stamp}")
    command = console.page.locator("table.fields tr[data-field=command] td")
    assert command.inner_text() == "echo day 2024-01-01"
    console.goto(f"/pipelines/{pid}/instances/{blocked}")
    assert console.page.get_attribute("#instance-status", "data-status") == (
        "WAITING_ON_DEPENDENCIES")
    waits = console.page.locator("dd ul.plain li").all_inner_texts()
    assert waits == ["@Hold_2024-01-01T00:00:00"]
    console.goto(f"/pipelines/{pid}")
    late_cell = f"td.is-late[data-id='{blocked}']"
    console.page.wait_for_selector(late_cell)  # marked late, live if it happened meanwhile
    console.goto(f"/pipelines/{pid}")
    assert console.page.get_attribute(f"{late_cell} a", "title") == (
        "Blocked 2024-01-01T00:00:00: WAITING_ON_DEPENDENCIES, late, waiting on "
        "@Hold_2024-01-01T00:00:00")
    console.page.wait_for_selector("#graph svg a.node")
    console.shot("pipeline-live")
    console.goto("/pipelines")
    assert "late: 1" in console.page.inner_text(f"tr[data-pipeline='{pid}'] td.counts")
    console.goto(f"/pipelines/{pid}/instances/{blocked}")
    confirm(console, "pause")
    console.page.wait_for_selector("tr[data-component='Blocked'] th[data-status='PAUSED']")
    console.goto(f"/pipelines/{pid}/instances/{blocked}")
    confirm(console, "resume")
    console.page.wait_for_selector("tr[data-component='Blocked'] th[data-status='']")
    console.goto(f"/pipelines/{pid}/instances/{blocked}")
    confirm(console, "mark-finished")
    wait_for_cell(console, blocked, "FINISHED")
    assert statuses(server, pid)[blocked] == "FINISHED"
    gate.touch()


def test_deactivate_then_activate(console: Console, server: Server) -> None:
    pid = make_pipeline(server, "switch", [shell("Only", "echo only")],
                        end="2024-01-01T00:15:00", unique_id="switch")
    wait_until(lambda: pipeline_state(server, pid) == "FINISHED", what="the schedule to end")
    console.login()
    console.goto(f"/pipelines/{pid}")
    confirm(console, "deactivate")
    wait_until(lambda: pipeline_state(server, pid) == "INACTIVE", what="INACTIVE")
    console.page.wait_for_selector("#pipeline-state[data-state='INACTIVE']")
    confirm(console, "activate")  # a start more than a day ago is a backfill: refused
    assert "backfill" in console.page.locator("p.error").inner_text()
    confirm(console, "activate", "allow_backfill")
    assert "activated version 1" in console.page.locator("p.notice").inner_text()
    wait_until(lambda: pipeline_state(server, pid) in ("SCHEDULED", "FINISHED"),
               what="active again")


def test_the_grid_shows_failures_and_what_they_cascade_to(console: Console,
                                                          server: Server) -> None:
    minute = "#{format(@scheduledStartTime,'mm')}"
    pid = make_pipeline(server, "nightly-etl", [
        shell("Extract", f"[ {minute} != 30 ]"),  # fails in the :30 intervals
        shell("Transform", "echo t", dependsOn={"ref": "Extract"}),
        shell("Load", "echo l", dependsOn={"ref": "Transform"}),
        shell("Report", "echo r", dependsOn={"ref": "Load"}),
    ], end="2024-01-01T02:00:00", unique_id="nightly-etl")
    settled = ("FINISHED", "FAILED", "CASCADE_FAILED")
    wait_until(lambda: len(statuses(server, pid)) == 32 and all(
        s in settled for s in statuses(server, pid).values()), what="the day to settle")
    console.login()
    console.goto(f"/pipelines/{pid}")
    grid = console.grid()
    assert grid == statuses(server, pid)
    for iid, status in grid.items():
        at_half_past = iid.endswith(":30:00")
        expected = ("FAILED" if iid.startswith("@Extract") else "CASCADE_FAILED") \
            if at_half_past else "FINISHED"
        assert status == expected, iid
    console.page.wait_for_selector("#graph svg a.node")
    console.shot("pipeline-failures")
