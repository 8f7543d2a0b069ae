"""Daemon processes with pidfiles: spawn detached, check, signal, and read their logs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The shell forks the server in the background and exits at once, so the server is re-parented
# and reaped by init: it outlives the caller and never lingers as our zombie.
_SPAWN_SCRIPT = '"$@" </dev/null >>"$HEADRACE_SERVICE_LOG" 2>&1 &\necho $!'


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str],
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``argv`` detached in its own session, output appended to ``log``; return its pid."""
    result = subprocess.run(
        ["sh", "-c", _SPAWN_SCRIPT, "sh", *argv],
        env={**env, "HEADRACE_SERVICE_LOG": str(log)},
        cwd=cwd,
        start_new_session=True,
        capture_output=True,
        text=True,
        check=True,
        **as_user(user),
    )
    return int(result.stdout.strip())


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess keyword arguments that drop root to ``user`` (nothing when not root)."""
    if user is None or os.geteuid() != 0:
        return {}
    return {"user": user, "group": user, "extra_groups": []}


def cmdline(pid: int) -> str:
    """The command line of a live, non-zombie process, or '' if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
            return ""
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return ""


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def owned_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line contains ``marker``.

    The marker guards against signalling an unrelated process that reused a stale pid.
    """
    pid = read_pid(pidfile)
    if pid is None or marker not in cmdline(pid):
        return None
    return pid


def alive(pid: int) -> bool:
    return cmdline(pid) != ""


def send(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {log})"
    return "\n".join(text.splitlines()[-lines:])
