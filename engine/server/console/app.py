"""The console's Starlette app, mounted at ``/console`` beside the API on the same server,
and what its pages share (:class:`Console`)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from engine.server.console import actions, live, pages, versions
from engine.server.console.guard import SecurityHeaders
from engine.server.console.state import BASE, Console, ConsoleOptions

__all__ = ["BASE", "Console", "ConsoleOptions", "console_app"]

STATIC = Path(__file__).parent / "static"


def console_app(console: Console) -> ASGIApp:
    """The app to mount at :data:`BASE`."""
    pid, iid = "{pipeline_id}", "{instance_id:path}"
    routes = [
        Route("/", pages.home, methods=["GET"]),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/pipelines", pages.pipelines, methods=["GET"]),
        Route("/events", live.events, methods=["GET"]),
        Route(f"/pipelines/{pid}", pages.pipeline, methods=["GET"]),
        Route(f"/pipelines/{pid}/grid", pages.grid, methods=["GET"]),
        Route(f"/pipelines/{pid}/definitions", versions.definitions, methods=["GET"]),
        Route(f"/pipelines/{pid}/definitions", versions.submit, methods=["POST"]),
        Route(f"/pipelines/{pid}/actions/{{action}}", actions.act, methods=["POST"]),
        Route(f"/pipelines/{pid}/instances/{{instance_id}}/attempts/{{number:int}}/log/"
              "{stream}", live.attempt_log, methods=["GET"]),
        Route(f"/pipelines/{pid}/instances/{iid}", pages.instance, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.console = console
    return SecurityHeaders(GZipMiddleware(app, minimum_size=2048))
