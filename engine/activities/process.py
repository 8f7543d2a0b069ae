"""Running a shell command for an attempt: output to the attempt log, a clean kill on cancel.

The command runs in its own process group, so cancelling the attempt (timeout, TRY_CANCEL,
shutdown) ends the whole tree: SIGTERM, then SIGKILL after a grace period, in shielded cleanup.
``command`` runs through ``bash -c`` with ``scriptArgument`` values as ``$1``, ``$2``...

A process killed with SIGKILL cannot clean up, and its commands (in their own sessions) live
on. So each attempt records ``host pgid`` in a pid file and marks its processes' environment
with ``HEADRACE_ATTEMPT_ID``; the engine that recovers the attempt kills the group it finds
still carrying that mark (:func:`kill_orphaned_group`), so a retried attempt never runs
beside the old one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio

KILL_GRACE_SECONDS = 5.0


@functools.cache
def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


#: A command made only of these characters has no quoting, expansion, redirection or operator:
#: bash would run its words as they are, so headrace runs them without starting bash (a
#: process and about a millisecond of CPU saved per attempt).
_PLAIN_COMMAND = re.compile(r"^[A-Za-z0-9_./:=@%+,-]+( +[A-Za-z0-9_./:=@%+,-]+)*$")
#: bash builtins and keywords (``compgen -bk``) behave differently from a program of the same
#: name (``time``, ``echo``, ``printf``, ``kill``...) or exist only in bash (``cd``, ``exit``):
#: those always go through bash. ``true`` and ``false`` are the same either way.
_BASH_WORDS = frozenset((
    ".", ":", "[", "alias", "bg", "bind", "break", "builtin", "caller", "cd", "command",
    "compgen", "complete", "compopt", "continue", "declare", "dirs", "disown", "echo", "enable",
    "eval", "exec", "exit", "export", "fc", "fg", "getopts", "hash", "help", "history", "jobs",
    "kill", "let", "local", "logout", "mapfile", "popd", "printf", "pushd", "pwd", "read",
    "readarray", "readonly", "return", "set", "shift", "shopt", "source", "suspend", "test",
    "times", "trap", "type", "typeset", "ulimit", "umask", "unalias", "unset", "wait", "if",
    "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until", "do",
    "done", "in", "function", "time", "coproc",
))


def shell_argv(command: str, args: Sequence[str]) -> list[str]:
    """How to run ``command`` with ``args`` as ``$1``...: through bash, unless the command is
    plain words naming a program on PATH (``args`` are then unused, as they would be in bash:
    a plain command has no ``$1`` to read them)."""
    stripped = command.strip()
    if _PLAIN_COMMAND.match(stripped):
        words = stripped.split()
        plain = "=" not in words[0] and words[0] not in _BASH_WORDS
        program = shutil.which(words[0]) if plain else None
        if program is not None:
            return [program, *words[1:]]
    return [_shell(), "-c", command, "headrace", *args]


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


_SPAWN = anyio.CapacityLimiter(8)


async def _exited(process: subprocess.Popen[bytes]) -> int:
    """Wait for the process to exit without a thread per child: a pidfd becomes readable
    when the process ends (Linux); elsewhere a worker thread waits (cancellable)."""
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        return await anyio.to_thread.run_sync(process.wait, abandon_on_cancel=True)
    try:
        while (code := process.poll()) is None:
            await anyio.wait_readable(fd)
        return code
    finally:
        os.close(fd)


async def run_process(argv: Sequence[str], *, stdout: Path, stderr: Path, cwd: Path,
                      env: dict[str, str],
                      started: Callable[[int], Awaitable[None]] | None = None) -> int:
    """Run to completion; return the exit code. Output is appended to the two files;
    ``started(pid)`` is awaited once the process (its own group leader) runs."""
    full_env = {**os.environ, **env}

    def spawn() -> subprocess.Popen[bytes]:
        stdout.parent.mkdir(parents=True, exist_ok=True)
        with stdout.open("ab") as out, stderr.open("ab") as err:  # the child keeps copies
            return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, cwd=str(cwd), env=full_env,
                                    start_new_session=True)

    process = await anyio.to_thread.run_sync(spawn, limiter=_SPAWN)
    try:
        if started is not None:
            await started(process.pid)
        return await _exited(process)
    except BaseException:
        with anyio.CancelScope(shield=True):
            _kill_group(process.pid, signal.SIGTERM)
            with anyio.move_on_after(KILL_GRACE_SECONDS):
                await _exited(process)
            if process.returncode is None:
                _kill_group(process.pid, signal.SIGKILL)
                await _exited(process)
        raise


def kill_orphaned_group(pid_file: Path, marker: str) -> bool:
    """Kill the process group named in ``pid_file`` if it runs on this host and one of its
    processes still carries ``marker`` (``NAME=value``) in its environment, so a recycled
    process id is never hit. Returns whether a group was killed. Blocking (reads /proc)."""
    try:
        host, pgid_text = pid_file.read_text().split()
        pgid = int(pgid_text)
    except (OSError, ValueError):
        return False
    if host != socket.gethostname():
        return False
    needle = marker.encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != pgid:  # field 5 of /proc/pid/stat: the process group
                continue
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                _kill_group(pgid, signal.SIGKILL)
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False
