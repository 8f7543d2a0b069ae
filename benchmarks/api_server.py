"""``python -m benchmarks.api_server``: how fast ``headrace serve`` answers DescribeObjects
(100 instances a call) and QueryObjects (pages of 100) with 100,000 instances in the store,
through boto3 and through raw HTTP (requests signed with botocore's SigV4 signer, sent on one
kept-alive ``http.client`` connection: what the server costs without the SDK's own work).

Requests per second and p50/p99 latency, one client at a time and ``--clients`` at once
(threads). The store is filled directly (not through the API: the point is the read path).
Timing only; the behaviour is tested in ``tests/e2e/test_api_*.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

KEY, SECRET = "AKIDBENCH", "bench-secret"
HEADRACE = str(Path(sys.executable).with_name("headrace"))


async def _fill(store_url: str, instances: int) -> tuple[str, list[str]]:
    from engine.service import PipelineService
    from engine.store import InstanceRecord, Status, open_store

    async with open_store(store_url) as store:
        record = await PipelineService(store).create("bench", f"bench-{instances}")
        body = {"objects": [
            {"id": "Default", "name": "Default", "scheduleType": "cron",
             "schedule": {"ref": "S"}},
            {"id": "S", "name": "S", "type": "Schedule", "period": "15 minutes",
             "startDateTime": "2020-01-01T00:00:00"},
            {"id": "A", "name": "A", "type": "ShellCommandActivity", "command": "true"},
            {"id": "B", "name": "B", "type": "ShellCommandActivity", "command": "true",
             "dependsOn": {"ref": "A"}}]}
        version = await store.put_definition(record.id, body)
        await store.update_pipeline(record.id, active_version=version)
        t0 = datetime(2020, 1, 1, tzinfo=UTC)
        ids: list[str] = []
        batch: list[InstanceRecord] = []
        statuses = [Status.FINISHED, Status.FINISHED, Status.FAILED, Status.WAITING_FOR_RUNNER]
        for i in range(instances // 2):
            start = t0 + timedelta(minutes=15 * i)
            stamp = start.strftime("%Y-%m-%dT%H:%M:%S")
            for oid in ("A", "B"):
                iid = f"@{oid}_{stamp}"
                ids.append(iid)
                batch.append(InstanceRecord(
                    record.id, iid, oid, "ShellCommandActivity", "activity", start,
                    start + timedelta(minutes=15), start, status=statuses[i % 4],
                    attempts=1, actual_start=start, actual_end=start + timedelta(minutes=1),
                    depends_on=[f"@A_{stamp}"] if oid == "B" else []))
            if len(batch) >= 5000:
                await store.add_instances(batch)
                batch = []
        if batch:
            await store.add_instances(batch)
        return record.id, ids


def _start(store_url: str, root: Path) -> tuple[subprocess.Popen[bytes], int]:
    log = root / "serve.log"
    env = {**os.environ, "HEADRACE_API_CREDENTIALS": f"{KEY}:{SECRET}",
           "XDG_DATA_HOME": str(root / "xdg")}
    with log.open("wb") as sink:
        proc = subprocess.Popen([HEADRACE, "serve", "--store", store_url, "--port", "0",
                                 "--no-scheduler"], stdout=sink, stderr=subprocess.STDOUT,
                                env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"headrace serve did not start:\n{log.read_text()}")


class RawClient:
    """Signed JSON 1.1 requests on one kept-alive connection."""

    def __init__(self, port: int) -> None:
        from botocore.auth import SigV4Auth
        from botocore.credentials import Credentials

        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.signer = SigV4Auth(Credentials(KEY, SECRET), "datapipeline", "us-east-1")

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        from botocore.awsrequest import AWSRequest

        data = json.dumps(body).encode()
        request = AWSRequest(method="POST", url=f"http://127.0.0.1:{self.port}/", data=data,
                             headers={"Content-Type": "application/x-amz-json-1.1",
                                      "X-Amz-Target": f"DataPipeline.{operation}"})
        self.signer.add_auth(request)
        self.conn.request("POST", "/", body=data, headers=dict(request.headers.items()))
        response = self.conn.getresponse()
        raw = response.read()
        if response.status != 200:
            raise SystemExit(f"{operation} answered {response.status}: {raw[:300]!r}")
        result: dict[str, Any] = json.loads(raw)
        return result


def _boto(port: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("datapipeline", endpoint_url=f"http://127.0.0.1:{port}",
                        region_name="us-east-1", aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET,
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=32))


def _measure(call: Callable[[], Any], seconds: float, clients: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            call()
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[min(len(latencies) - 1,
                                          int(len(latencies) * 0.99))] * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (threads)")
    parser.add_argument("--store", help="a store URL (default: a fresh SQLite file)")
    parser.add_argument("--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    import anyio

    with tempfile.TemporaryDirectory(prefix="hr-api-bench-") as tmp:
        root = Path(tmp)
        store_url = args.store or f"sqlite:///{root}/store.db"
        filled = time.perf_counter()
        pid, ids = anyio.run(_fill, store_url, args.instances)
        fill_s = time.perf_counter() - filled
        proc, port = _start(store_url, root)
        try:
            results = _run(port, pid, ids, args)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    report = {"instances": args.instances, "fill_seconds": round(fill_s, 1),
              "store": "sqlite" if not args.store else args.store.split(":", 1)[0],
              "clients": args.clients, "results": results}
    if args.output == "json":
        print(json.dumps(report, indent=2))
        return
    print(f"{args.instances:,} instances in the store (filled in {fill_s:.1f} s), "
          f"{report['store']}")
    print(f"{'measurement':<44} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, row in results.items():
        print(f"{name:<44} {row['clients']:>7} {row['rps']:>8} {row['p50_ms']:>8} "
              f"{row['p99_ms']:>8}")


def _run(port: int, pid: str, ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    boto = _boto(port)
    local = threading.local()

    def raw() -> RawClient:
        if not hasattr(local, "client"):
            local.client = RawClient(port)
        return local.client  # type: ignore[no-any-return]

    def describe_body() -> dict[str, Any]:
        start = rng.randrange(0, len(ids) - 100)
        return {"pipelineId": pid, "objectIds": ids[start:start + 100]}

    pages: dict[str, str | None] = {"boto": None, "raw": None}

    def query_boto() -> None:
        kwargs: dict[str, Any] = {"pipelineId": pid, "sphere": "INSTANCE", "limit": 100}
        if pages["boto"]:
            kwargs["marker"] = pages["boto"]
        out = boto.query_objects(**kwargs)
        assert len(out["ids"]) == 100 or not out["hasMoreResults"]
        pages["boto"] = out.get("marker")

    def query_raw() -> None:
        body: dict[str, Any] = {"pipelineId": pid, "sphere": "INSTANCE", "limit": 100}
        if pages["raw"]:
            body["marker"] = pages["raw"]
        out = raw().call("QueryObjects", body)
        pages["raw"] = out.get("marker")

    def describe_boto() -> None:
        out = boto.describe_objects(**describe_body())
        assert len(out["pipelineObjects"]) == 100

    def describe_raw() -> None:
        out = raw().call("DescribeObjects", describe_body())
        assert len(out["pipelineObjects"]) == 100

    query_filtered = {"pipelineId": pid, "sphere": "INSTANCE", "limit": 100, "query": {
        "selectors": [{"fieldName": "@status", "operator": {"type": "EQ",
                                                           "values": ["FAILED"]}},
                      {"fieldName": "@scheduledStartTime", "operator": {
                          "type": "BETWEEN", "values": ["2020-06-01T00:00:00",
                                                        "2021-01-01T00:00:00"]}}]}}

    def query_filtered_raw() -> None:
        raw().call("QueryObjects", query_filtered)

    describe_boto()  # warm: the definition cache, connections
    results: dict[str, Any] = {}
    plan = [("DescribeObjects x100, boto3", describe_boto),
            ("DescribeObjects x100, raw HTTP", describe_raw),
            ("QueryObjects page of 100, boto3", query_boto),
            ("QueryObjects page of 100, raw HTTP", query_raw),
            ("QueryObjects status+time filter, raw HTTP", query_filtered_raw)]
    for name, call in plan:
        for clients in (1, args.clients):
            if clients > 1 and "QueryObjects page" in name:
                continue  # a page walk is one client's sequence of markers
            row = _measure(call, args.seconds, clients)
            row["clients"] = clients
            results[f"{name}" + (f" [{clients}]" if clients > 1 else "")] = row
    return results


if __name__ == "__main__":
    main()
