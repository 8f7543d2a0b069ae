"""Per-attempt logs: ``<root>/<pipelineId>/<componentId>/<instanceId>/<attemptId>/``.

Each attempt directory holds ``stdout`` and ``stderr`` of a shell command and ``events``, the
engine's own lines about the attempt (start, command, exit, error). The root is the object's
``pipelineLogUri`` when it is a ``file://`` URI or a path, else ``logs/`` beside the store.
The folders are owner-only (:mod:`engine.owner_only`): a root headrace creates, and every
folder below the root, which it tightens when it finds one looser.

File work runs in a worker thread, or inline when ``inline`` is set: virtual-time tests need
that, because a loop that waits on a thread looks idle to trio's autojumping ``MockClock``,
which would then jump ahead and fire timeouts that real time would never reach.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
from anyio.lowlevel import RunVar

from connectors.local import path_from_url
from engine.owner_only import make_private_dirs
from engine.store.records import utcnow
from engine.store.trips import Trips

#: threads for log file work, per event loop (a limiter made at import binds to the first
#: loop that uses it, and fails in the next: tests run trio and asyncio loops in turn)
IO_THREADS = 4
T = TypeVar("T")


_TRIPS: RunVar[Trips] = RunVar("headrace_log_trips")


async def blocking(fn: Callable[[], T], *, inline: bool = False) -> T:
    """Run a short blocking file operation: in a worker thread, together with the others
    that arrive meanwhile (one trip for many appends), or inline (virtual time)."""
    if inline:
        return fn()
    try:
        trips = _TRIPS.get()
    except LookupError:
        trips = Trips(limiter=anyio.CapacityLimiter(IO_THREADS))
        _TRIPS.set(trips)
    return await trips.run(fn)


def _line(message: str) -> str:
    return f"{utcnow().replace(tzinfo=None).isoformat(timespec='microseconds')}Z {message}\n"


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "@_-.=:" else "_" for c in text)


class AttemptLog:
    def __init__(self, root: Path, pipeline_id: str, component_id: str, instance_id: str,
                 attempt_id: str, *, inline: bool = False) -> None:
        self.inline = inline
        self.root = root
        self.dir = (root / safe_name(pipeline_id) / safe_name(component_id)
                    / safe_name(instance_id) / safe_name(attempt_id))
        self.stdout = self.dir / "stdout"
        self.stderr = self.dir / "stderr"
        self.events = self.dir / "events"

    def __repr__(self) -> str:
        return f"<AttemptLog {self.dir}>"

    @property
    def work_dir(self) -> Path:
        """The attempt's scratch directory (the command's working directory)."""
        return self.dir / "work"

    async def open(self, first_event: str | None = None) -> AttemptLog:
        """Create the directories and write the first event: one trip to a worker thread."""
        line = _line(first_event) if first_event else None

        def make() -> None:
            make_private_dirs(self.work_dir, below=self.root)
            if line:
                with self.events.open("a", encoding="utf-8") as f:
                    f.write(line)

        await blocking(make, inline=self.inline)
        return self

    async def event(self, message: str) -> None:
        line = _line(message)

        def write() -> None:
            if not self.dir.is_dir():
                make_private_dirs(self.dir, below=self.root)
            with self.events.open("a", encoding="utf-8") as f:
                f.write(line)

        await blocking(write, inline=self.inline)

    async def process_started(self, pid: int, message: str) -> None:
        """Record a command's process group (``pid`` file: ``host pgid``) and an event."""
        line = _line(message)

        def write() -> None:
            (self.dir / "pid").write_text(f"{socket.gethostname()} {pid}\n")
            with self.events.open("a", encoding="utf-8") as f:
                f.write(line)

        await blocking(write, inline=self.inline)

    async def tail(self, path: Path, limit: int = 2000) -> str:
        def read() -> str:
            try:
                with path.open("rb") as f:
                    f.seek(0, 2)
                    size = f.tell()
                    f.seek(max(0, size - limit))
                    return f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                return ""

        return await blocking(read, inline=self.inline)


def log_root_from_uri(uri: str | None, default: Path) -> Path:
    """A local directory for ``pipelineLogUri``; ``s3://`` URIs log locally under
    ``default/s3/<bucket>/<prefix>`` (uploaded by the S3 log shipper when configured)."""
    if not uri:
        return default
    if uri.startswith("file:"):
        return Path(path_from_url(uri))
    if uri.startswith("s3://"):
        return default / "s3" / uri[len("s3://"):].strip("/")
    if "://" not in uri:
        return Path(uri)
    return default
