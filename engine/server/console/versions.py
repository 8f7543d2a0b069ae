"""The definitions page: latest and active versions side by side (milestone 3)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from engine.server.console.guard import authenticated
from engine.server.console.render import page
from engine.server.console.sessions import Session
from engine.server.console.state import context


@authenticated
async def definitions(request: Request, session: Session) -> Response:
    return page("error.html", 501, **context(request, session, title="Definitions",
                                             message="not yet"))
