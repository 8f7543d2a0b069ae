"""Local ends that are not a regular file: ``-`` (stdin or stdout), FIFOs, devices, and
paths reached through symlinks.

A copy writes a regular file atomically: a temp beside it, renamed over it. That is right for a
file and wrong for anything else: renaming over ``/dev/stdout`` (a symlink) or a FIFO replaces
the special file with a regular one, and the reader at the other end gets nothing. So where a
write goes is decided from what the path is when the copy starts:

* ``-``: the process's stdout (as a source: its stdin), written in place;
* a path that is (or leads through symlinks to) a FIFO, a character or block device: written
  in place, as ``cat > path`` would (no temp, no rename, no fsync: none applies);
* a symlink to a regular file, or a dangling one: the file it points to is replaced
  atomically, in that file's folder; the symlink itself stays;
* anything else: the path, atomically.

Nothing but the destination is ever replaced. A file literally named ``-`` is ``./-``.
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio

from connectors.errors import TerminalFault

from ._atomic import CONNECTOR, Files, os_error

#: The path that means the process's own stdin (a source) or stdout (a destination).
STDIO = "-"


@dataclass(frozen=True)
class WriteTarget:
    """Where a write to a local path goes."""

    #: the file to write: the path itself, or the regular file a symlink leads to
    path: Path
    #: write in place (stdout, a FIFO, a device), not through a temp and a rename
    in_place: bool


def write_target(path: str) -> WriteTarget:
    """What writing to ``path`` means (see the module's docstring); blocking (stat)."""
    if path == STDIO:
        return WriteTarget(Path(STDIO), in_place=True)
    p = Path(path)
    try:
        mode = os.stat(p).st_mode  # follows symlinks
    except FileNotFoundError:
        # nothing there, or a dangling symlink: create the file it names
        return WriteTarget(Path(os.path.realpath(p)) if p.is_symlink() else p, in_place=False)
    except OSError as exc:
        raise os_error(exc, path, "open") from exc
    if stat.S_ISREG(mode):
        return WriteTarget(Path(os.path.realpath(p)) if p.is_symlink() else p, in_place=False)
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return WriteTarget(p, in_place=True)
    raise TerminalFault(f"{path}: not a file, a FIFO or a device (a socket or a folder "
                        "cannot be written as one file)", connector=CONNECTOR, operation="open")


def is_readable_special(path: Path) -> bool:
    """``-``, or a FIFO or a device (read as one stream, never by ranges); blocking."""
    if str(path) == STDIO:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def open_for_reading(path: Path) -> BinaryIO:
    """A file, a FIFO or a device; ``-`` is a duplicate of stdin (closing it leaves stdin
    open for the process)."""
    if str(path) == STDIO:
        return os.fdopen(os.dup(0), "rb")
    return open(path, "rb")


class InPlaceFile:
    """Writes straight to stdout, a FIFO or a device; the counterpart of
    :class:`~connectors.local._atomic.AtomicFile` for what cannot be renamed over."""

    def __init__(self, target: WriteTarget, files: Files | None = None) -> None:
        self.path = target.path
        self.written = 0
        self._files = files or Files()
        self._fh: BinaryIO | None = None

    def _open(self) -> None:
        # opening a FIFO blocks until a reader opens it: in a worker thread, as every call
        if str(self.path) == STDIO:
            self._fh = os.fdopen(os.dup(1), "wb")
        else:
            self._fh = open(self.path, "wb")  # noqa: SIM115  (closed in commit or abort)

    async def open(self) -> None:
        try:
            await self._files.run(self._open)
        except OSError as exc:
            raise os_error(exc, self._name, "open") from exc

    @property
    def _name(self) -> str:
        return "stdout" if str(self.path) == STDIO else str(self.path)

    async def write(self, data: bytes) -> None:
        if not data:
            return
        assert self._fh is not None
        try:
            await self._files.run(self._fh.write, data)
        except OSError as exc:
            raise os_error(exc, self._name, "write", self.written) from exc
        self.written += len(data)

    def _close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                fh.flush()
            finally:
                fh.close()

    async def commit(self) -> None:
        try:
            await self._files.run(self._close)
        except OSError as exc:
            raise os_error(exc, self._name, "write", self.written) from exc

    async def abort(self) -> None:
        """Close what was opened; what the reader already got stays with it (a stream has
        no rename to undo)."""
        with anyio.CancelScope(shield=True), suppress(OSError):
            await self._files.run(self._close)
