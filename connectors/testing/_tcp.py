"""A TCP proxy on loopback that puts network faults between a client and a real server.

Fault tests point a connector at ``proxy.port`` instead of the server and change the faults while
traffic flows::

    async with FaultProxy("127.0.0.1", 55432) as proxy:
        proxy.reset_after(64 * 1024, direction="up", times=1)   # drop the link mid-COPY, once
        ...
        proxy.heal()

Directions: "up" is client -> server, "down" is server -> client, "both" is either.

Each connection runs four tasks (a reader and a writer per direction) in the proxy's task group,
joined by bounded memory streams, so a stalled side exerts backpressure instead of buffering.
A reset is a real TCP RST (SO_LINGER 0) on both sockets, as a dropped link or a killed server
looks to a client.
"""

from __future__ import annotations

import argparse
import socket
import struct
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

Direction = Literal["up", "down", "both"]
_ONE_WAY = ("up", "down")
_STREAM_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)

# One queued item: (arrival time, bytes), or None for end of stream.
_Item = tuple[float, bytes] | None


def _directions(direction: Direction) -> tuple[str, ...]:
    if direction == "both":
        return _ONE_WAY
    if direction in _ONE_WAY:
        return (direction,)
    raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")


@dataclass(eq=False)
class _ResetRule:
    nbytes: int
    directions: tuple[str, ...]
    times: int | None  # connections still to reset; None = every one until heal()


@dataclass(eq=False)
class _Connection:
    client: SocketStream
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    upstream: SocketStream | None = None
    reset: bool = False
    next_send: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_ONE_WAY, 0.0))

    def abort(self) -> None:
        """Tear the connection down with an RST on both sides."""
        self.reset = True
        self.scope.cancel()


def _set_rst_on_close(stream: SocketStream | None) -> None:
    if stream is None:
        return
    try:
        raw = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, anyio.TypedAttributeLookupError):
        pass  # already closed


