"""FaultProxy against small in-test TCP servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from connectors.testing import FaultProxy

pytestmark = pytest.mark.anyio

Handler = Callable[[SocketStream], Awaitable[None]]


class Server:
    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted = 0


@asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[Server]:
    """A loopback server running ``handler`` per connection, inside a task group."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, \
            anyio.create_task_group() as group:
        server = Server(listener.extra(SocketAttribute.local_port))

        async def counted(stream: SocketStream) -> None:
            server.accepted += 1
            async with stream:
                await handler(stream)

        group.start_soon(listener.serve, counted)
        yield server
        group.cancel_scope.cancel()


async def echo(stream: SocketStream) -> None:
    """Echo everything until the client half-closes, then close."""
    with suppress(anyio.BrokenResourceError):
        async for chunk in stream:
            await stream.send(chunk)


def sender(payload: bytes) -> Handler:
    async def send_all(stream: SocketStream) -> None:
        with suppress(anyio.BrokenResourceError):
            await stream.send(payload)

    return send_all


async def read_until_closed(stream: SocketStream) -> tuple[bytes, BaseException | None]:
    """Everything the stream delivers, and the error that ended it (None for a clean EOF)."""
    received = bytearray()
    try:
        async for chunk in stream:
            received += chunk
    except (anyio.BrokenResourceError, OSError) as error:
        return bytes(received), error
    return bytes(received), None


async def round_trip(port: int, payload: bytes) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(payload)
        await stream.send_eof()
        received, error = await read_until_closed(stream)
    assert error is None
    return received


async def test_forwards_both_ways_with_half_close_and_counts_bytes() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, larger than any buffer in the path
    async with tcp_server(echo) as server, FaultProxy("127.0.0.1", server.port) as proxy:
        assert await round_trip(proxy.port, payload) == payload
        assert await round_trip(proxy.port, b"second") == b"second"
    assert proxy.connections == 2
    assert server.accepted == 2
    assert proxy.bytes_up == proxy.bytes_down == len(payload) + len(b"second")
    assert proxy.resets == 0


async def test_reset_after_cuts_the_download_with_a_reset_not_an_eof() -> None:
    payload = b"x" * 200_000
    async with tcp_server(sender(payload)) as server, \
            FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.reset_after(1000, direction="down")
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
            received, error = await read_until_closed(stream)
    assert error is not None  # a reset, which a client must not mistake for the end of data
    assert len(received) <= 1000 and payload.startswith(received)
    assert proxy.bytes_down == 1000
    assert proxy.resets == 1


async def test_reset_after_upload_fires_once_when_times_is_one() -> None:
    async with tcp_server(echo) as server, FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.reset_after(10, direction="up", times=1)
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
            await stream.send(b"0123456789abcdef")
            received, error = await read_until_closed(stream)
        assert error is not None
        assert len(received) <= 10
        assert proxy.bytes_up == 10
        # The fault is used up: the retry on a fresh connection goes through whole.
        assert await round_trip(proxy.port, b"0123456789abcdef") == b"0123456789abcdef"
    assert proxy.resets == 1


async def test_delay_holds_data_back_until_healed() -> None:
    async with tcp_server(echo) as server, FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.delay(60)
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
            await stream.send(b"ping")
            with anyio.move_on_after(0.3) as waited:
                await stream.receive()
            assert waited.cancelled_caught  # a minute's latency: nothing back yet
            assert proxy.bytes_up == 0
            proxy.heal()
            assert await stream.receive() == b"ping"


async def test_bandwidth_cap_paces_a_transfer_until_lifted() -> None:
    payload = b"y" * 100_000
    async with tcp_server(sender(payload)) as server, \
            FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.bandwidth(2000, direction="down")  # 100 kB would take 50 s
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
            received = bytearray()
            with anyio.move_on_after(0.5):
                while True:
                    received += await stream.receive()
            assert 0 < len(received) < len(payload)
            proxy.bandwidth(None)
            rest, error = await read_until_closed(stream)
    assert error is None
    assert bytes(received) + rest == payload


async def test_blackhole_accepts_but_forwards_nothing_until_healed() -> None:
    async with tcp_server(echo) as server, FaultProxy("127.0.0.1", server.port) as proxy:
        proxy.blackhole()
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
            await stream.send(b"hello")
            with anyio.move_on_after(0.3) as waited:
                await stream.receive()
            assert waited.cancelled_caught
            assert proxy.connections == 1
            assert server.accepted == 0
            proxy.heal()
            assert await stream.receive() == b"hello"
        assert server.accepted == 1


async def test_blackhole_stalls_an_open_connection() -> None:
    async with tcp_server(echo) as server, FaultProxy("127.0.0.1", server.port) as proxy, \
            await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
        await stream.send(b"one")
        assert await stream.receive() == b"one"
        proxy.blackhole()
        await stream.send(b"two")
        with anyio.move_on_after(0.3) as waited:
            await stream.receive()
        assert waited.cancelled_caught
        proxy.heal()
        assert await stream.receive() == b"two"


async def test_refuse_resets_new_connections_and_spares_open_ones() -> None:
    async with tcp_server(echo) as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as open_stream:
            await open_stream.send(b"a")
            assert await open_stream.receive() == b"a"
            proxy.refuse()
            async with await anyio.connect_tcp("127.0.0.1", proxy.port) as refused:
                received, error = await read_until_closed(refused)
            assert received == b""
            assert error is not None
            assert server.accepted == 1
            await open_stream.send(b"b")
            assert await open_stream.receive() == b"b"
        proxy.heal()
        assert await round_trip(proxy.port, b"c") == b"c"
    assert server.accepted == 2


async def test_disconnect_all_resets_open_connections() -> None:
    async with tcp_server(echo) as server, FaultProxy("127.0.0.1", server.port) as proxy:
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
            await stream.send(b"a")
            assert await stream.receive() == b"a"
            proxy.disconnect_all()
            received, error = await read_until_closed(stream)
        assert received == b""
        assert error is not None
        assert proxy.resets == 1
        assert proxy.active_connections == 0


async def test_unreachable_target_resets_the_client() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as placeholder:
        dead_port = placeholder.extra(SocketAttribute.local_port)
    async with FaultProxy("127.0.0.1", dead_port) as proxy, \
            await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
        received, error = await read_until_closed(stream)
    assert received == b""
    assert error is not None


async def test_closing_the_proxy_ends_open_connections_and_frees_the_port() -> None:
    async with tcp_server(echo) as server:
        async with FaultProxy("127.0.0.1", server.port) as proxy:
            stream = await anyio.connect_tcp("127.0.0.1", proxy.port)
            await stream.send(b"a")
            assert await stream.receive() == b"a"
            port = proxy.port
        received, _ = await read_until_closed(stream)
        await stream.aclose()
        assert received == b""
        with pytest.raises(OSError):
            await anyio.connect_tcp("127.0.0.1", port)


def test_invalid_faults_are_rejected() -> None:
    proxy = FaultProxy("127.0.0.1", 1)
    with pytest.raises(ValueError, match="direction"):
        proxy.delay(1, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nbytes"):
        proxy.reset_after(-1)
    with pytest.raises(ValueError, match="bytes_per_s"):
        proxy.bandwidth(0)
    with pytest.raises(RuntimeError, match="not running"):
        _ = proxy.port
