"""Dealing one byte stream to N loaders, a run of whole records at a time (the parallel loads
of the PostgreSQL and MySQL sinks)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from anyio.streams.memory import MemoryObjectSendStream

from connectors.base import BytesIn, Progress, TextFormat
from connectors.formats import Framer


def record_framer(fmt: TextFormat, location: str) -> Framer:
    """A framer that cuts ``fmt`` only between records (CSV quotes respected)."""
    enc = fmt.encoding
    quote = fmt.quote.encode(enc) if (fmt.kind == "csv" and fmt.quote) else None
    escape = fmt.escape_char.encode(enc) if (quote and fmt.escape_char) else None
    return Framer(fmt.record_separator.encode(enc), quote, escape, location=location)


async def deal_records(inp: BytesIn, sends: Sequence[MemoryObjectSendStream[bytes]], framer: Framer,
                       progress: Progress,
                       transform: Callable[[bytes], Awaitable[bytes]] | None = None,
                       finish: Callable[[], bytes] | None = None) -> None:
    """Send ``inp``'s records to ``sends`` round robin (the first run to the first, so a
    header line reaches only it), after ``transform`` (and ``finish``'s tail) when given.
    Closes every send stream when done or failed; the caller's task group decides whether
    the loaders commit (end of input) or are cancelled (a failure)."""
    turn = 0

    async def out(data: bytes) -> None:
        nonlocal turn
        run = framer.feed(data)
        if run:
            await sends[turn].send(run)
            turn = (turn + 1) % len(sends)

    try:
        async for chunk in inp:
            progress.add(nbytes=len(chunk))
            await out(await transform(chunk) if transform is not None else chunk)
        if finish is not None:
            await out(finish())
        tail = framer.finish()
        if tail:
            await sends[turn].send(tail)
    finally:
        for send in sends:
            send.close()
