"""The ASGI application: ``POST /`` (the API), ``GET /healthz`` (unauthenticated), and a
structured access log around both. ``/console/`` is left free for the console (issue 16),
which mounts its routes on the same app.

One request: the body is read up to :data:`MAX_BODY_BYTES` (refused beyond, before it is all
read); the signature is verified (unless the server runs ``--no-auth``); the JSON is parsed and
checked against the operation's input shape; the handler runs. Every refusal is AWS's error
shape with HTTP 400 (403 for authentication), never a traceback.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.server import shapes
from engine.server.operations import OPERATIONS, Context
from engine.server.protocol import (
    ACCEPTED_CONTENT_TYPES,
    CONTENT_TYPE,
    AwsError,
    aws_error_of,
    encode,
    invalid_request,
    operation_of,
    parse_body,
    unknown_operation,
)
from engine.server.sigv4 import (
    CredentialSet,
    SignedRequest,
    access_key_of,
    precheck,
    verify,
)
from engine.service import Objects, PipelineService
from engine.service.tasks import TaskRunners
from engine.store import Store

log = logging.getLogger("headrace.server")
access_log = logging.getLogger("headrace.access")

#: the largest request body read (decision: AWS's default limits make a definition of at
#: most 100 objects of 15 KB, about 2 MB on the wire; 8 MiB leaves room for raised limits)
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass
class ServerState:
    store: Store
    #: None: ``--no-auth`` (loopback only)
    credentials: CredentialSet | None
    max_body_bytes: int = MAX_BODY_BYTES
    checks: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(2))
    pipelines: PipelineService = field(init=False)
    objects: Objects = field(init=False)
    task_poll_seconds: float = 5.0
    tasks: TaskRunners = field(init=False)

    def __post_init__(self) -> None:
        self.pipelines = PipelineService(self.store)
        self.objects = Objects(self.store)
        self.tasks = TaskRunners(self.store, poll_wait=self.task_poll_seconds)


def _aws_response(error: AwsError, request_id: str) -> Response:
    return Response(error.body(), status_code=error.status, media_type=CONTENT_TYPE,
                    headers={"x-amzn-RequestId": request_id})


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_big = invalid_request(f"the request body is larger than {limit:,} bytes, the most "
                              "this server reads")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _headers(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in request.headers.raw:
        out.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return out


async def api(request: Request) -> Response:
    state: ServerState = request.app.state.server
    request_id = str(uuid.uuid4())
    info = request.scope.setdefault("headrace", {})
    info["request_id"] = request_id
    try:
        headers = _headers(request)
        info["principal"] = access_key_of(headers)
        if state.credentials is not None:
            precheck(headers, state.credentials)
        body = await _read_body(request, state.max_body_bytes)
        if state.credentials is not None:
            signed = SignedRequest(request.method, request.url.path, request.url.query,
                                   headers, body)
            info["principal"] = verify(signed, state.credentials)
        operation = operation_of(request.headers.get("x-amz-target"))
        info["operation"] = operation
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise invalid_request(f"Content-Type must be {CONTENT_TYPE}, got "
                                  f"{content_type[:100]!r}")
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise unknown_operation(request.headers.get("x-amz-target"))
        params = parse_body(body)
        found = shapes.problems(operation, params)
        if found:
            raise invalid_request(shapes.message(found))
        ctx = Context(state.pipelines, state.objects, info.get("principal"), state.checks,
                      state.tasks)
        result = await handler(ctx, params)
    except Exception as exc:  # every failure becomes AWS's error shape
        error = aws_error_of(exc, request_id)
        info["error"] = error.type
        if error.status >= 500:
            log.error("request %s (%s) failed", request_id, info.get("operation"),
                      exc_info=exc)
        return _aws_response(error, request_id)
    return Response(encode(result), media_type=CONTENT_TYPE,
                    headers={"x-amzn-RequestId": request_id})


async def healthz(request: Request) -> Response:
    state: ServerState = request.app.state.server
    try:
        await state.store.backend.query("SELECT 1")
    except Exception as exc:  # the store is down: unhealthy, and say why in the log only
        log.warning("healthz: the store does not answer: %s", type(exc).__name__)
        return JSONResponse({"status": "unavailable", "store": "unreachable"}, 503)
    return JSONResponse({"status": "ok", "store": "ok"})


async def _not_found(request: Request, exc: Exception) -> Response:
    error = AwsError("UnknownOperationException", f"nothing is served at {request.method} "
                     f"{request.url.path[:200]}", 404)
    return _aws_response(error, str(uuid.uuid4()))


class AccessLog:
    """One JSON line per request on the ``headrace.access`` logger: time, client, method,
    path, operation, principal (the access key id, never a secret), status, error type,
    bytes in and out, milliseconds, request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 500, "bytes_out": 0, "bytes_in": 0}
        info: dict[str, Any] = scope.setdefault("headrace", {})

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes_in"] += len(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes_out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, recording_send)
        finally:
            client = scope.get("client")
            access_log.info(json.dumps({
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "client": f"{client[0]}:{client[1]}" if client else None,
                "method": scope.get("method"), "path": scope.get("path"),
                "operation": info.get("operation"), "principal": info.get("principal"),
                "status": seen["status"], "error": info.get("error"),
                "bytesIn": seen["bytes_in"], "bytesOut": seen["bytes_out"],
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "requestId": info.get("request_id")}))


def build_app(state: ServerState, console: ASGIApp | None = None) -> ASGIApp:
    """The application for one store and one set of credentials; ``console``: the web
    console's app, mounted at ``/console``."""
    routes: list[BaseRoute] = [Route("/", api, methods=["POST"]),
                               Route("/healthz", healthz, methods=["GET"])]
    if console is not None:
        routes.append(Mount("/console", app=console))
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app.state.server = state
    return AccessLog(app)
