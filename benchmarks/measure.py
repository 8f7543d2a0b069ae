"""Run one command and measure it from outside: wall time, CPU time, peak RSS.

Peak RSS and CPU come from ``os.wait4`` on the child: the kernel's accounting of that process
and of the descendants it reaped. For ``headrace copy`` that is the headrace process itself
(one process, its threads included); for a ``bash -c 'a | b'`` pipeline of native tools it is
the largest process of the pipeline and the CPU of all of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass


class CommandFailed(RuntimeError):
    """A measured command exited non-zero or ran past its time limit."""


@dataclass
class Measurement:
    seconds: float
    cpu_seconds: float
    peak_rss: int  # bytes
    stdout: str

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss / 1e6


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run(argv: list[str], env: dict[str, str], *, timeout: float = 1800.0,
        cwd: str | None = None) -> Measurement:
    """Run ``argv`` to completion; raise CommandFailed (with its stderr tail) if it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-8:] or stdout.strip().splitlines()[-8:])
        why = "killed after the time limit" if seconds >= timeout else f"exit {proc.returncode}"
        raise CommandFailed(f"{why}: {' '.join(argv)[:400]}\n{tail}")
    return Measurement(seconds=seconds, cpu_seconds=usage.ru_utime + usage.ru_stime,
                       peak_rss=usage.ru_maxrss * 1024, stdout=stdout)


def shell(script: str, env: dict[str, str], *, timeout: float = 1800.0) -> Measurement:
    """A native-tool pipeline, run by ``bash -o pipefail -c``."""
    return run(["bash", "-o", "pipefail", "-c", script], env, timeout=timeout)
