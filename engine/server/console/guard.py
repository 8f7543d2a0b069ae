"""Who may see a console page and who may act: the session cookie, the CSRF token, the
origin of a form post, and the security headers every console response carries."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.server.console.render import page
from engine.server.console.sessions import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    csrf_matches,
)
from engine.server.console.state import console_of

#: the largest form body read (a form here holds a few ids)
MAX_FORM_BYTES = 256 * 1024
#: no script, style, image, font or connection but this server's own: the check that no
#: request leaves the page is the browser's, not only the tests'
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


@dataclass
class Form:
    """A urlencoded form body: every value of a name, in order."""

    pairs: list[tuple[str, str]]

    def get(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.pairs if k == name), default)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


async def read_form(request: Request) -> Form:
    cached = request.scope.get("headrace_form")
    if isinstance(cached, Form):
        return cached
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormTooLarge()
        chunks.append(chunk)
    kind = (request.headers.get("content-type") or "").split(";")[0].strip()
    body = b"".join(chunks).decode("utf-8", errors="replace")
    form = Form(parse_qsl(body, keep_blank_values=True)
                if kind == "application/x-www-form-urlencoded" else [])
    request.scope["headrace_form"] = form
    return form


class FormTooLarge(Exception):
    pass


def same_origin(request: Request) -> bool:
    """A post from a page of this server (or from a client that sends no Origin header, which
    a browser always sends on a cross-site post)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def refused(request: Request, status: int, message: str) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return page("error.html", status, base=console_of(request).base, csrf="",
                    principal=None, notice=None, error=None, title="Refused", message=message)
    return PlainTextResponse(message, status_code=status)


Handler = Callable[[Request, Session], Awaitable[Response]]


def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A console endpoint: logged in (else to the login page, or 401 for a script), and, for
    anything but GET, a same-origin request carrying the session's CSRF token."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        console = console_of(request)
        session = console.sessions.get(request.cookies.get(COOKIE))
        opened = None
        if session is None and console.sessions.open_access:
            session = opened = console.sessions.open("no-auth")
        if session is None:
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                target = quote(request.url.path + (f"?{request.url.query}"
                                                   if request.url.query else ""), safe="/?=&@:")
                return RedirectResponse(f"{console.base}/login?next={target}", 303)
            return refused(request, 401, "log in first: this needs a console session")
        if request.method not in ("GET", "HEAD"):
            if not same_origin(request):
                return refused(request, 403, "refused: the request comes from another site")
            sent = request.headers.get(CSRF_HEADER)
            if sent is None:
                try:
                    sent = (await read_form(request)).get(CSRF_FIELD) or None
                except FormTooLarge:
                    return refused(request, 413, "the form is too large")
            if not csrf_matches(session, sent):
                return refused(request, 403, "refused: missing or wrong CSRF token (send the "
                               "page's token as the X-CSRF-Token header or a csrf_token field)")
        response = await handler(request, session)
        if opened is not None:
            console.set_cookie(response, opened)
        return response

    return endpoint


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` (and ``Cache-Control: no-store`` on pages) to every
    console response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
