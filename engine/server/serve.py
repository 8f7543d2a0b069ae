"""``headrace serve``: the API under Hypercorn and the engine, in one process on one anyio
event loop.

Hypercorn is embedded through ``hypercorn.asyncio.serve(app, config, shutdown_trigger=...)``:
it runs as one task of this process's task group next to :class:`~engine.runtime.engine.Engine`
(the same engine ``headrace engine`` runs), installs no signal handlers of its own when given
a shutdown trigger, and takes an already-bound socket (``fd://``), so the port is known, and
printed, before the first request. SIGTERM or SIGINT: the server stops accepting and finishes
the requests in flight (up to :data:`GRACEFUL_SECONDS`), the engine stops as ``headrace
engine`` does (running attempts end INTERRUPTED, retried on restart), then the process exits.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from engine.errors import UsageError
from engine.server.app import MAX_BODY_BYTES, ServerState, build_app
from engine.server.console import Console, ConsoleOptions, console_app
from engine.server.sigv4 import CredentialSet
from engine.store import open_store

#: seconds the server waits for requests in flight once told to stop
GRACEFUL_SECONDS = 10.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class ServeOptions:
    store_url: str | None
    host: str = "127.0.0.1"
    port: int = 8065
    credentials: CredentialSet | None = None
    no_auth: bool = False
    #: run the scheduler and the default group's work here (False: ``--no-scheduler``)
    scheduler: bool = True
    tls_cert: str | None = None
    tls_key: str | None = None
    max_concurrency: int = 32
    poll_interval: float = 2.0
    worker_groups: Mapping[str, int] = field(default_factory=dict)
    #: ``--scheduler-only``: no attempt runs here; every group's work goes to workers (and
    #: task runners polling this API)
    scheduler_only: bool = False
    #: how long PollForTask waits for work before answering that there is none
    task_poll_seconds: float = 5.0
    max_body_bytes: int = MAX_BODY_BYTES
    #: the web console at /console/ (False: ``--no-console``)
    console: bool = True
    #: the console's link to a trace: ``{trace_id}`` is replaced
    trace_url_template: str | None = None


def check_options(options: ServeOptions) -> None:
    """Refuse what would expose the API: no credentials unless ``--no-auth`` on loopback."""
    if options.credentials is None and not options.no_auth:
        raise UsageError("no credentials: give --credentials FILE or "
                         "HEADRACE_API_CREDENTIALS=ID:SECRET (or --no-auth, on a loopback "
                         "address only)")
    if options.no_auth and options.host not in LOOPBACK:
        raise UsageError(f"--no-auth serves the API to anyone who can reach {options.host}; "
                         "it is allowed on a loopback address only (127.0.0.1, ::1)")
    if options.no_auth and options.credentials is not None:
        raise UsageError("--no-auth and credentials together: choose one")
    if options.scheduler_only and not options.scheduler:
        raise UsageError("--scheduler-only and --no-scheduler together: --no-scheduler runs "
                         "no scheduler at all; choose one")
    if bool(options.tls_cert) != bool(options.tls_key):
        raise UsageError("TLS needs both --tls-cert and --tls-key")


class JsonLines(logging.Formatter):
    """Log records as JSON lines; access-log records are JSON already and pass as they are."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "headrace.access":
            return record.getMessage()
        entry: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                                 "level": record.levelname, "logger": record.name,
                                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    for name in ("headrace", "hypercorn.error"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=512)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


async def serve(options: ServeOptions, *,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT. ``on_ready`` gets the base URL once the port is bound."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from engine.runtime.dispatch import EXECUTE_DEFAULT, EXECUTE_NONE
    from engine.runtime.engine import Engine

    check_options(options)
    sock = _bind(options.host, options.port)
    bound_port = sock.getsockname()[1]
    async with open_store(options.store_url) as store:
        state = ServerState(store, None if options.no_auth else options.credentials,
                            max_body_bytes=options.max_body_bytes,
                            task_poll_seconds=options.task_poll_seconds)
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]
        config.accesslog = None  # headrace's own access log (engine.server.app.AccessLog)
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = GRACEFUL_SECONDS
        config.include_server_header = False
        if options.tls_cert and options.tls_key:
            config.certfile, config.keyfile = options.tls_cert, options.tls_key
        console = Console(store, state.credentials, ConsoleOptions(
            trace_url_template=options.trace_url_template,
            secure_cookies=config.ssl_enabled)) if options.console else None
        stopping, served = anyio.Event(), anyio.Event()
        # the default group's work runs here; a named group's waits for its workers
        execute = EXECUTE_NONE if options.scheduler_only else EXECUTE_DEFAULT
        engine = Engine(store, max_concurrency=options.max_concurrency,
                        poll_interval=options.poll_interval,
                        worker_groups=dict(options.worker_groups),
                        execute=execute) if options.scheduler else None
        scheme = "https" if config.ssl_enabled else "http"
        shown = f"[{options.host}]" if ":" in options.host else options.host
        url = f"{scheme}://{shown}:{bound_port}"
        async with anyio.create_task_group() as tg:
            async def watch_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        stopping.set()
                        return

            async def run_server() -> None:
                try:
                    app = build_app(state, console_app(console) if console else None)
                    await hypercorn_serve(app, config,  # type: ignore[arg-type]
                                          shutdown_trigger=stopping.wait)
                finally:
                    served.set()

            tg.start_soon(watch_signals)
            tg.start_soon(run_server)
            if console is not None:
                tg.start_soon(console.feed.run)
            if engine is not None:
                tg.start_soon(engine.run)
            if on_ready is not None:
                on_ready(url)
            await stopping.wait()
            if console is not None:
                console.feed.close()  # live pages end their streams: nothing holds the stop
            if engine is not None:
                await engine.stop()
            # the server finishes the requests in flight and returns; then the rest ends
            with anyio.move_on_after(GRACEFUL_SECONDS + 2):
                await served.wait()
            tg.cancel_scope.cancel()
