"""An HTTP fault proxy for S3 on loopback (RELIABILITY.md case 6).

It sits between a client and a real S3-compatible server and answers a seeded random share of
the requests itself with ``503 SlowDown`` or ``500 InternalError``, without forwarding them; the
rest go to the server unchanged (method, target, headers and body as received), so the server
still verifies the client's SigV4 signature, which covers the ``Host`` header the client sent
to the proxy. The server's answers come back as they are.

Every request is recorded (:class:`RequestRecord`: when it arrived, what it was, what the proxy
did), so a test can check that each refused request was sent again, how long the client waited
before each resend (the jitter of its backoff), and that no request was tried more often than
the client's attempt limit.

Usage::

    async with s3_fault_proxy("http://127.0.0.1:18333", S3FaultPlan(seed=7)) as proxy:
        sink = S3Sink("s3://bucket/out/", endpoint_url=proxy.url)
        ...
        assert proxy.counts.slow_downs > 0
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import anyio
from anyio.abc import SocketStream

from ._http import STREAM_ERRORS as _STREAM_ERRORS
from ._http import LoopbackProxy, read_message, serving

if TYPE_CHECKING:
    import h11
else:
    try:
        import h11
    except ModuleNotFoundError:  # a plain install: require_h11() says what to install
        h11 = None

Outcome = Literal["forwarded", "SlowDown", "InternalError"]
#: Headers about this hop only: not passed on (the framing headers are kept, so h11 frames the
#: forwarded body exactly as the client did).
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade",
                         b"expect"})
_ERRORS: dict[str, tuple[int, str]] = {
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
}


@dataclass(frozen=True)
class S3FaultPlan:
    """What to break: each request independently gets ``503 SlowDown`` with probability
    ``slow_down``, else ``500 InternalError`` with probability ``internal_error``."""

    slow_down: float = 0.10
    internal_error: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class RequestRecord:
    """One request the proxy received. ``key`` identifies the operation (method, target and
    Range), so the resends of one refused request share it."""

    at: float
    key: tuple[str, str, str]
    outcome: Outcome


@dataclass
class S3FaultCounts:
    requests: int = 0
    forwarded: int = 0
    slow_downs: int = 0
    internal_errors: int = 0
    log: list[RequestRecord] = field(default_factory=list)

    @property
    def faults(self) -> int:
        return self.slow_downs + self.internal_errors

    def tries(self) -> dict[tuple[str, str, str], list[RequestRecord]]:
        """Every request key with the requests that carried it, in arrival order."""
        out: dict[tuple[str, str, str], list[RequestRecord]] = defaultdict(list)
        for record in self.log:
            out[record.key].append(record)
        return dict(out)

    def resend_delays(self) -> list[float]:
        """Seconds between each refused request and the next request with its key."""
        delays = []
        for records in self.tries().values():
            for refused, resent in itertools.pairwise(records):
                if refused.outcome != "forwarded":
                    delays.append(resent.at - refused.at)
        return delays


@dataclass
class _Message:
    head: h11.Request | h11.Response
    body: bytes

    def header(self, name: bytes) -> bytes:
        for key, value in self.head.headers:
            if key.lower() == name:
                return bytes(value)
        return b""


class S3FaultProxy(LoopbackProxy):
    """The proxy itself; see :func:`s3_fault_proxy` to run it."""

    def __init__(self, upstream_url: str, plan: S3FaultPlan) -> None:
        super().__init__(upstream_url)
        self.plan = plan
        self.counts = S3FaultCounts()
        self._rng = random.Random(plan.seed)

    def _draw(self) -> Outcome:
        roll = self._rng.random()
        if roll < self.plan.slow_down:
            return "SlowDown"
        if roll < self.plan.slow_down + self.plan.internal_error:
            return "InternalError"
        return "forwarded"

    async def handle(self, client: SocketStream) -> None:
        """Serve one client connection (keep-alive) until it closes; one upstream connection
        per client connection, opened when the first request is forwarded."""
        upstream: tuple[SocketStream, h11.Connection] | None = None
        try:
            async with client:
                conn = h11.Connection(h11.SERVER)
                while True:
                    request = await _read_message(client, conn)
                    if request is None:
                        return
                    assert isinstance(request.head, h11.Request)
                    outcome = self._draw()
                    key = (request.head.method.decode(), request.head.target.decode(),
                           request.header(b"range").decode())
                    self.counts.requests += 1
                    self.counts.log.append(RequestRecord(anyio.current_time(), key, outcome))
                    if outcome == "forwarded":
                        self.counts.forwarded += 1
                        if upstream is None:
                            upstream = (await anyio.connect_tcp(*self.upstream),
                                        h11.Connection(h11.CLIENT))
                        response = await _exchange(*upstream, request)
                        if response is None:
                            return  # upstream gone: drop the client, as a failed server would
                        if upstream[1].our_state is h11.MUST_CLOSE or \
                                upstream[1].their_state is h11.MUST_CLOSE:
                            await upstream[0].aclose()
                            upstream = None
                        else:
                            upstream[1].start_next_cycle()
                        status, headers, body = _relayed(response)
                    else:
                        if outcome == "SlowDown":
                            self.counts.slow_downs += 1
                        else:
                            self.counts.internal_errors += 1
                        status, headers, body = _error(outcome, request)
                    try:
                        await client.send(conn.send(h11.Response(status_code=status,
                                                                 headers=headers)))
                        if body:
                            await client.send(conn.send(h11.Data(data=body)))
                        await client.send(conn.send(h11.EndOfMessage()))
                    except _STREAM_ERRORS:
                        return
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return
                    conn.start_next_cycle()
        except (*_STREAM_ERRORS, h11.ProtocolError):
            return
        finally:
            if upstream is not None:
                with anyio.CancelScope(shield=True):
                    await upstream[0].aclose()


async def _exchange(stream: SocketStream, conn: h11.Connection,
                    request: _Message) -> _Message | None:
    """Send ``request`` upstream as it came (bar hop-by-hop headers); read the answer."""
    assert isinstance(request.head, h11.Request)
    headers = [(k, v) for k, v in request.head.headers if k.lower() not in _HOP_BY_HOP]
    try:
        await stream.send(conn.send(h11.Request(method=request.head.method,
                                                target=request.head.target, headers=headers)))
        if request.body:
            await stream.send(conn.send(h11.Data(data=request.body)))
        await stream.send(conn.send(h11.EndOfMessage()))
    except _STREAM_ERRORS:
        return None
    return await _read_message(stream, conn)  # h11 frames a HEAD's answer as bodiless


def _relayed(response: _Message) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    assert isinstance(response.head, h11.Response)
    headers = [(k, v) for k, v in response.head.headers
               if k.lower() not in _HOP_BY_HOP and k.lower() != b"transfer-encoding"]
    if response.body and not any(k.lower() == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(response.body)).encode()))
    return response.head.status_code, headers, response.body


def _error(code: str, request: _Message) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status, message = _ERRORS[code]
    request_id = f"{random.getrandbits(64):016X}"
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>").encode()
    headers = [(b"content-type", b"application/xml"), (b"x-amz-request-id", request_id.encode()),
               (b"content-length", str(len(body)).encode())]
    assert isinstance(request.head, h11.Request)
    if request.head.method == b"HEAD":  # the answer to a HEAD has no body
        return status, headers, b""
    return status, headers, body


async def _read_message(stream: SocketStream, conn: h11.Connection) -> _Message | None:
    """One whole request or response; None when the peer closed before one began."""
    got = await read_message(stream, conn)
    return None if got is None else _Message(*got)


@asynccontextmanager
async def s3_fault_proxy(upstream_url: str,
                         plan: S3FaultPlan | None = None) -> AsyncIterator[S3FaultProxy]:
    """Run an :class:`S3FaultProxy` on an ephemeral 127.0.0.1 port for the ``with`` body."""
    async with serving(S3FaultProxy(upstream_url, plan or S3FaultPlan())) as proxy:
        yield proxy
