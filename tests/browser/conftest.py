"""The browser tests' kit: one headless Chromium per session (Debian's ``chromium``, driven by
Playwright, never a browser Playwright downloads), one ``headrace serve`` per module, and a page
per test that fails the test if it ever requested anything but that server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.console_kit import ARTIFACTS, TRACE_URL, Console, chromium_path
from tests.e2e.api_kit import Server, server_env, start_server


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One Chromium for the browser tests. Package scope, not session: Playwright's sync API
    keeps an asyncio loop running in this thread while it is open, and every later test that
    starts its own loop (anyio.run) would fail with 'another loop is running'."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        pytest.fail("no Chromium: scripts/install-test-deps installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("console")
    store = f"sqlite:///{root}/store.db"
    env = {k: v for k, v in server_env(root, store).items() if not k.startswith("OTEL_")}
    # spans are made (so attempts have trace ids) and printed to the server's own log
    env.update({"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none"})
    server = start_server(root, "--poll-interval", "0.2", "--trace-url", TRACE_URL,
                          env=env, store=store)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def console(browser: Any, server: Server) -> Iterator[Console]:
    """A fresh browser context (no cookies) on the module's server. Every request any of its
    pages makes is recorded; one to anywhere else fails the test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    kit = Console(server, context)
    try:
        yield kit
        assert kit.external_requests() == [], "a console page requested another host"
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
