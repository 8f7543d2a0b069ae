"""Running a shell command for an attempt: output to the attempt log, a clean kill on cancel.

The command runs in its own process group, so cancelling the attempt (timeout, TRY_CANCEL,
shutdown) ends the whole tree: SIGTERM, then SIGKILL after a grace period, in shielded cleanup.
``command`` runs through ``bash -c`` with ``scriptArgument`` values as ``$1``, ``$2``...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import anyio

KILL_GRACE_SECONDS = 5.0


def shell_argv(command: str, args: Sequence[str]) -> list[str]:
    shell = shutil.which("bash") or "/bin/sh"
    return [shell, "-c", command, "headrace", *args]


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_process(argv: Sequence[str], *, stdout: Path, stderr: Path, cwd: Path,
                      env: dict[str, str]) -> int:
    """Run to completion; return the exit code. Output is appended to the two files."""
    full_env = {**os.environ, **env}

    def open_outputs() -> tuple[object, object]:
        stdout.parent.mkdir(parents=True, exist_ok=True)
        return stdout.open("ab"), stderr.open("ab")

    out, err = await anyio.to_thread.run_sync(open_outputs)
    try:
        process = await anyio.open_process(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=err, cwd=str(cwd), env=full_env,
                                           start_new_session=True)
        try:
            return await process.wait()
        except BaseException:
            with anyio.CancelScope(shield=True):
                _kill_group(process.pid, signal.SIGTERM)
                with anyio.move_on_after(KILL_GRACE_SECONDS):
                    await process.wait()
                if process.returncode is None:
                    _kill_group(process.pid, signal.SIGKILL)
                    await process.wait()
            raise
    finally:
        out.close()  # type: ignore[attr-defined]
        err.close()  # type: ignore[attr-defined]
