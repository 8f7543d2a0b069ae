"""Actor building blocks: a bounded mailbox, and a supervisor that owns its children's tasks.

A supervisor is an anyio task group with bookkeeping: every child it spawns runs inside it,
with a restart policy (``permanent``: always restarted; ``transient``: restarted after an error;
``temporary``: never restarted, its error handed to ``on_error`` or raised) and a restart
intensity (more than ``max_restarts`` within ``max_seconds`` fails the supervisor, which
escalates to its own parent). Each child has its own cancel scope, so one child can be cancelled
without its siblings. ``repr`` shows the live children.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

log = logging.getLogger("headrace.runtime")

T = TypeVar("T")
Restart = Literal["permanent", "transient", "temporary"]


class Mailbox(Generic[T]):
    """A bounded queue of messages for one actor: a full mailbox blocks the sender."""

    def __init__(self, size: int = 16) -> None:
        if size <= 0 or size == math.inf:
            raise ValueError("a mailbox must be bounded")
        self.size = size
        self._send, self._receive = anyio.create_memory_object_stream[T](size)

    def __repr__(self) -> str:
        stats = self._send.statistics()
        return f"<Mailbox {stats.current_buffer_used}/{self.size}>"

    async def send(self, message: T) -> None:
        await self._send.send(message)

    def send_nowait(self, message: T) -> bool:
        """Deliver if there is room; False when the mailbox is full or closed."""
        try:
            self._send.send_nowait(message)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    async def receive(self) -> T:
        return await self._receive.receive()

    def __aiter__(self) -> Mailbox[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._send.close()
        self._receive.close()


@dataclass
class Child:
    name: str
    restart: Restart
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    state: Literal["running", "restarting"] = "running"
    restarts: int = 0

    def cancel(self) -> None:
        self.scope.cancel()


class SupervisorFailed(Exception):
    """A supervisor's child restarted more often than its restart intensity allows."""


class Supervisor:
    """Owns a task group; every child task is spawned, tracked and (maybe) restarted here."""

    def __init__(self, name: str, *, max_restarts: int = 3, max_seconds: float = 5.0,
                 on_error: Callable[[str, BaseException], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.on_error = on_error
        self.children: dict[str, Child] = {}
        self._tg: TaskGroup | None = None
        self._restart_times: deque[float] = deque()

    def __repr__(self) -> str:
        return f"<Supervisor {self.name} {self.describe_children()}>"

    def describe_children(self, limit: int = 8) -> str:
        """``3 live: a, b, c (restarting)``: the live children, the first ``limit`` named."""
        names = [c.name + (" (restarting)" if c.state == "restarting" else "")
                 for c in self.children.values()]
        if not names:
            return "0 live"
        shown = ", ".join(names[:limit])
        more = f", +{len(names) - limit} more" if len(names) > limit else ""
        return f"{len(names)} live: {shown}{more}"

    @property
    def running(self) -> bool:
        return self._tg is not None

    async def __aenter__(self) -> Supervisor:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._tg is not None
        try:
            return await self._tg.__aexit__(*exc_info)
        finally:
            self._tg = None

    def cancel(self) -> None:
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    def spawn(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any,
              restart: Restart = "temporary",
              on_exit: Callable[[], None] | None = None) -> Child:
        """Start ``fn(*args)`` as a child named ``name`` (unique among live children).
        ``on_exit`` is called once the child has ended for good (returned, failed and was
        handled, or was cancelled), after it left ``children``: a monitor for the owner."""
        if self._tg is None:
            raise RuntimeError(f"supervisor {self.name} is not running")
        if name in self.children:
            raise RuntimeError(f"supervisor {self.name} already has a child {name!r}")
        child = Child(name, restart)
        self.children[name] = child
        self._tg.start_soon(self._run_child, child, fn, args, on_exit,
                            name=f"{self.name}/{name}")
        return child

    async def _run_child(self, child: Child, fn: Callable[..., Awaitable[Any]],
                         args: tuple[Any, ...], on_exit: Callable[[], None] | None) -> None:
        try:
            with child.scope:
                while True:
                    try:
                        await fn(*args)
                    except Exception as exc:
                        if child.restart == "temporary":
                            if self.on_error is None:
                                raise
                            await self.on_error(child.name, exc)
                            return
                        self._count_restart(child, exc)
                    else:
                        if child.restart != "permanent":
                            return
                        self._count_restart(child, None)
                    child.state = "restarting"
                    child.restarts += 1
                    await anyio.sleep(min(0.05 * 2 ** min(child.restarts, 6), 2.0))
                    child.state = "running"
        finally:
            self.children.pop(child.name, None)
            if on_exit is not None:
                on_exit()

    def _count_restart(self, child: Child, exc: BaseException | None) -> None:
        now = anyio.current_time()
        self._restart_times.append(now)
        while self._restart_times and self._restart_times[0] < now - self.max_seconds:
            self._restart_times.popleft()
        if len(self._restart_times) > self.max_restarts:
            raise SupervisorFailed(
                f"{self.name}: child {child.name!r} restarted more than {self.max_restarts} "
                f"times in {self.max_seconds:g} s") from exc
        log.warning("%s: restarting child %s after %s", self.name, child.name,
                    f"error: {exc}" if exc else "it returned")
