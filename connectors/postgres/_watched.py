"""A PostgreSQL connection whose silences are bounded: ``read_timeout`` from the last sign of
life of the server, for as long as the connection is in use.

asyncpg bounds a call as a whole (``timeout=``, ``command_timeout``), which cannot tell a long
COPY that streams from one that stopped. So the connection's transport reports to a
:class:`~connectors.timeouts.Watch`: every byte the server sends moves the deadline on, and a
send buffer the server stopped draining is phase ``write``. The time the copy spends on its
other end (the stream between its stages) and any wait the caller marks with
:func:`~connectors.timeouts.waiting_on_peer` is not counted, so only the server's own silence
is: no first byte of a reply, a result that stops mid-stream, a COPY FROM it stops reading, a
commit that never returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

from connectors.timeouts import Timeouts, Watch


class _Reporting(asyncio.Protocol):
    """Stands between the transport and asyncpg's protocol, telling ``watch`` what happens."""

    def __init__(self, inner: Any, watch: Watch) -> None:
        self.inner = inner
        self.watch = watch
        self.phase_before_pause: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.watch.alive()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.phase_before_pause is None and isinstance(self.watch.phase, str):
            self.phase_before_pause, self.watch.phase = self.watch.phase, "write"
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.phase_before_pause is not None:
            self.watch.phase, self.phase_before_pause = self.phase_before_pause, None
        self.watch.alive()  # the server took our bytes
        self.inner.resume_writing()


@contextmanager
def watched(conn: asyncpg.Connection, timeouts: Timeouts, where: str,
            operation: str) -> Iterator[Watch]:
    """Inside, ``conn``'s silences are bounded by ``timeouts.read`` (phase ``read``, ``write``,
    or what :func:`~connectors.timeouts.in_phase` names); the transport's protocol is put back
    on the way out."""
    transport = conn._transport
    inner = transport.get_protocol()
    with timeouts.watch("read", "read", connector=where, operation=operation) as watch:
        transport.set_protocol(_Reporting(inner, watch))
        try:
            yield watch
        finally:
            if not transport.is_closing():
                transport.set_protocol(inner)
