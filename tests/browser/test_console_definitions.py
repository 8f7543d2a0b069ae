"""The definitions page (latest vs active with a diff, findings, validate before storing,
roll back, activate), keyboard use and a phone's width, in a real browser."""

from __future__ import annotations

import json
from typing import Any

from tests.browser.console_kit import Console, make_pipeline, wait_until
from tests.e2e.api_kit import KEY_ID, SECRET, Server, wire_objects


def shell(object_id: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"id": object_id, "name": object_id, "type": "ShellCommandActivity",
            "command": command, **fields}


def body(*objects: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": "Default", "name": "Default", "scheduleType": "cron",
             "schedule": {"ref": "S"}},
            {"id": "S", "name": "S", "type": "Schedule", "period": "1 day",
             "startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-01-02T00:00:00"},
            *objects]


def versions(server: Server, pid: str) -> tuple[str, str]:
    fields = server.client().describe_pipelines(pipelineIds=[pid])[
        "pipelineDescriptionList"][0]["fields"]
    got = {f["key"]: f.get("stringValue") for f in fields}
    return str(got.get("@version", "")), str(got.get("@activeVersion", ""))


def submit(console: Console, action: str, *options: str) -> None:
    console.page.click(f"button[data-action='{action}']")
    console.page.wait_for_selector("#confirm-button")
    for option in options:
        console.page.check(f"#{option}")
    console.page.click("#confirm-button")
    console.page.wait_for_load_state()


def test_versions_diff_findings_validate_roll_back_and_activate(
        console: Console, server: Server) -> None:
    pid = make_pipeline(server, "versions", [shell("Say", "echo one")], end=
                        "2024-01-01T00:15:00", unique_id="versions")
    put = server.client().put_pipeline_definition(pipelineId=pid, pipelineObjects=wire_objects(
        *body(shell("Say", "echo two", colour="blue"))))
    assert not put["errored"] and put["validationWarnings"]
    console.login()
    console.goto(f"/pipelines/{pid}/definitions")
    assert console.page.inner_text("#latest-version") == "2"
    assert console.page.inner_text("#active-version") == "1"
    removed = console.page.locator("#diff span.del").all_inner_texts()
    added = console.page.locator("#diff span.add").all_inner_texts()
    assert any('"echo one"' in line for line in removed)
    assert any('"echo two"' in line for line in added)
    rows = console.page.locator("table.findings tr[data-severity]")
    found = [rows.nth(i).locator("td").all_inner_texts()[0:3] for i in range(rows.count())]
    assert ["warning", "Say", "colour"] in found
    console.shot("definitions")

    # a pasted definition with an error is refused with its object and field; nothing stored
    bad = {"objects": body(shell("Say", "echo three", dependsOn={"ref": "Nowhere"}))}
    console.page.fill("#definition", json.dumps(bad, indent=2))
    console.page.click("#put-button")
    error = console.page.locator("#pasted-findings tr[data-severity=error]").first
    assert error.locator("td").nth(1).inner_text() == "Say"
    assert error.locator("td").nth(2).inner_text() == "dependsOn"
    assert versions(server, pid) == ("2", "1")
    console.page.fill("#definition", "{not json")
    console.page.click("#validate-button")
    assert "line 1" in console.page.inner_text("#pasted-error")
    good = {"objects": body(shell("Say", "echo three", workerGroup="etl"))}
    console.page.fill("#definition", json.dumps(good))
    console.page.click("#validate-button")
    assert console.page.inner_text("#pasted-findings") == "No finding: it validates cleanly."
    assert versions(server, pid) == ("2", "1")
    console.page.click("#put-button")
    assert "stored as version 3" in console.page.inner_text("p.notice")
    assert versions(server, pid) == ("3", "1")

    # roll back: version 1 stored again as the latest, the same text as the active one
    console.page.click("li[data-version='1'] button[data-action='rollback']")
    assert "Store version 1" in console.page.inner_text("#confirm-what")
    console.page.click("#confirm-button")
    console.page.wait_for_load_state()
    assert "stored again as version 4" in console.page.inner_text("p.notice")
    assert versions(server, pid) == ("4", "1")
    assert console.page.get_attribute("#diff", "data-same") == "true"
    submit(console, "activate", "allow_backfill")
    assert versions(server, pid) == ("4", "4")


def test_a_definition_that_cannot_run_yet_is_not_offered_for_activation(
        console: Console, server: Server) -> None:
    pid = server.client().create_pipeline(name="needs-values", uniqueId="needs-values")[
        "pipelineId"]
    objects = body(shell("Say", "echo #{myWord}"))
    put = server.client().put_pipeline_definition(
        pipelineId=pid, pipelineObjects=wire_objects(*objects),
        parameterObjects=[{"id": "myWord", "attributes": [{"key": "type",
                                                           "stringValue": "String"}]}])
    assert not put["errored"]
    console.login()
    console.goto(f"/pipelines/{pid}/definitions")
    assert "would be refused" in console.page.inner_text("p.error")
    assert "myWord" in console.page.inner_text("table.findings")
    assert console.page.locator("button[data-action='activate']").count() == 0


def test_keyboard_only_login_and_navigation(console: Console,
                                            server: Server) -> None:
    make_pipeline(server, "keyboard", [shell("Only", "echo k")], end="2024-01-01T00:15:00",
                  unique_id="keyboard")
    page = console.page
    console.goto("/pipelines")
    assert page.evaluate("document.activeElement.id") == "access_key"  # autofocus
    page.keyboard.type(KEY_ID)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "secret_key"
    page.keyboard.type(SECRET)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url == f"{console.base}/pipelines")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # every form control has a label, every button a name
    unlabeled = page.evaluate("""() => [...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea')].filter(
        e => !e.labels || e.labels.length === 0).map(e => e.name)""")
    assert unlabeled == []
    # Tab reaches the pipeline's link; Enter opens it
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "keyboard":
            break
    else:
        raise AssertionError("Tab never reached the pipeline's link")
    page.keyboard.press("Enter")
    page.wait_for_selector("table.grid")
    assert page.locator("h1").inner_text() == "keyboard"
    focusable = page.eval_on_selector_all("table.grid td a[href]", "links => links.length")
    assert focusable == page.eval_on_selector_all("table.grid td[data-id]", "c => c.length")


def test_readable_on_a_phone(browser: Any, server: Server) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    kit = Console(server, context)
    try:
        pid = make_pipeline(server, "phone", [shell("A", "echo a"), shell("B", "echo b")],
                            end="2024-01-02T00:00:00", unique_id="phone")
        wait_until(lambda: versions(server, pid)[1] == "1", what="activation")
        kit.login()
        for path in ("/pipelines", f"/pipelines/{pid}", f"/pipelines/{pid}/definitions"):
            kit.goto(path)
            kit.page.wait_for_load_state()
            # nothing wider than the screen: wide tables scroll inside their own box
            overflow = kit.page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, path
        kit.goto(f"/pipelines/{pid}")
        kit.shot("pipeline-phone")
        assert kit.external_requests() == []
    finally:
        context.close()
