"""Server-sent events: the change feed for a page, and an attempt's log while it runs.

A page's stream carries the feed's changes (``instances``, ``pipeline``, ``paused``,
``planned``; ``summary`` for the pipelines page) as JSON
and a comment every :data:`HEARTBEAT` seconds; ``resync`` when the page fell behind and
should reload. A log stream sends what the file holds, then what is appended, a chunk at a
time, until the attempt ends (learned from the feed, not by asking the store each second):
then ``end``.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from engine.runtime.logs import blocking
from engine.server.console.guard import authenticated, refused
from engine.server.console.sessions import Session
from engine.server.console.state import console_of
from engine.store import AttemptStatus

HEARTBEAT = 15.0
#: seconds between looks at a growing log file (the file, not the store)
LOG_TAIL_INTERVAL = 0.3
#: the most of a log sent in one event
LOG_CHUNK = 64 * 1024
STREAMS = ("events", "stdout", "stderr")
_SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


def sse(event: str, data: object) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


async def read_log(log_path: str, stream: str, offset: int = 0,
                   limit: int | None = None) -> str | None:
    """A log stream's text from ``offset`` (None when the attempt never wrote it)."""
    path = Path(log_path) / stream

    def read() -> str | None:
        try:
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read(limit if limit is not None else -1)
        except FileNotFoundError:
            return None
        return data.decode("utf-8", errors="replace")

    return await blocking(read)


async def _read_bytes(path: Path, offset: int) -> bytes:
    def read() -> bytes:
        try:
            with path.open("rb") as f:
                f.seek(offset)
                return f.read(LOG_CHUNK)
        except FileNotFoundError:
            return b""

    return await blocking(read)


@authenticated
async def events(request: Request, session: Session) -> Response:
    console = console_of(request)
    pipeline_id = request.query_params.get("pipeline") or None

    async def stream() -> AsyncIterator[bytes]:
        with console.feed.subscribe(pipeline_id) as changes:
            yield sse("hello", {"pipeline": pipeline_id})
            while True:
                with anyio.move_on_after(HEARTBEAT) as idle:
                    try:
                        change = await changes.receive()
                    except anyio.EndOfStream:  # fell behind, or the server is stopping
                        if not console.feed.closed:
                            yield sse("resync", {})
                        return
                if idle.cancelled_caught:
                    yield b": heartbeat\n\n"
                    continue
                yield sse(change.kind, {"pipeline": change.pipeline_id, **change.data})

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_SSE_HEADERS)


@authenticated
async def attempt_log(request: Request, session: Session) -> Response:
    console = console_of(request)
    pipeline_id = request.path_params["pipeline_id"]
    instance_id = request.path_params["instance_id"]
    number = request.path_params["number"]
    name = request.path_params["stream"]
    if name not in STREAMS:
        return refused(request, 404, f"no log stream {name!r}: one of {', '.join(STREAMS)}")
    found = [a for a in await console.store.list_attempts(pipeline_id, instance_id)
             if a.number == number]
    if not found or not found[0].log_path:
        return refused(request, 404, f"no attempt {number} of {instance_id}")
    path = Path(found[0].log_path) / name
    running = found[0].status == AttemptStatus.RUNNING

    async def attempt_running() -> bool:
        for a in await console.store.list_attempts(pipeline_id, instance_id):
            if a.number == number:
                return a.status == AttemptStatus.RUNNING
        return False

    async def stream() -> AsyncIterator[bytes]:
        offset = 0
        alive = running
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with console.feed.subscribe(pipeline_id) as changes:
            yield sse("hello", {"attempt": number, "stream": name, "running": alive})
            while True:
                data = await _read_bytes(path, offset)
                if data:
                    offset += len(data)
                    yield sse("chunk", decoder.decode(data))
                    if len(data) == LOG_CHUNK:
                        continue
                if not alive:
                    yield sse("end", {"bytes": offset})
                    return
                with anyio.move_on_after(LOG_TAIL_INTERVAL):
                    try:
                        change = await changes.receive()
                    except anyio.EndOfStream:  # fell behind the feed: ask, then wait
                        if console.feed.closed:  # the server is stopping
                            return
                        alive = await attempt_running()
                        await anyio.sleep(LOG_TAIL_INTERVAL)
                        continue
                    if change.kind == "planned" or (change.kind == "instances" and any(
                            c["id"] == instance_id for c in change.data["changes"])):
                        alive = await attempt_running()

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_SSE_HEADERS)
