"""``python -m benchmarks.console``: the web console under load.

1. **The grid.** A pipeline of 50 components x 200 intervals (10,000 instances, statuses mixed)
   in a fresh SQLite store, ``headrace serve --no-scheduler``. Measured: the pipeline page's
   server time and payload (raw and gzip, as a browser asks for it), and the time to first
   render in headless Chromium (navigation until the grid's 10,000 cells and the graph are on
   screen). Baselines, in the same run: reading the same rows straight from SQLite (the floor),
   and what a script does with the API to get the same statuses (QueryObjects pages of 1,000,
   then DescribeObjects 100 ids a call, signed raw HTTP).
2. **100 open consoles.** 100 live pages (server-sent event streams, the pipeline page's) on
   one server while a writer changes 10 instances a second in the store (an engine's rate on a
   busy pipeline). Measured: the server's CPU (from /proc, % of one core) against the same
   server idle with no console open, events delivered per client, and the store queries the
   change feed made (from its log line at shutdown) against one poll per client per second.

Timing only; the behaviour is tested in ``tests/browser/``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchmarks.api_server import RawClient

KEY, SECRET = "AKIDBENCH", "bench-secret"
HEADRACE = str(Path(sys.executable).with_name("headrace"))
STATUSES = ["FINISHED"] * 6 + ["FAILED", "RUNNING", "WAITING_ON_DEPENDENCIES",
                               "CASCADE_FAILED", "WAITING_FOR_RUNNER", "CANCELED"]


async def fill(store_url: str, components: int, intervals: int) -> str:
    from engine.service import PipelineService
    from engine.store import InstanceRecord, Status, open_store

    async with open_store(store_url) as store:
        record = await PipelineService(store).create("grid-bench", "grid-bench")
        objects: list[dict[str, Any]] = [
            {"id": "Default", "name": "Default", "scheduleType": "cron",
             "schedule": {"ref": "S"}},
            {"id": "S", "name": "S", "type": "Schedule", "period": "1 hour",
             "startDateTime": "2024-01-01T00:00:00"}]
        for c in range(components):
            step: dict[str, Any] = {"id": f"Step{c:02d}", "name": f"Step{c:02d}",
                                    "type": "ShellCommandActivity", "command": "true"}
            if c:
                step["dependsOn"] = {"ref": f"Step{(c - 1) // 2:02d}"}
            objects.append(step)
        version = await store.put_definition(record.id, {"objects": objects})
        await store.update_pipeline(record.id, active_version=version)
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        batch = []
        for i in range(intervals):
            start = t0 + timedelta(hours=i)
            stamp = start.strftime("%Y-%m-%dT%H:%M:%S")
            for c in range(components):
                oid = f"Step{c:02d}"
                deps = [f"@Step{(c - 1) // 2:02d}_{stamp}"] if c else []
                batch.append(InstanceRecord(
                    record.id, f"@{oid}_{stamp}", oid, "ShellCommandActivity", "activity",
                    start, start + timedelta(hours=1), start,
                    status=Status(STATUSES[(i * 7 + c) % len(STATUSES)]), attempts=1,
                    depends_on=deps, updated_at=start))
        await store.add_instances(batch)
        return record.id


def start_server(store_url: str, root: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
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
            return proc, int(found.group(1)), log
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"headrace serve did not start:\n{log.read_text()}")


def login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/console/login", body=urlencode(
        {"access_key": KEY, "secret_key": SECRET, "next": "/console/pipelines"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    cookie = response.getheader("set-cookie") or ""
    conn.close()
    if response.status != 303 or not cookie:
        raise SystemExit(f"login failed: {response.status}")
    return cookie.split(";")[0]


def get(port: int, path: str, cookie: str, gzipped: bool) -> tuple[float, bytes, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Cookie": cookie, "Accept": "text/html"}
    if gzipped:
        headers["Accept-Encoding"] = "gzip"
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    seconds = time.perf_counter() - started
    conn.close()
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status}")
    return seconds, body, len(body)


def sqlite_floor(path: str, pipeline_id: str) -> float:
    started = time.perf_counter()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, object_id, scheduled_start, status, late_fired, "
                          "depends_on FROM hr_instances WHERE pipeline_id = ?",
                          (pipeline_id,)).fetchall()
    assert rows
    return time.perf_counter() - started


def api_statuses(port: int, pipeline_id: str) -> tuple[float, int]:
    client = RawClient(port)
    started = time.perf_counter()
    ids: list[str] = []
    marker = None
    while True:
        body: dict[str, Any] = {"pipelineId": pipeline_id, "sphere": "INSTANCE", "limit": 1000}
        if marker:
            body["marker"] = marker
        page = client.call("QueryObjects", body)
        ids += page.get("ids", [])
        marker = page.get("marker")
        if not page.get("hasMoreResults"):
            break
    count = 0
    for i in range(0, len(ids), 100):
        count += len(client.call("DescribeObjects", {"pipelineId": pipeline_id,
                                                     "objectIds": ids[i:i + 100]})[
            "pipelineObjects"])
    return time.perf_counter() - started, count


def browser_render(port: int, pipeline_id: str, cells: int) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/console/login")
        page.fill("#access_key", KEY)
        page.fill("#secret_key", SECRET)
        page.click("form.login button[type=submit]")
        page.wait_for_load_state()
        started = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/console/pipelines/{pipeline_id}",
                  wait_until="commit")
        page.wait_for_function(
            "n => document.querySelectorAll('table.grid td[data-id]').length === n "
            "&& document.getElementById('graph').dataset.laidOut !== '0'", arg=cells,
            timeout=120_000)
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def peak_rss_kib(pid: int) -> int:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found[1]) if found else 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Writer(threading.Thread):
    """Changes ``rate`` instances a second in the store, as an engine would."""

    def __init__(self, path: str, pipeline_id: str, rate: int) -> None:
        super().__init__(daemon=True)
        self.path, self.pipeline_id, self.rate = path, pipeline_id, rate
        self.stop = threading.Event()
        self.changes = 0

    def run(self) -> None:
        with sqlite3.connect(self.path, timeout=30) as db:
            ids = [r[0] for r in db.execute("SELECT id FROM hr_instances WHERE pipeline_id = ?",
                                            (self.pipeline_id,))]
            i = 0
            while not self.stop.wait(1 / self.rate):
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
                status = STATUSES[i % len(STATUSES)]
                db.execute("UPDATE hr_instances SET status = ?, updated_at = ? WHERE "
                           "pipeline_id = ? AND id = ?", (status, now, self.pipeline_id,
                                                          ids[i % len(ids)]))
                db.commit()
                i += 1
                self.changes += 1


def open_streams(port: int, cookie: str, pipeline_id: str, clients: int,
                 stop: threading.Event) -> list[int]:
    counts = [0] * clients

    def reader(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", f"/console/events?pipeline={pipeline_id}",
                     headers={"Cookie": cookie, "Accept": "text/event-stream"})
        response = conn.getresponse()
        batch = False
        while not stop.is_set():
            line = response.fp.readline()
            if not line:
                break
            if line.startswith(b"event: "):
                batch = line.strip() == b"event: instances"
            elif batch and line.startswith(b"data: "):
                counts[n] += len(json.loads(line[6:])["changes"])
                batch = False
        conn.close()

    for n in range(clients):
        threading.Thread(target=reader, args=(n,), daemon=True).start()
    return counts


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--components", type=int, default=50)
    parser.add_argument("--intervals", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=int, default=10)
    parser.add_argument("--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="headrace-console-bench-"))
    db_path = str(root / "store.db")
    store_url = f"sqlite:///{db_path}"
    pid = asyncio.run(fill(store_url, args.components, args.intervals))
    cells = args.components * args.intervals
    proc, port, log = start_server(store_url, root)
    out: dict[str, Any] = {"components": args.components, "intervals": args.intervals,
                           "cells": cells}
    try:
        cookie = login(port)
        path = f"/console/pipelines/{pid}?intervals={args.intervals}"
        get(port, path, cookie, True)  # warm: the definition parsed once, caches filled
        plain, zipped, floors, apis, renders = [], [], [], [], []
        raw_size = zip_size = 0
        for _ in range(args.runs):
            seconds, body, raw_size = get(port, path, cookie, False)
            assert body.count(b"data-id=") == cells, "the grid is not whole"
            plain.append(seconds)
            seconds, body, zip_size = get(port, path, cookie, True)
            assert len(gzip.decompress(body)) == raw_size
            zipped.append(seconds)
            floors.append(sqlite_floor(db_path, pid))
            seconds, described = api_statuses(port, pid)
            assert described == cells
            apis.append(seconds)
        for _ in range(min(args.runs, 3)):
            renders.append(browser_render(port, pid, cells))
        out["grid"] = {
            "server_seconds": round(median(plain), 4),
            "server_seconds_gzip": round(median(zipped), 4),
            "payload_bytes": raw_size, "payload_bytes_gzip": zip_size,
            "first_render_seconds_chromium": round(median(renders), 3),
            "sqlite_floor_seconds": round(median(floors), 4),
            "api_seconds": round(median(apis), 4),
            "ratio_vs_api": round(median(apis) / median(zipped), 2),
            "ratio_vs_sqlite_floor": round(median(floors) / median(zipped), 3),
        }
        # --- 100 consoles ---------------------------------------------------------------
        idle_before = cpu_seconds(proc.pid)
        time.sleep(args.seconds)
        idle = (cpu_seconds(proc.pid) - idle_before) / args.seconds
        stop = threading.Event()
        counts = open_streams(port, cookie, pid, args.clients, stop)
        time.sleep(2)  # all connected
        writer = Writer(db_path, pid, args.rate)
        before = cpu_seconds(proc.pid)
        writer.start()
        time.sleep(args.seconds)
        busy = (cpu_seconds(proc.pid) - before) / args.seconds
        writer.stop.set()
        writer.join()
        time.sleep(2)
        stop.set()
        delivered = sorted(counts)
        out["consoles"] = {
            "clients": args.clients, "seconds": args.seconds, "changes_written":
                writer.changes, "cpu_percent_idle_no_console": round(idle * 100, 1),
            "cpu_percent_with_consoles": round(busy * 100, 1),
            "events_per_client_min": delivered[0], "events_per_client_median":
                delivered[len(delivered) // 2],
        }
        out["server_peak_rss_mib"] = round(peak_rss_kib(proc.pid) / 1024, 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    stats = re.search(r"console feed: (\d+) looks, (\d+) store queries", log.read_text())
    if stats and "consoles" in out:
        looks, queries = int(stats[1]), int(stats[2])
        uptime = args.seconds + 4
        out["consoles"].update({
            "feed_looks": looks, "feed_store_queries": queries,
            "queries_if_each_client_polled_each_second": int(args.clients * 4 * uptime),
        })
    if args.output == "json":
        print(json.dumps(out, indent=2))
        return
    grid = out["grid"]
    print(f"grid {args.components} x {args.intervals} ({cells:,} cells)")
    print(f"  server: {grid['server_seconds'] * 1000:.0f} ms, gzip "
          f"{grid['server_seconds_gzip'] * 1000:.0f} ms; payload {grid['payload_bytes']:,} B, "
          f"gzip {grid['payload_bytes_gzip']:,} B")
    print(f"  first render in Chromium: {grid['first_render_seconds_chromium'] * 1000:.0f} ms")
    print(f"  API (QueryObjects + DescribeObjects): {grid['api_seconds'] * 1000:.0f} ms "
          f"-> ratio {grid['ratio_vs_api']}; SQLite floor "
          f"{grid['sqlite_floor_seconds'] * 1000:.1f} ms")
    consoles = out["consoles"]
    print(f"{consoles['clients']} consoles for {consoles['seconds']:.0f} s, "
          f"{consoles['changes_written']} changes written")
    print(f"  server CPU: {consoles['cpu_percent_with_consoles']}% of a core "
          f"(idle, no console: {consoles['cpu_percent_idle_no_console']}%)")
    print(f"  events per client: min {consoles['events_per_client_min']}, median "
          f"{consoles['events_per_client_median']}")
    if "feed_store_queries" in consoles:
        print(f"  store: {consoles['feed_store_queries']} queries in "
              f"{consoles['feed_looks']} looks (one poll per client per second: "
              f"{consoles['queries_if_each_client_polled_each_second']:,})")
    print(f"server peak RSS: {out['server_peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
