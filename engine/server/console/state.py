"""What the console's pages share: the store's services, the sessions, the change feed and
the options (:class:`Console`), and the values every page's template gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine.server.console.feed import ChangeFeed
from engine.server.console.sessions import COOKIE, IDLE_SECONDS, Session, Sessions
from engine.server.sigv4 import CredentialSet
from engine.service import Objects, PipelineService
from engine.service.overview import Overview
from engine.store import Store

BASE = "/console"


@dataclass
class ConsoleOptions:
    #: a link to the user's tracing UI per trace id: ``{trace_id}`` is replaced, e.g.
    #: ``http://127.0.0.1:16686/trace/{trace_id}`` (Jaeger); None: trace ids are shown as text
    trace_url_template: str | None = None
    #: seconds between the change feed's looks at the store
    feed_interval: float = 1.0
    #: cookies only over HTTPS (the server runs TLS)
    secure_cookies: bool = False


@dataclass
class Console:
    store: Store
    credentials: CredentialSet | None
    options: ConsoleOptions = field(default_factory=ConsoleOptions)
    base: str = BASE

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.credentials)
        self.feed = ChangeFeed(self.store, self.options.feed_interval)
        self.pipelines = PipelineService(self.store)
        self.objects = Objects(self.store)
        self.overview = Overview(self.store)

    def trace_url(self, trace_id: str | None) -> str | None:
        template = self.options.trace_url_template
        if not trace_id or not template:
            return None
        return template.replace("{trace_id}", trace_id)

    def set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE, session.token, max_age=int(IDLE_SECONDS), path=self.base,
                            httponly=True, samesite="strict",
                            secure=self.options.secure_cookies)

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=self.base, httponly=True, samesite="strict",
                               secure=self.options.secure_cookies)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def context(request: Request, session: Session | None, **values: Any) -> dict[str, Any]:
    """What every page's template needs besides its own values."""
    notice, error = session.take_messages() if session else (None, None)
    return {"base": console_of(request).base, "csrf": session.csrf if session else "",
            "principal": session.principal if session else None, "notice": notice,
            "error": error, **values}


def safe_next(base: str, target: str) -> str:
    """Only a path of this console: never another site (``//host``) after a login."""
    if target.startswith(base + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/pipelines"
