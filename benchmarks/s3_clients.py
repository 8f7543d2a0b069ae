"""aiobotocore (headrace's S3 client) against obstore (a Rust object-store client with an async
Python API) on the two paths where the client's own CPU shows: 1,000 x 1 MiB server-side
copies (CopyObject, 16 in flight) and one 1 GiB object fetched by 8 MiB ranges (4 in flight)
into a file at their offsets.

``python -m benchmarks.s3_clients [--runs K] [--count 1000] [--big-mib 1024]`` alternates the
two clients round by round (the order flips), each run a fresh process measured from outside
(wall, CPU of the process, peak RSS), and prints the medians and ratios as JSON. The objects
are the main benchmark's (``python -m benchmarks --only s3-s3-many,s3-file`` writes them).
``python -m benchmarks.s3_clients one CLIENT JOB ...`` is one such run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import anyio

from benchmarks import config, data
from benchmarks.measure import run

RANGE = 8 * 2**20


def _obstore() -> Any:
    from obstore.store import S3Store

    # endpoint, keys and region from the standard variables, as the AWS SDKs read them
    return S3Store(config.BUCKET, endpoint=os.environ["AWS_ENDPOINT_URL_S3"],
                   region=os.environ.get("AWS_DEFAULT_REGION", config.REGION),
                   virtual_hosted_style_request=False, client_options={"allow_http": True})


async def _each(parallel: int, items: list[Any], fn: Any) -> None:
    limit = anyio.Semaphore(parallel)

    async def one(item: Any) -> None:
        async with limit:
            await fn(item)

    async with anyio.create_task_group() as tg:
        for item in items:
            tg.start_soon(one, item)


async def copy_many(client: str, src: str, dst: str, count: int) -> None:
    keys = [f"{src}obj-{i:05d}.bin" for i in range(count)]  # as benchmarks.data names them
    if client == "obstore":
        import obstore

        store = _obstore()

        async def copy_one(key: str) -> None:
            await obstore.copy_async(store, key, dst + key[len(src):])

        await _each(16, keys, copy_one)
        return
    from connectors import aws

    async with aws.client("s3", parallel=16) as s3:
        async def copy_one_boto(key: str) -> None:
            await s3.copy_object(Bucket=config.BUCKET, Key=dst + key[len(src):],
                                 CopySource={"Bucket": config.BUCKET, "Key": key})

        await _each(16, keys, copy_one_boto)


async def get_big(client: str, key: str, path: str, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        starts = list(range(0, size, RANGE))
        if client == "obstore":
            import obstore

            store = _obstore()

            async def fetch(start: int) -> None:
                length = min(RANGE, size - start)
                buf = await obstore.get_range_async(store, key, start=start, length=length)
                await anyio.to_thread.run_sync(os.pwrite, fd, memoryview(buf), start)

            await _each(4, starts, fetch)
            return
        from connectors import aws

        async with aws.client("s3", parallel=4) as s3:
            async def fetch_boto(start: int) -> None:
                end = min(start + RANGE, size) - 1
                resp = await s3.get_object(Bucket=config.BUCKET, Key=key,
                                           Range=f"bytes={start}-{end}")
                async with resp["Body"] as body:
                    chunk = await body.read()
                await anyio.to_thread.run_sync(os.pwrite, fd, chunk, start)

            await _each(4, starts, fetch_boto)
    finally:
        os.close(fd)


def _one(argv: list[str]) -> int:
    client, job, *rest = argv
    started = time.perf_counter()
    if job == "copy-many":
        anyio.run(copy_many, client, rest[0], rest[1], int(rest[2]))
    else:
        anyio.run(get_big, client, rest[0], rest[1], int(rest[2]))
    print(json.dumps({"seconds": time.perf_counter() - started}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "one":
        return _one(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.s3_clients")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--big-mib", type=int, default=1024)
    args = parser.parse_args(argv)
    env = config.Env.build().values
    size = args.big_mib * 2**20
    out = config.CACHE / "out"
    out.mkdir(parents=True, exist_ok=True)
    jobs = {
        "1,000 x 1 MiB server-side copies": lambda c: [
            "copy-many", data.small_prefix(args.count), f"out/clients-{c}/", str(args.count)],
        "1 GiB ranged download to a file": lambda c: [
            "get-big", data.big_key(size), str(out / f"clients-{c}.bin"), str(size)],
    }
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "load_average": os.getloadavg(), "jobs": {}}
    for name, job in jobs.items():
        taken: dict[str, list[tuple[float, float, int]]] = {"aiobotocore": [], "obstore": []}
        for round_no in range(args.runs):
            order = ["aiobotocore", "obstore"] if round_no % 2 == 0 else \
                ["obstore", "aiobotocore"]
            for client in order:
                m = run([config.PYTHON, "-m", "benchmarks.s3_clients", "one", client,
                         *job(client)], env)
                taken[client].append((m.seconds, m.cpu_seconds, m.peak_rss))
                print(f"benchmarks: {name} {client}: {m.seconds:.2f} s, {m.cpu_seconds:.2f} "
                      f"CPU s, {m.peak_rss / 1e6:.0f} MB", file=sys.stderr, flush=True)
        row: dict[str, Any] = {}
        for client, runs in taken.items():
            row[client] = {"seconds": round(statistics.median(r[0] for r in runs), 2),
                           "all_seconds": [round(r[0], 2) for r in runs],
                           "cpu_seconds": round(statistics.median(r[1] for r in runs), 2),
                           "peak_rss_mb": round(max(r[2] for r in runs) / 1e6)}
        row["obstore_speedup"] = round(statistics.median(
            b[0] / o[0] for b, o in zip(taken["aiobotocore"], taken["obstore"], strict=True)), 2)
        results["jobs"][name] = row
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
