"""headrace's own log lines on stderr (``<prefix>: warning: ...``), for commands that run and
exit and for the engine. Apart from :mod:`engine.cli.status_lines` (which needs the store)
so that ``headrace copy`` can set them up without importing the engine's store.
"""

from __future__ import annotations

import logging
import time

QUIET, NORMAL, VERBOSE = -1, 0, 1


def configure_engine_log(verbosity: int) -> None:
    """The engine's own log (pipelines started, requests carried out, refusals, calls that
    could not reach a service) on stderr, with the time: warnings by default, INFO with
    ``-v``, errors only with ``-q``."""
    formatter = logging.Formatter("%(asctime)s headrace: %(levelname)s: %(message)s",
                                  "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime  # UTC, as every time headrace prints
    _log_to_stderr(formatter, {QUIET: logging.ERROR, NORMAL: logging.WARNING,
                               VERBOSE: logging.INFO}[verbosity])


def configure_command_log(prefix: str, verbosity: int = NORMAL) -> None:
    """headrace's log lines for a command that runs and exits (``run``, ``copy``): ``<prefix>:
    warning: ...`` on stderr (``-q``: errors only)."""
    formatter = logging.Formatter(f"{prefix}: %(levelname)s: %(message)s")
    _log_to_stderr(formatter, logging.ERROR if verbosity <= QUIET else logging.WARNING)


class _LowerLevel(logging.Formatter):
    """``warning:``, not ``WARNING:``, as every other line headrace prints."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__,
                                        "levelname": record.levelname.lower()})
        return self.inner.format(record)


def _log_to_stderr(formatter: logging.Formatter, level: int) -> None:
    logger = logging.getLogger("headrace")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(_LowerLevel(formatter))
        logger.addHandler(handler)
    logger.setLevel(level)
