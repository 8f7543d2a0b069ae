"""An HTTP fault proxy for DynamoDB on loopback (RELIABILITY.md case 11).

It sits between a client and a real DynamoDB server (dynalite) and, for ``BatchWriteItem``
requests, forwards only a seeded random share of the put requests, answering the rest as
``UnprocessedItems``; with a set probability it refuses a whole batch with
``ProvisionedThroughputExceededException`` without forwarding anything. It can also refuse every
request as ``UnrecognizedClientException`` (bad credentials). Everything else passes through.

Rewriting bodies is fine because dynalite does not check signatures; the proxy recomputes the
``x-amz-crc32`` header botocore verifies. :class:`DynamoFaultCounts` records what it did, so a
test can check that every item was accepted exactly once and that the client resent exactly what
it was told was unprocessed.

Usage::

    async with dynamo_fault_proxy("http://127.0.0.1:14567", DynamoFaultPlan(seed=7)) as proxy:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = proxy.url
        ...
        assert proxy.counts.items_accepted == n
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import SocketStream

from ._http import LoopbackProxy, read_message, serving

if TYPE_CHECKING:
    import h11
else:
    try:
        import h11
    except ModuleNotFoundError:  # a plain install: require_h11() says what to install
        h11 = None

_JSON_TYPE = b"application/x-amz-json-1.0"
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length",
                         b"x-amz-crc32", b"proxy-connection", b"te", b"upgrade"})


#: An answer to send: status, headers, body.
_Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


@dataclass(frozen=True)
class DynamoFaultPlan:
    """What to break. ``forward_fraction`` of BatchWriteItem puts reach the server (each put
    drawn independently); ``throttle_probability`` of batches are refused whole."""

    forward_fraction: float = 0.7
    throttle_probability: float = 0.0
    refuse_credentials: bool = False
    seed: int = 0


@dataclass
class DynamoFaultCounts:
    requests: int = 0            # HTTP requests received
    batches: int = 0             # BatchWriteItem requests received
    items_received: int = 0      # put requests seen in them (first sends and resends)
    items_accepted: int = 0      # puts the server accepted
    items_unprocessed: int = 0   # puts answered as UnprocessedItems (held back or by the server)
    throttled_batches: int = 0   # batches refused whole
    throttled_items: int = 0     # puts in those batches
    refused: int = 0             # requests refused for credentials
    accepted_keys: list[str] = field(default_factory=list)  # JSON of each accepted put's item


@dataclass
class _Message:
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class DynamoFaultProxy(LoopbackProxy):
    """The proxy itself; see :func:`dynamo_fault_proxy` to run it."""

    def __init__(self, upstream_url: str, plan: DynamoFaultPlan) -> None:
        super().__init__(upstream_url)
        self.plan = plan
        self.counts = DynamoFaultCounts()
        self._rng = random.Random(plan.seed)

    # -- HTTP plumbing ------------------------------------------------------------------------

    async def handle(self, client: SocketStream) -> None:
        """Serve one client connection (keep-alive) until it closes."""
        async with client:
            conn = h11.Connection(h11.SERVER)
            while True:
                request = await _read_message(client, conn)
                if request is None:
                    return
                try:
                    status, headers, body = await self._answer(request)
                except (OSError, anyio.BrokenResourceError, anyio.EndOfStream):
                    return  # upstream gone: drop the client connection, as a failed server would
                headers = [*headers, (b"content-length", str(len(body)).encode())]
                try:
                    await client.send(conn.send(h11.Response(status_code=status,
                                                             headers=headers)))
                    await client.send(conn.send(h11.Data(data=body)))
                    await client.send(conn.send(h11.EndOfMessage()))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()

    async def _forward(self, request: _Message, body: bytes) -> _Answer:
        conn = h11.Connection(h11.CLIENT)
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
        headers += [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        async with await anyio.connect_tcp(*self.upstream) as upstream:
            await upstream.send(conn.send(h11.Request(method=request.method,
                                                      target=request.target,
                                                      headers=headers)))
            await upstream.send(conn.send(h11.Data(data=body)))
            await upstream.send(conn.send(h11.EndOfMessage()))
            response = await _read_message(upstream, conn)
        if response is None:
            raise ConnectionError("the upstream server closed without answering")
        status = int(response.method)
        kept = [(k, v) for k, v in response.headers if k.lower() not in _HOP_BY_HOP]
        return status, kept, response.body

    # -- faults -------------------------------------------------------------------------------

    async def _answer(self, request: _Message) -> _Answer:
        self.counts.requests += 1
        if self.plan.refuse_credentials:
            self.counts.refused += 1
            return _error(400, "UnrecognizedClientException",
                          "The security token included in the request is invalid.")
        target = request.header(b"x-amz-target") or b""
        if not target.endswith(b".BatchWriteItem"):
            return await self._forward(request, request.body)
        return await self._batch_write(request)

    async def _batch_write(self, request: _Message) -> _Answer:
        payload = json.loads(request.body)
        tables: dict[str, list[dict[str, Any]]] = payload.get("RequestItems", {})
        total = sum(len(reqs) for reqs in tables.values())
        self.counts.batches += 1
        self.counts.items_received += total
        if self._rng.random() < self.plan.throttle_probability:
            self.counts.throttled_batches += 1
            self.counts.throttled_items += total
            return _error(400, "ProvisionedThroughputExceededException",
                          "The level of configured provisioned throughput for the table was "
                          "exceeded. Consider increasing your provisioning level with the "
                          "UpdateTable API.")
        forwarded: dict[str, list[dict[str, Any]]] = {}
        held: dict[str, list[dict[str, Any]]] = {}
        for table, reqs in tables.items():
            for req in reqs:
                chosen = self._rng.random() < self.plan.forward_fraction
                (forwarded if chosen else held).setdefault(table, []).append(req)
        reply: dict[str, Any] = {}
        headers: list[tuple[bytes, bytes]] = [(b"content-type", _JSON_TYPE)]
        if forwarded:
            payload["RequestItems"] = forwarded
            status, headers, body = await self._forward(request, _dumps(payload))
            if status != 200:
                return status, headers, body
            reply = json.loads(body)
        server_left = reply.get("UnprocessedItems") or {}
        for table, reqs in forwarded.items():
            left = {json.dumps(r, sort_keys=True) for r in server_left.get(table, [])}
            for req in reqs:
                text = json.dumps(req, sort_keys=True)
                if text not in left:
                    self.counts.items_accepted += 1
                    self.counts.accepted_keys.append(
                        json.dumps(req.get("PutRequest", {}).get("Item", {}), sort_keys=True))
        unprocessed = {t: list(server_left.get(t, [])) for t in server_left}
        for table, reqs in held.items():
            unprocessed.setdefault(table, []).extend(reqs)
        self.counts.items_unprocessed += sum(len(r) for r in unprocessed.values())
        reply["UnprocessedItems"] = unprocessed
        body = _dumps(reply)
        headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
        return 200, [*headers, (b"x-amz-crc32", str(zlib.crc32(body)).encode())], body


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error(status: int, code: str, message: str) -> _Answer:
    body = _dumps({"__type": _ERROR_PREFIX + code, "message": message})
    return status, [(b"content-type", _JSON_TYPE),
                    (b"x-amz-crc32", str(zlib.crc32(body)).encode())], body


async def _read_message(stream: SocketStream, conn: h11.Connection) -> _Message | None:
    """One whole request or response from ``conn``; None when the peer closed cleanly.

    For a response, ``method`` holds the status code (as bytes) and ``target`` is empty.
    """
    got = await read_message(stream, conn)
    if got is None:
        return None
    head, body = got
    if isinstance(head, h11.Request):
        return _Message(head.method, head.target, list(head.headers), body)
    return _Message(str(head.status_code).encode(), b"", list(head.headers), body)


@asynccontextmanager
async def dynamo_fault_proxy(
        upstream_url: str, plan: DynamoFaultPlan | None = None) -> AsyncIterator[DynamoFaultProxy]:
    """Run a :class:`DynamoFaultProxy` on an ephemeral 127.0.0.1 port for the ``with`` body."""
    async with serving(DynamoFaultProxy(upstream_url, plan or DynamoFaultPlan())) as proxy:
        yield proxy
