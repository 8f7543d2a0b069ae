"""The project files a ``headrace copy postgresql://...?table=t s3://bucket/prefix/`` runs through.

``python -m benchmarks.copy_path`` (with ``HEADRACE_TEST_PG_DSN`` and ``AWS_ENDPOINT_URL_S3`` set,
as ``python -m tests.services up`` prints them) makes a small table and a bucket, then runs the
``copy`` command in this process under :func:`sys.setprofile` and prints, as JSON:

* ``files``: every file of ``engine/`` and ``connectors/`` that had a function called during the
  copy, in the order first called (code run while a module is imported is left out: that is
  loading, not the copy);
* ``back_and_forths``: calls from one file into another file that is already further down the
  call stack (control going back to where it came from: ``copy.py`` -> ``s3`` -> ``copy.py``),
  each as ``caller -> callee (function)``, counted once per distinct pair;
* ``main_line``: the files on the call stack where the data crosses into a driver (asyncpg's
  ``COPY ... TO STDOUT``, every S3 request through aiobotocore), outermost first: the path a
  reader follows from the command to the bytes, leaving aside the helpers called on the way.

It measures the shape of the code, not its speed (a profile hook makes everything slow).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "connectors")
#: Driver functions where the data leaves or enters the process: (path fragment, function).
CROSSINGS = (("asyncpg", "copy_from_table"), ("asyncpg", "copy_from_query"),
             ("aiobotocore", "_make_api_call"))


def _project_file(frame: FrameType) -> str | None:
    path = Path(frame.f_code.co_filename)
    try:
        rel = path.resolve().relative_to(ROOT)
    except ValueError:
        return None
    return rel.as_posix() if rel.parts and rel.parts[0] in PACKAGES else None


class PathTrace:
    """A profile hook recording project-file calls (outside module imports)."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self.back: dict[tuple[str, str, str], int] = {}
        self.main_line: list[str] = []

    def _stack_files(self, frame: FrameType | None) -> tuple[list[str], bool]:
        files: list[str] = []
        importing = False
        while frame is not None:
            if frame.f_code.co_filename.startswith("<frozen importlib"):
                importing = True
            name = _project_file(frame)
            if name is not None and (not files or files[-1] != name):
                files.append(name)
            frame = frame.f_back
        return files, importing

    def _crossing(self, frame: FrameType) -> None:
        code = frame.f_code
        if not any(part in code.co_filename and code.co_name == name
                   for part, name in CROSSINGS):
            return
        stack, importing = self._stack_files(frame.f_back)
        if importing:
            return
        for name in reversed(stack):
            if name not in self.main_line:
                self.main_line.append(name)

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee = _project_file(frame)
        if callee is None:
            self._crossing(frame)
            return
        below, importing = self._stack_files(frame.f_back)
        if importing:
            return
        if callee not in self.files:
            self.files.append(callee)
        if below and below[0] != callee and callee in below[1:]:
            key = (below[0], callee, frame.f_code.co_name)
            self.back[key] = self.back.get(key, 0) + 1


def _setup(dsn: str, endpoint: str) -> tuple[str, str]:
    import anyio
    import asyncpg
    import boto3

    table = f"copy_path_{uuid.uuid4().hex[:8]}"

    async def make() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, name text)")
            await conn.executemany(f"INSERT INTO {table} VALUES ($1, $2)",
                                   [(i, f"name {i}") for i in range(1000)])
        finally:
            await conn.close()

    anyio.run(make)
    bucket = f"copy-path-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return f"{dsn.rstrip('/')}?table={table}" if "?" not in dsn else dsn, bucket


def main() -> int:
    dsn = os.environ["HEADRACE_TEST_PG_DSN"]
    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    source, bucket = _setup(dsn, endpoint)
    # Import what the command imports first, so the trace sees the copy and not the loading.
    import engine.cli.copy_cmd  # noqa: F401
    from engine.cli import cli

    trace = PathTrace()
    sys.setprofile(trace)
    try:
        cli.main(args=["copy", source, f"s3://{bucket}/prefix/", "--output", "json"],
                 prog_name="headrace", standalone_mode=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        sys.setprofile(None)
    back = [f"{a} -> {b} ({fn})" for (a, b, fn) in trace.back]
    print(json.dumps({"main_line": trace.main_line, "main_line_count": len(trace.main_line),
                      "files": trace.files, "file_count": len(trace.files),
                      "back_and_forths": back, "back_and_forth_count": len(back)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
