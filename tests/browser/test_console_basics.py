"""The console in a real browser (headless Chromium): log in, the pipelines page, a pipeline's
instance grid against the store, CSRF, escaping, secrets, and no request leaving the page."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import pytest

from tests.browser.console_kit import Console, make_pipeline, statuses, wait_until
from tests.e2e.api_kit import OTHER_KEY_ID, SECRET, Server

EVIL = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
DB_SECRET = "Pa55-w0rd-that-must-never-show"


def shell(object_id: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"id": object_id, "name": object_id, "type": "ShellCommandActivity",
            "command": command, **fields}


@pytest.fixture(scope="module")
def pipelines(server: Server) -> dict[str, str]:
    """Three pipelines: a chain run to its end, one with a hostile name, one holding a
    secret; all finished before the tests look."""
    ids = {
        "chain": make_pipeline(server, "nightly-chain", [
            shell("Extract", "echo extract"),
            shell("Load", "echo load", dependsOn={"ref": "Extract"}),
        ], tags={"team": "data"}),
        "evil": make_pipeline(server, EVIL, [shell("Step", "echo hi")],
                              unique_id="evil", tags={"owner": EVIL}),
        "secret": make_pipeline(server, "with-secret", [
            {"id": "Db", "name": "Db", "type": "JdbcDatabase",
             "connectionString": "jdbc:postgresql://127.0.0.1:1/db", "username": "u",
             "*password": "#{*myDbPassword}", "jdbcDriverClass": "org.postgresql.Driver"},
            shell("Quiet", "echo #{*myDbPassword} > /dev/null"),
        ], end="2024-01-01T00:15:00",
            parameter_values=[{"id": "*myDbPassword", "stringValue": DB_SECRET}]),
    }
    for pid in ids.values():
        wait_until(lambda pid=pid: all(s == "FINISHED" for s in statuses(server, pid).values()),
                   what=f"{pid} to finish")
    return ids


def test_a_page_asks_for_a_login_and_a_wrong_secret_is_refused(console: Console) -> None:
    console.goto("/pipelines")
    assert "/console/login" in console.page.url
    console.shot("login")
    console.login(secret="not-the-secret")
    assert console.page.locator("p.error").inner_text() == "unknown access key or wrong secret"
    console.login(key=OTHER_KEY_ID, secret=SECRET)  # a known key with another key's secret
    assert "/console/login" in console.page.url
    console.login()
    assert console.page.url.endswith("/console/pipelines")
    cookie = next(c for c in console.context.cookies() if c["name"] == "headrace_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"
    assert console.page.evaluate("document.cookie") == ""  # not readable by scripts


def test_the_pipelines_page_lists_states_counts_and_filters(
        console: Console, pipelines: dict[str, str]) -> None:
    console.login()
    rows = console.page.locator("table.pipelines tbody tr[data-pipeline]")
    assert rows.count() >= 3
    chain = console.page.locator(f"tr[data-pipeline='{pipelines['chain']}']")
    assert chain.locator("td.state").inner_text() == "FINISHED"
    assert "every 15 minutes from 2024-01-01T00:00:00" in chain.inner_text()
    assert chain.locator(".count[data-status=FINISHED]").inner_text() == "FINISHED 8"
    health = chain.locator("ol.health li")
    assert health.count() == 4
    assert {health.nth(i).get_attribute("data-status") for i in range(4)} == {"FINISHED"}
    console.shot("pipelines")
    console.page.fill("#q", "chain")
    console.page.click("form.filters button")
    assert console.page.locator("tr[data-pipeline]").count() == 1
    console.page.fill("#q", "")
    console.page.fill("#tag", "team=data")
    console.page.click("form.filters button")
    ids = console.page.eval_on_selector_all("tr[data-pipeline]",
                                            "rows => rows.map(r => r.dataset.pipeline)")
    assert ids == [pipelines["chain"]]
    console.page.select_option("#state", "SCHEDULED")
    console.page.fill("#tag", "")
    console.page.click("form.filters button")
    assert console.page.locator("tr[data-pipeline]").count() == 0


def test_the_grid_has_one_cell_per_instance_with_its_store_status(
        console: Console, server: Server, pipelines: dict[str, str]) -> None:
    console.login()
    console.goto(f"/pipelines/{pipelines['chain']}")
    assert console.grid() == statuses(server, pipelines["chain"])
    assert len(console.grid()) == 8  # Extract and Load, four intervals
    header = console.page.locator("table.grid thead th.t")
    assert header.count() == 4
    title = console.page.locator("table.grid td[data-id^='@Load_'] a").first.get_attribute(
        "title")
    assert title == "Load 2024-01-01T00:00:00: FINISHED"
    console.page.wait_for_selector("#graph svg a.node")
    nodes = console.page.eval_on_selector_all("#graph a.node", "ns => ns.map(n => n.dataset.id)")
    assert sorted(nodes) == ["Extract", "Load"]
    edges = console.page.eval_on_selector_all(
        "#graph path.edge", "es => es.map(e => [e.dataset.from, e.dataset.kind, e.dataset.to])")
    assert edges == [["Extract", "dependsOn", "Load"]]
    assert console.page.locator("#graph g.cluster").count() == 0  # no worker group
    console.shot("pipeline")
    console.page.click("table.grid td[data-id='@Load_2024-01-01T00:15:00'] a")
    assert console.page.locator("h1").inner_text() == "@Load_2024-01-01T00:15:00"


def test_an_action_without_the_csrf_token_is_refused(
        console: Console, server: Server, pipelines: dict[str, str]) -> None:
    console.login()
    pid = pipelines["chain"]
    console.goto(f"/pipelines/{pid}")
    before = statuses(server, pid)
    target = "@Extract_2024-01-01T00:00:00"
    url = f"/console/pipelines/{pid}/actions/rerun"
    script = """async ([url, body, headers]) => {
        const r = await fetch(url, {method: "POST", body, headers: {
            "Content-Type": "application/x-www-form-urlencoded", ...headers}});
        return [r.status, await r.text()];
    }"""
    body = f"object_id={target}&confirm=yes"
    status, text = console.page.evaluate(script, [url, body, {}])
    assert status == 403 and "CSRF" in text
    status, _ = console.page.evaluate(script, [url, body, {"X-CSRF-Token": "forged"}])
    assert status == 403
    status, _ = console.page.evaluate(script, [url, body + "&csrf_token=forged", {}])
    assert status == 403
    assert statuses(server, pid) == before  # nothing was rerun
    # the page's own token works (the action itself is tested with the grid)
    status, _ = console.page.evaluate(script, [url, f"object_id={target}", {
        "X-CSRF-Token": console.csrf()}])
    assert status == 200  # the confirmation page: nothing done until confirmed
    assert statuses(server, pid) == before


def test_without_a_session_an_action_is_refused(server: Server,
                                                 pipelines: dict[str, str]) -> None:
    request = urllib.request.Request(
        f"{server.url}/console/pipelines/{pipelines['chain']}/actions/rerun",
        data=b"object_id=%40Extract_2024-01-01T00%3A00%3A00&confirm=yes", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    refused.value.close()
    assert refused.value.code == 401


def test_a_hostile_name_is_shown_as_text(console: Console, pipelines: dict[str, str]) -> None:
    console.login()
    row = console.page.locator(f"tr[data-pipeline='{pipelines['evil']}']")
    assert row.locator("th a").inner_text() == EVIL
    assert f"owner={EVIL}" in row.locator(".tag").inner_text()
    console.goto(f"/pipelines/{pipelines['evil']}")
    assert console.page.locator("h1").inner_text() == EVIL
    assert console.page.locator("img[src=x]").count() == 0
    scripts = console.page.eval_on_selector_all("script[src]", "s => s.map(x => x.src)")
    assert all(src.startswith(console.server.url + "/console/static/") for src in scripts)
    assert console.page.locator("script:not([src])").count() == 1  # the graph's JSON data
    assert console.dialogs == []


def test_no_secret_reaches_a_page(console: Console, server: Server,
                                  pipelines: dict[str, str]) -> None:
    console.login()
    pid = pipelines["secret"]
    pages = ["/pipelines", f"/pipelines/{pid}",
             f"/pipelines/{pid}/instances/@Quiet_2024-01-01T00:00:00",
             f"/pipelines/{pid}/definitions"]
    for path in pages:
        response = console.goto(path)
        assert response.status == 200, path
        html = console.page.content()
        assert DB_SECRET not in html, path
        assert SECRET not in html
    console.goto(f"/pipelines/{pid}/instances/@Quiet_2024-01-01T00:00:00")
    # a value made with a secret is masked whole, as plan and DescribeObjects show it
    assert console.page.inner_text("tr[data-field=command] td") == "****"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp


def test_the_server_listens_on_loopback_by_default(server: Server) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{server.url}/console/login", timeout=30) as response:
        assert response.status == 200
        assert json.dumps(response.headers.get("x-frame-options")) == '"DENY"'


def test_a_graph_of_100_objects_is_laid_out_without_overlaps(
        console: Console, server: Server) -> None:
    # a worker group each: the ones of one group are drawn in a box around them
    steps = [shell(f"Step{i:03d}", "true", workerGroup="etl" if i % 2 else "reports",
                   **({"dependsOn": {"ref": f"Step{(i - 1) // 3:03d}"}} if i else {}))
             for i in range(100)]
    pid = make_pipeline(server, "hundred", steps, activate=False, unique_id="hundred")
    console.login()
    console.goto(f"/pipelines/{pid}")
    console.page.wait_for_selector("#graph[data-laid-out='100']")
    boxes = console.page.eval_on_selector_all("#graph a.node rect", """rects => rects.map(r => {
        const b = r.getBBox(); return [b.x, b.y, b.width, b.height]; })""")
    assert len(boxes) == 100
    for i, (x, y, w, h) in enumerate(boxes):
        for x2, y2, w2, h2 in boxes[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "nodes overlap"
    assert console.page.locator("#graph path.edge").count() == 99
    groups = console.page.eval_on_selector_all(
        "#graph g.cluster", "gs => gs.map(g => [g.dataset.id, g.dataset.members])")
    assert sorted(groups) == [["workerGroup:etl", "50"], ["workerGroup:reports", "50"]]
    console.shot("graph-100")


def test_with_no_auth_there_is_no_login_but_actions_still_need_the_token(
        browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.e2e.api_kit import start_server

    root = tmp_path_factory.mktemp("noauth")
    env = {k: v for k, v in os.environ.items() if k != "HEADRACE_API_CREDENTIALS"}
    env.update({"HEADRACE_STORE": f"sqlite:///{root}/store.db", "XDG_DATA_HOME": str(root)})
    server = start_server(root, "--no-auth", "--no-scheduler", env=env)
    context = browser.new_context()
    try:
        kit = Console(server, context)
        pid = server.client().create_pipeline(name="open", uniqueId="open")["pipelineId"]
        kit.goto("/pipelines")
        assert kit.page.url.endswith("/console/pipelines")  # no login page
        assert kit.page.locator(f"tr[data-pipeline='{pid}']").count() == 1
        # a pipeline with no definition yet: its pages say so rather than fail
        assert kit.goto(f"/pipelines/{pid}").status == 200
        assert kit.page.inner_text("#grid-summary").startswith("0 of 0 instance(s)")
        assert kit.goto(f"/pipelines/{pid}/definitions").status == 200
        assert kit.page.inner_text("#latest-version") == "none"
        assert kit.goto("/pipelines/df-NOSUCHPIPELINE0000").status == 404
        status = kit.page.evaluate("""async url => (await fetch(url, {method: "POST",
            headers: {"Content-Type": "application/x-www-form-urlencoded"},
            body: "confirm=yes"})).status""", f"/console/pipelines/{pid}/actions/deactivate")
        assert status == 403
        assert kit.external_requests() == []
    finally:
        context.close()
        server.stop()


def test_open_live_pages_do_not_hold_the_server_s_stop(
        browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    import signal
    import time

    from tests.e2e.api_kit import start_server

    root = tmp_path_factory.mktemp("stop")
    server = start_server(root, "--no-scheduler")
    context = browser.new_context()
    try:
        kit = Console(server, context)
        kit.login()
        kit.page.wait_for_function("() => document.body.dataset.liveState === 'open'")
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 130
        assert time.monotonic() - started < 8  # not the 10 s grace for requests in flight
    finally:
        context.close()
        server.stop()


def test_a_live_row_update_costs_no_request_and_keeps_the_focus(
        console: Console, server: Server) -> None:
    pid = make_pipeline(server, "focus", [shell("Once", "echo once")],
                        end="2024-01-01T00:15:00", unique_id="focus")
    wait_until(lambda: all(s == "FINISHED" for s in statuses(server, pid).values()),
               what="focus to finish")
    console.login()
    link = f"tr[data-pipeline='{pid}'] th a"
    console.page.focus(link)
    counts = f"tr[data-pipeline='{pid}'] td.counts span"
    console.page.evaluate(f"document.querySelector(\"{counts}\").dataset.old = '1'")
    requests_before = len(console.requests)
    server.client().set_status(pipelineId=pid, objectIds=["@Once_2024-01-01T00:00:00"],
                               status="RERUN")
    # the row is redrawn from the server's summary event, in place
    console.page.wait_for_function(
        f"() => !document.querySelector(\"{counts}\").dataset.old")
    focused = console.page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == console.page.get_attribute(link, "href")
    assert console.requests[requests_before:] == []  # no page fetched anything for it
