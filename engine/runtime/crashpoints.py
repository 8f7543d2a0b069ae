"""Named crash points: places where a fault test can have the process die with SIGKILL.

The runtime and its activities call :func:`crash_point` at a moment that matters for
recovery (for example after a copy committed and before the engine records success,
RELIABILITY.md case 2). Nothing happens unless the environment variable
``HEADRACE_CRASH_POINT`` names that point, which only tests set::

    HEADRACE_CRASH_POINT=copy-committed headrace run pipeline.json   # dies there, like kill -9
"""

from __future__ import annotations

import os
import signal

ENV = "HEADRACE_CRASH_POINT"


def crash_point(name: str) -> None:
    """Die at once, without any cleanup, when ``HEADRACE_CRASH_POINT`` is ``name``."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
