"""The plumbing the loopback HTTP fault proxies share: fronting only a loopback server,
serving on an ephemeral 127.0.0.1 port for a ``with`` body, and reading one whole HTTP
message with h11.

h11 is an optional dependency (the ``testing`` extra): without it ``connectors.testing`` still
imports, and starting an HTTP fault proxy says what to install."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import anyio
from anyio.abc import SocketAttribute, SocketStream

if TYPE_CHECKING:
    import h11
else:
    try:
        import h11
    except ModuleNotFoundError:  # a plain install: require_h11() says what to install
        h11 = None

#: What a closed or broken peer raises on a send or receive.
STREAM_ERRORS = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError,
                 OSError)


class LoopbackProxy:
    """Base of a proxy in front of one loopback server; subclasses serve a client in
    :meth:`handle`."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the fault proxy only fronts loopback servers, not {upstream_url}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, client: SocketStream) -> None:
        raise NotImplementedError


P = TypeVar("P", bound=LoopbackProxy)


def require_h11() -> None:
    """Fail with what to install when h11 (the ``testing`` extra) is missing."""
    if h11 is None:
        raise ModuleNotFoundError(
            "the HTTP fault proxies need h11: pip install 'headrace[testing]'", name="h11")


@asynccontextmanager
async def serving(proxy: P) -> AsyncIterator[P]:
    """Run ``proxy`` on an ephemeral 127.0.0.1 port for the ``with`` body."""
    require_h11()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy.handle)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()


async def read_message(stream: SocketStream, conn: h11.Connection,
                       ) -> tuple[h11.Request | h11.Response, bytes] | None:
    """One whole request or response (head and body); None when the peer closed before one
    began. A client waiting for ``100 Continue`` gets it, so it sends the body."""
    head: h11.Request | h11.Response | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.our_role is h11.SERVER and conn.they_are_waiting_for_100_continue:
                await stream.send(conn.send(h11.InformationalResponse(status_code=100,
                                                                      headers=[])))
            try:
                data = await stream.receive()
            except STREAM_ERRORS:
                data = b""
            conn.receive_data(data)
            continue
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        if isinstance(event, h11.Request | h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return head, bytes(body)
