"""Local files: ``file:///abs/path``, ``file://relative`` or a plain path; a file or a directory.

Reading a directory reads every regular file below it, in path order, as one stream (names
starting with ``.`` are skipped; with ``header`` set, the first line of every file after the
first is dropped; a file that does not end with the record separator gets one).

Writing is atomic per file: bytes go to ``.<name>.headrace-tmp-<random>`` in the same directory,
which is fsynced and renamed over the final name only when the input ended normally; on failure
or cancellation the temp is removed (shielded), and temps left by a killed process are removed
by the next write to the same name. ENOSPC raises :class:`DiskFull` with the path and the bytes
written. A destination ending in ``/`` (or an existing directory) receives parts
``part-00000.<ext>``, ``part-00001.<ext>``...: a new part starts once the current one holds
``part_bytes`` (default 128 MiB), always at a record boundary. Parts are committed together at
the end, and older ``part-NNNNN.*`` files the write did not produce are removed then, so a rerun
with less data leaves no stale part behind. ``.gz`` names (or ``compression="gzip"``) are
gzip-compressed on write and decompressed on read.

Blocking file calls run in worker threads through a per-connector CapacityLimiter.
"""

from ._atomic import TEMP_MARK, AtomicFile, atomic_file, write_file_atomic
from ._sink import LocalSink, sink_from_url
from ._source import LocalSource, source_from_url
from ._special import STDIO, WriteTarget, write_target
from ._url import path_from_url

__all__ = [
    "STDIO",
    "TEMP_MARK",
    "AtomicFile",
    "LocalSink",
    "LocalSource",
    "WriteTarget",
    "atomic_file",
    "path_from_url",
    "sink_from_url",
    "source_from_url",
    "write_file_atomic",
    "write_target",
]
