"""Launching one Spark application with PySpark's ``spark-submit``, as a child process.

The application runs in its own process group (:func:`engine.activities.process.run_process`):
the attempt's timeout or a cancel kills the driver and its JVM. Its stdout and stderr go to the
attempt log; the application id is the name of the event log Spark writes (local mode) or
read from what the driver logs (a cluster's resource manager's id). ``TRACEPARENT`` of the caller's
span is in the driver's environment.

What is needed, checked before anything starts, each with a message saying what to install:
the ``spark`` extra (``pip install 'headrace[spark]'``: PySpark brings ``spark-submit``) and a
Java runtime, version 17 or newer (``JAVA_HOME``, else ``java`` on ``PATH``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from engine.activities.base import AttemptContext, NotRunnable
from engine.activities.emr.spark_config import SparkTarget
from engine.activities.process import run_process

#: Spark 4, which the ``spark`` extra installs, runs on Java 17 or newer.
JAVA_NEEDED = 17

#: application ids: YARN's, local mode's, standalone's (also inside an event log's name, which
#: Spark 4 writes as a directory eventlog_v2_<id>)
_APP_ID = re.compile(r"(?<![A-Za-z0-9])(application_\d+_\d+|local-\d{10,}|app-\d{14}-\d{4})"
                     r"(?![0-9])")
_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


@functools.cache
def _java_problem() -> str | None:
    java = _java()
    if java is None:
        return (f"Apache Spark needs a Java runtime, version {JAVA_NEEDED} or newer, and none "
                "was found (no JAVA_HOME, no java on PATH): install one (Debian/Ubuntu: "
                f"apt-get install openjdk-{JAVA_NEEDED}-jre-headless) or set JAVA_HOME")
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Apache Spark needs Java {JAVA_NEEDED} or newer; {java} -version failed: {exc}"
    m = _JAVA_VERSION.search(done.stderr + done.stdout)
    if m is None:
        return None  # an unusual banner: let Spark itself say what is wrong
    major = int(m[2]) if m[1] == "1" and m[2] else int(m[1])  # "1.8.0" is Java 8
    if major < JAVA_NEEDED:
        return (f"Apache Spark needs Java {JAVA_NEEDED} or newer; {java} is Java {major}: "
                f"install Java {JAVA_NEEDED} (apt-get install openjdk-{JAVA_NEEDED}-jre-headless) "
                "and set JAVA_HOME to it")
    return None


def spark_submit_path() -> str:
    """PySpark's ``spark-submit``; :class:`NotRunnable` saying what to install if missing."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise NotRunnable("Spark steps need Apache Spark: pip install 'headrace[spark]' (PySpark, "
                          f"with a Java {JAVA_NEEDED}+ runtime)")
    script = Path(spec.origin).parent / "bin" / "spark-submit"
    if not script.is_file():
        raise NotRunnable(f"PySpark is installed but has no {script}: reinstall "
                          "'headrace[spark]'")
    return str(script)


async def check_runtime() -> str:
    """The spark-submit to run, once PySpark and Java are known to be there."""
    script = spark_submit_path()
    problem = await anyio.to_thread.run_sync(_java_problem)
    if problem is not None:
        raise NotRunnable(problem)
    return script


def _without_placement(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """``args`` without ``--master X`` / ``--deploy-mode X`` (headrace decides where the
    application runs), and what was dropped."""
    out, dropped = [], []
    i = 0
    while i < len(args):
        word = args[i]
        if word in ("--master", "--deploy-mode") and i + 1 < len(args):
            dropped += [word, args[i + 1]]
            i += 2
            continue
        if word.startswith(("--master=", "--deploy-mode=")):
            dropped.append(word)
            i += 1
            continue
        out.append(word)
        i += 1
    return out, dropped


@dataclass
class SubmitResult:
    exit_code: int
    app_id: str | None


async def submit(ctx: AttemptContext, args: Sequence[str], target: SparkTarget, *,
                 env: dict[str, str], what: str) -> SubmitResult:
    """Run ``spark-submit ARGS`` against ``target``; the exit code and the application id."""
    script = await check_runtime()
    rest, dropped = _without_placement(args)
    if dropped:
        await ctx.log.event(f"{what}: {' '.join(dropped)} replaced by --master {target.master}")
    conf = dict(target.conf)
    events = None
    if target.local and "spark.eventLog.enabled" not in conf:
        # the event log's file is named by the application id: how local mode tells it
        events = ctx.work_dir / f"spark-events-{secrets.token_hex(4)}"
        await anyio.to_thread.run_sync(events.mkdir)
        conf.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri()})
    argv = [script, "--master", target.master]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    argv += rest
    child_env = {**ctx.env, **env, "PYSPARK_PYTHON": sys.executable,
                 "PYSPARK_DRIVER_PYTHON": sys.executable}
    if target.local:
        child_env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    mark = await anyio.to_thread.run_sync(_size, ctx.log.stderr)

    async def started(pid: int) -> None:
        await ctx.log.process_started(pid, f"{what}: spark-submit on {target.master} "
                                           f"(process group {pid})")

    code = await run_process(argv, stdout=ctx.log.stdout, stderr=ctx.log.stderr,
                             cwd=ctx.work_dir, env=child_env, started=started)
    app_id = await anyio.to_thread.run_sync(_find_app_id, ctx.log.stderr, mark, events)
    return SubmitResult(code, app_id)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _find_app_id(path: Path, offset: int, events: Path | None) -> str | None:
    """The application id: the name of its event log (local mode), else the first id in what
    the driver logged from ``offset`` on (YARN, standalone and Kubernetes log theirs)."""
    if events is not None:
        logs = sorted(events.iterdir()) if events.is_dir() else []
        shutil.rmtree(events, ignore_errors=True)
        for log in logs:
            m = _APP_ID.search(log.name)
            if m:
                return m[1]
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    m = _APP_ID.search(text)
    return m[1] if m else None
