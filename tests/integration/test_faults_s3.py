"""S3 faults through whole copies (RELIABILITY.md case 6): SeaweedFS behind an HTTP fault
proxy that answers 10% of the requests ``503 SlowDown`` and 1% ``500 InternalError`` itself.

Checker: the source rows have ids 0..N-1; after the round trip file -> S3 prefix -> file, the
ids read back hold nothing lost, nothing duplicated and nothing unexpected.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from connectors import aws
from connectors.base import CSV, Progress
from connectors.copy import copy
from connectors.local import LocalSink, LocalSource
from connectors.s3 import S3Sink, S3Source
from connectors.testing import S3FaultPlan, s3_fault_proxy
from tests.otel_kit import recording

pytestmark = pytest.mark.anyio

N = 20_000
#: botocore's standard retry mode: a retry costs 5 of 500 tokens (timeouts cost 10).
RETRY_QUOTA = 500 // 5


def source_file(path: Path) -> Path:
    path.write_bytes(b"".join(b'%d,"row %d, with a comma"\n' % (i, i) for i in range(N)))
    return path


def checker(data: bytes) -> None:
    ids = Counter(int(line.split(b",", 1)[0]) for line in data.splitlines())
    assert set(range(N)) - set(ids) == set()  # lost
    assert {i for i, c in ids.items() if c > 1} == set()  # duplicated
    assert set(ids) - set(range(N)) == set()  # unexpected


async def test_slow_down_and_internal_errors_are_retried_with_jitter(
        s3_bucket: str, s3_endpoint: str, tmp_path: Path) -> None:
    src = source_file(tmp_path / "in.csv")
    progress = Progress()
    # seed 25: the first requests' draws include both kinds of fault
    async with s3_fault_proxy(s3_endpoint, S3FaultPlan(seed=25)) as proxy:
        with recording() as exporter:
            # ~40 objects of 32 KiB (create + part + complete each), then read back by a
            # listing and ranged GETs: ~80 requests, ~8 of them refused
            up = await copy(LocalSource(str(src), chunk_size=16 * 1024), S3Sink(
                f"s3://{s3_bucket}/out/", CSV, endpoint_url=proxy.url, file_bytes=32 * 1024),
                progress=progress)
            down = await copy(S3Source(f"s3://{s3_bucket}/out/", CSV, endpoint_url=proxy.url,
                                       chunk_size=16 * 1024),
                              LocalSink(str(tmp_path / "back.csv")), progress=progress)
        spans = list(exporter.get_finished_spans())
    counts = proxy.counts

    back = (tmp_path / "back.csv").read_bytes()
    checker(back)
    assert back == src.read_bytes()
    assert (up.rows, down.rows) == (N, N)

    # both faults happened, and every refused request was sent again and then served
    assert counts.slow_downs >= 3 and counts.internal_errors >= 1, counts
    assert 0.03 < counts.slow_downs / counts.requests < 0.25
    tries = counts.tries()
    assert all(records[-1].outcome == "forwarded" for records in tries.values())
    # the copies count the retries of the calls that carry data (parts, completes, GETs):
    # exactly the faults the proxy sent them, and the spans say so
    data_calls = [r for r in counts.log if _carries_data(r.key)]
    refused = sum(r.outcome != "forwarded" for r in data_calls)
    assert up.retries + down.retries == progress.retries == refused > 0
    assert set(progress.retry_causes) <= {"s3-upload-part", "s3-complete", "s3-get"}
    attrs: list[tuple[str, dict[str, Any]]] = [(s.name, dict(s.attributes or {}))
                                               for s in spans]
    assert sorted(a["headrace.retries"] for name, a in attrs if name == "copy") == sorted(
        [up.retries, down.retries])
    assert sum(int(a.get("headrace.retries", 0)) for name, a in attrs
               if name.startswith("S3.")) == counts.faults
    # attempts stay within botocore's limits: per request and the client's retry quota
    assert max(len(records) for records in tries.values()) <= aws.DEFAULT_MAX_ATTEMPTS
    assert counts.faults < RETRY_QUOTA
    # backoff with jitter: the waits before resends differ
    delays = counts.resend_delays()
    assert len(delays) == counts.faults
    assert min(delays) >= 0 and max(delays) - min(delays) > 0.05
    assert len({round(d, 3) for d in delays}) > len(delays) // 2

    # no upload was left pending
    async with aws.client("s3", endpoint_url=s3_endpoint) as client:
        pending = await client.list_multipart_uploads(Bucket=s3_bucket, Prefix="out/")
    assert pending.get("Uploads", []) == []


def _carries_data(key: tuple[str, str, str]) -> bool:
    method, target, _ = key
    if method == "PUT":
        return "partNumber=" in target
    if method == "POST":
        return "uploadId=" in target
    return method == "GET" and "?" not in target
