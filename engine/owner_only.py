"""Files and folders only their owner can read: the SQLite store and the attempt logs.

A store holds definitions (``*password`` values among them, unless they are encrypted or come
from the environment) and logs hold what commands printed, so headrace creates both owner-only
whatever the umask: folders ``0700``, files ``0600``. What it finds already there with looser
modes it tightens when the file or folder is its own (the store file and its WAL and shared-
memory files, the folders under a log root): it owns them, nobody else has a reason to read
them. A folder it did not create for itself (the store's folder, a ``pipelineLogUri`` root
such as ``/var/log/headrace``) is left as it is: what headrace puts inside is owner-only, so a
shared parent exposes no content, and changing it could break whatever else uses it.

Everything here is blocking file work: callers run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("headrace.files")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: group and others: any of these bits makes a path readable or writable beyond its owner
SHARED_BITS = 0o077


def make_private_dirs(path: Path, *, below: Path | None = None) -> None:
    """Create ``path`` and its missing parents owner-only (``0700``). The folders strictly
    between ``below`` and ``path`` (``path`` included) are headrace's own: ones that already
    exist with group or other bits are tightened. ``below`` itself and anything above it are
    only created when missing, never changed."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        # made meanwhile by another attempt of the same pipeline: as good
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR)
    if below is None:
        return
    try:
        inside = path.relative_to(below)
    except ValueError:
        return
    current = below
    for part in inside.parts:
        current = current / part
        if current not in missing:
            tighten(current)


def tighten(path: Path) -> int | None:
    """Remove group and other bits from ``path`` when it is this user's and has any; returns
    the mode it had (None when it was already owner-only, is someone else's, or is gone)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return None
    mode = stat.S_IMODE(info.st_mode)
    if not mode & SHARED_BITS:
        return None
    os.chmod(path, mode & ~SHARED_BITS)
    return mode


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode ``0600`` unless it exists; True when it was made.

    Made before SQLite opens it, so the database never exists with the umask's mode (SQLite
    gives its WAL and shared-memory files the mode of the database file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def secure_store_file(path: Path) -> None:
    """The SQLite store file and its companions owner-only: made so when missing, tightened
    (with one warning naming the file and the mode it had) when found looser."""
    make_private_dirs(path.parent)
    create_private_file(path)
    for member in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
                   path.with_name(path.name + "-journal")):
        old = tighten(member)
        if old is not None:
            log.warning("the store file %s was readable or writable by others (mode %04o); "
                        "made it owner-only (%04o)", member, old, old & ~SHARED_BITS)
