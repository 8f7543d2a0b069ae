"""A slow sink (RELIABILITY.md case 10): PostgreSQL behind a link with 200 ms of latency and
64 KiB/s of bandwidth. The copy's links stay bounded, the source is made to wait, nothing is
dropped, and the checker passes.

On loopback the kernel's socket buffers (tcp_wmem grows to 4 MiB) take in a few hundred KiB
whatever the link's speed, so this test cannot show the source lagging the *network*; that
the reader stops when its consumer stops is shown per connector by the clogged-consumer tests
(``check_clogged_sink``). What it shows is the copy's own part under a real slow sink.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from connectors import postgres
from connectors.base import EndpointOptions
from connectors.copy import CopyOptions, copy
from connectors.local import LocalSource
from connectors.testing import FaultProxy

pytestmark = pytest.mark.anyio

N = 1500
CHUNK = 4096
DEPTH = 4


async def sql(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(statement)]
    finally:
        await conn.close()


async def test_slow_postgres_sink_keeps_the_links_bounded_and_loses_nothing(
        pg_database: str, tmp_path: Path) -> None:
    await sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    src = tmp_path / "in.csv"
    src.write_bytes(b"".join(b'%d,"%s"\n' % (i, b"n" * 90) for i in range(N)))
    depths: list[tuple[str, int]] = []
    port = urlsplit(pg_database).port or 5432
    async with FaultProxy("127.0.0.1", port) as proxy:
        proxy.delay(0.2)
        proxy.bandwidth(64 * 1024, direction="up")
        url = pg_database.replace(f":{port}/", f":{proxy.port}/") + "?table=t"
        result = await copy(LocalSource(str(src), chunk_size=CHUNK),
                            postgres.sink_from_url(url, EndpointOptions()),
                            CopyOptions(stream_depth=DEPTH,
                                        on_queue_depth=lambda link, d: depths.append((link, d))))
        forwarded = proxy.bytes_up
    assert forwarded >= src.stat().st_size  # every byte went through the slow link
    # the one link filled up (the source had to wait for the sink) and never held more
    assert result.peak_queue_depth == {"source->sink": DEPTH}
    assert len(depths) == -(-src.stat().st_size // CHUNK)
    assert max(d for _, d in depths) == DEPTH
    ids = Counter(r[0] for r in await sql(pg_database, "SELECT id FROM t"))
    assert result.rows == N
    assert set(range(N)) - set(ids) == set()  # lost
    assert {i for i, c in ids.items() if c > 1} == set()  # duplicated
    assert set(ids) - set(range(N)) == set()  # unexpected