class FaultProxy:
    """Forward 127.0.0.1:<port> to ``target_host:target_port``, with faults set at run time."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        chunk_size: int = 64 * 1024,
        buffer_chunks: int = 16,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self._listen_port = listen_port
        self._chunk_size = chunk_size
        self._buffer_chunks = buffer_chunks
        # Counters, for tests to assert on.
        self.connections = 0  # accepted, including refused ones
        self.active_connections = 0
        self.resets = 0  # connections torn down by a reset fault or disconnect_all()
        self.bytes_up = 0  # forwarded client -> server
        self.bytes_down = 0  # forwarded server -> client
        # Faults.
        self._delay = dict.fromkeys(_ONE_WAY, 0.0)
        self._rate: dict[str, float | None] = dict.fromkeys(_ONE_WAY, None)
        self._reset_rule: _ResetRule | None = None
        self._refusing = False
        self._flowing = anyio.Event()
        self._flowing.set()
        self._changed = anyio.Event()
        self._open: set[_Connection] = set()
        self._stack: AsyncExitStack | None = None
        self._port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> FaultProxy:
        async with AsyncExitStack() as stack:
            listener = await anyio.create_tcp_listener(
                local_host=self.listen_host, local_port=self._listen_port
            )
            await stack.enter_async_context(listener)
            self._port = listener.extra(SocketAttribute.local_port)
            group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(group.cancel_scope.cancel)  # runs before the group waits for its tasks
            group.start_soon(listener.serve, self._handle, group)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is None:
            return None
        return await stack.__aexit__(exc_type, exc, traceback)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FaultProxy is not running; use it as `async with`")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self.listen_host, self.port

    # -- faults ---------------------------------------------------------------------------------

    def reset_after(
        self, nbytes: int, direction: Direction = "down", *, times: int | None = None
    ) -> None:
        """Forward ``nbytes`` more bytes in ``direction`` on a connection, then reset it.

        Counted per connection from the moment this is called. ``times``: reset that many
        connections and then stop (None: every connection until heal()).
        """
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        self._reset_rule = _ResetRule(nbytes, _directions(direction), times)

    def delay(self, seconds: float, direction: Direction = "both") -> None:
        """Deliver every chunk ``seconds`` after it arrived (latency, not a throughput cap)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        for name in _directions(direction):
            self._delay[name] = seconds
        self._notify()

    def bandwidth(self, bytes_per_s: float | None, direction: Direction = "both") -> None:
        """Cap each connection's throughput in ``direction`` (None removes the cap)."""
        if bytes_per_s is not None and bytes_per_s <= 0:
            raise ValueError("bytes_per_s must be > 0 or None")
        for name in _directions(direction):
            self._rate[name] = bytes_per_s
        self._notify()

    def blackhole(self) -> None:
        """Accept connections but forward nothing, either way, until heal() (a partition)."""
        if self._flowing.is_set():
            self._flowing = anyio.Event()

    def refuse(self) -> None:
        """Reset every new connection at once (as a server that is down); open ones go on."""
        self._refusing = True

    def disconnect_all(self) -> None:
        """Reset every open connection now (as a server restart does)."""
        for connection in list(self._open):
            self.resets += 1
            connection.abort()

    def heal(self) -> None:
        """Remove every fault; stalled traffic resumes."""
        self._delay = dict.fromkeys(_ONE_WAY, 0.0)
        self._rate = dict.fromkeys(_ONE_WAY, None)
        self._reset_rule = None
        self._refusing = False
        self._flowing.set()
        self._notify()

    def _notify(self) -> None:
        """Wake everything held by a delay or a cap, to re-read the faults."""
        self._changed.set()
        self._changed = anyio.Event()

    async def _hold(self, until: Callable[[], float]) -> None:
        """Sleep until the time ``until()`` gives, re-read whenever the faults change."""
        while (wait := until() - anyio.current_time()) > 0:
            with anyio.move_on_after(wait):
                await self._changed.wait()

    # -- forwarding -----------------------------------------------------------------------------

    async def _handle(self, client: SocketStream) -> None:
        self.connections += 1
        connection = _Connection(client)
        if self._refusing:
            _set_rst_on_close(client)
            await client.aclose()
            return
        self._open.add(connection)
        self.active_connections += 1
        try:
            with connection.scope:
                await self._flowing.wait()
                try:
                    connection.upstream = await anyio.connect_tcp(
                        self.target_host, self.target_port
                    )
                except OSError:
                    connection.reset = True  # the target is down: the client sees a reset
                else:
                    await self._pump_both_ways(connection)
        finally:
            self._open.discard(connection)
            self.active_connections -= 1
            if connection.reset:
                _set_rst_on_close(client)
                _set_rst_on_close(connection.upstream)
            with anyio.CancelScope(shield=True):
                await client.aclose()
                if connection.upstream is not None:
                    await connection.upstream.aclose()

    async def _pump_both_ways(self, connection: _Connection) -> None:
        assert connection.upstream is not None
        async with anyio.create_task_group() as group:
            for direction, source, sink in (
                ("up", connection.client, connection.upstream),
                ("down", connection.upstream, connection.client),
            ):
                send, receive = anyio.create_memory_object_stream[_Item](self._buffer_chunks)
                group.start_soon(self._read, connection, source, send)
                group.start_soon(self._write, connection, direction, receive, sink)

    async def _read(
        self, connection: _Connection, source: SocketStream, queue: MemoryObjectSendStream[_Item]
    ) -> None:
        async with queue:
            while True:
                try:
                    chunk = await source.receive(self._chunk_size)
                except anyio.EndOfStream:
                    chunk = b""
                except _STREAM_ERRORS:
                    connection.abort()  # one side reset: pass the reset on to the other
                    return
                try:
                    await queue.send((anyio.current_time(), chunk) if chunk else None)
                except anyio.BrokenResourceError:
                    return  # the writer is gone: the connection is being torn down
                if not chunk:
                    return

    async def _write(
        self,
        connection: _Connection,
        direction: str,
        queue: MemoryObjectReceiveStream[_Item],
        sink: SocketStream,
    ) -> None:
        rule_seen: _ResetRule | None = None
        sent_under_rule = 0
        async with queue:
            async for item in queue:
                if item is None:
                    try:
                        await sink.send_eof()
                    except _STREAM_ERRORS:
                        connection.abort()
                    return
                arrived, chunk = item
                await self._hold(lambda: arrived + self._delay[direction])  # noqa: B023
                await self._flowing.wait()
                rule = self._reset_rule
                if rule is not None and direction in rule.directions:
                    if rule is not rule_seen:
                        rule_seen, sent_under_rule = rule, 0
                    allowed = rule.nbytes - sent_under_rule
                    if len(chunk) >= allowed and self._claim(rule):
                        await self._send(connection, direction, sink, chunk[:allowed])
                        self.resets += 1
                        connection.abort()
                        return
                    sent_under_rule += len(chunk)
                await self._send(connection, direction, sink, chunk)

    def _claim(self, rule: _ResetRule) -> bool:
        """Take one reset from ``rule``; False once its ``times`` are used up."""
        if rule.times is None:
            return True
        if rule.times <= 0:
            return False
        rule.times -= 1
        if rule.times == 0 and self._reset_rule is rule:
            self._reset_rule = None
        return True

    async def _send(
        self, connection: _Connection, direction: str, sink: SocketStream, data: bytes
    ) -> None:
        if not data:
            return
        rate = self._rate[direction]
        # Paced in slices of ~50 ms so a cap also applies within one large chunk.
        piece = len(data) if rate is None else max(1, min(len(data), int(rate / 20)))

        def next_slot() -> float:  # no wait once the cap is lifted
            return connection.next_send[direction] if self._rate[direction] else 0.0

        for start in range(0, len(data), piece):
            part = data[start : start + piece]
            await self._hold(next_slot)
            if (rate := self._rate[direction]) is not None:
                slot = max(connection.next_send[direction], anyio.current_time())
                connection.next_send[direction] = slot + len(part) / rate
            try:
                await sink.send(part)
            except _STREAM_ERRORS:
                connection.abort()
                return
            if direction == "up":
                self.bytes_up += len(part)
            else:
                self.bytes_down += len(part)


# -- manual use ---------------------------------------------------------------------------------


async def _serve_forever(args: argparse.Namespace) -> None:
    host, _, port = args.target.rpartition(":")
    async with FaultProxy(host or "127.0.0.1", int(port), listen_port=args.port) as proxy:
        if args.delay:
            proxy.delay(args.delay)
        if args.bandwidth:
            proxy.bandwidth(args.bandwidth)
        if args.reset_after is not None:
            proxy.reset_after(args.reset_after, args.direction)
        print(f"faultproxy: 127.0.0.1:{proxy.port} -> {args.target}", flush=True)
        await anyio.sleep_forever()


def main(argv: list[str] | None = None) -> None:
    """python -m connectors.testing HOST:PORT [--port N] [--delay S] [--bandwidth B/s]
    [--reset-after N --direction up|down|both]"""
    parser = argparse.ArgumentParser(prog="python -m connectors.testing",
                                     description="TCP fault proxy on 127.0.0.1 for manual tests")
    parser.add_argument("target", help="HOST:PORT of the real server")
    parser.add_argument("--port", type=int, default=0, help="listen port (default: any free)")
    parser.add_argument("--delay", type=float, default=0.0, help="latency per chunk, seconds")
    parser.add_argument("--bandwidth", type=float, default=None, help="bytes per second cap")
    parser.add_argument("--reset-after", type=int, default=None, help="reset after N bytes")
    parser.add_argument("--direction", choices=["up", "down", "both"], default="down")
    args = parser.parse_args(argv)
    with suppress(KeyboardInterrupt):
        anyio.run(_serve_forever, args)

