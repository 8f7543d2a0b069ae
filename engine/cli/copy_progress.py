"""The progress of ``headrace copy``: its figures (done, total, percent, ETA, per partition),
the live line that shows them and the JSON lines that carry the same figures.

A total comes from the source (:class:`connectors.base.KnowsTotal`): bytes for files and S3
objects (exact: the percent is bytes read of the size), rows for tables (the planner's or
the server's estimate, shown with ``~`` and ``"estimated": true``). The MB figure is what the
sink wrote (handed to its file, server or a finished upload part), not what was read ahead;
on a sink that takes rows (DynamoDB) it is the bytes read.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal, TextIO

import anyio

from connectors.base import Progress, Total

ProgressMode = Literal["auto", "text", "json", "none"]
PROGRESS_MODES = ["auto", "text", "json", "none"]

#: Seconds between two live lines on a terminal, and between two lines written to a pipe.
TTY_REFRESH = 0.25
PIPE_REFRESH = 1.0


def _total_json(total: Total | None) -> dict[str, Any] | None:
    if total is None:
        return None
    return {"rows": total.rows, "bytes": total.bytes, "estimated": total.estimated}


def _eta(fraction: float | None, elapsed: float) -> float | None:
    if fraction is None or fraction <= 0 or elapsed <= 0:
        return None
    return round(elapsed * (1 - fraction) / fraction, 1)


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100 * fraction, 1)


def figures(progress: Progress, elapsed: float, *, done: bool = False) -> dict[str, Any]:
    """What the live line shows, as JSON-ready values. ``done``: the copy ended (100%)."""
    fraction = 1.0 if done and progress.total is not None else progress.fraction()
    out: dict[str, Any] = {
        "rows": progress.rows,
        "bytesRead": progress.read,
        "bytesWritten": progress.written,
        "seconds": round(elapsed, 3),
        "total": _total_json(progress.total),
        "percent": _percent(fraction),
        "etaSeconds": 0.0 if done and fraction is not None else _eta(fraction, elapsed),
    }
    if progress.parts:
        out["partitions"] = [
            {"partition": i, "rows": part.rows, "bytesRead": part.read,
             "total": _total_json(part.total),
             "percent": _percent(1.0 if done and part.total is not None else part.fraction())}
            for i, part in enumerate(progress.parts)]
    return out


def _count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{int(n)}"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}:{whole % 60:02d}"
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def line(fig: dict[str, Any]) -> str:
    """The live line, e.g. ``42% 420.0k/~1.0M rows, 68.3 MB written, 95.1k rows/s, 15.2 MB/s,
    0:04 left`` (``~``: an estimated total; a size total reads ``42% 70.0/166.0 MB read,
    ...``), then ``[p0 40% p1 45% ...]`` for partitions."""
    elapsed = max(fig["seconds"], 1e-9)
    total = fig["total"] or {}
    head = f"{fig['percent']:.0f}% " if fig["percent"] is not None else ""
    items = []
    if total.get("rows") is not None:
        mark = "~" if total.get("estimated") else ""
        items.append(f"{_count(fig['rows'])}/{mark}{_count(total['rows'])} rows")
    else:
        if total.get("bytes") is not None:
            items.append(f"{fig['bytesRead'] / 1e6:,.1f}/{total['bytes'] / 1e6:,.1f} MB read")
        items.append(f"{_count(fig['rows'])} rows")
    moved = fig["bytesWritten"] or fig["bytesRead"]
    items.append(f"{moved / 1e6:,.1f} MB {'written' if fig['bytesWritten'] else 'read'}")
    items.append(f"{_count(fig['rows'] / elapsed)} rows/s")
    items.append(f"{moved / 1e6 / elapsed:,.1f} MB/s")
    items.append(f"{_duration(fig['etaSeconds'])} left" if fig["etaSeconds"] is not None
                 else f"{_duration(elapsed)} elapsed")
    text = head + ", ".join(items)
    if fig.get("partitions"):
        text += " [" + " ".join(
            f"p{p['partition']} " + (f"{p['percent']:.0f}%" if p["percent"] is not None
                                     else _count(p["rows"]))
            for p in fig["partitions"]) + "]"
    return text


def resolve_mode(mode: ProgressMode, output: str, stream: TextIO) -> ProgressMode:
    """``auto``: on a terminal, the live line (``--output text``) or JSON lines (``--output
    json``); elsewhere none, so a pipe or a log gets only the summary."""
    if mode != "auto":
        return mode
    if not stream.isatty():
        return "none"
    return "json" if output == "json" else "text"


class ProgressDisplay:
    """Shows ``progress`` on stderr until :meth:`finish`: a line rewritten in place on a
    terminal, one line per refresh elsewhere (``--progress text`` to a pipe), or one JSON
    object per refresh (``{"event": "progress", ...}``)."""

    def __init__(self, progress: Progress, mode: ProgressMode,
                 stream: TextIO | None = None) -> None:
        self.progress = progress
        self.mode = mode
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started

    def show(self, *, done: bool = False) -> None:
        fig = figures(self.progress, self._elapsed(), done=done)
        if self.mode == "json":
            self.stream.write(json.dumps({"event": "progress", "done": done, **fig}) + "\n")
        elif self.tty:
            self.stream.write("\r\x1b[K" + ("" if done else line(fig)))
        else:
            self.stream.write(line(fig) + "\n")
        self.stream.flush()

    async def run(self) -> None:
        """Refresh until cancelled."""
        interval = TTY_REFRESH if self.tty and self.mode == "text" else PIPE_REFRESH
        while True:
            await anyio.sleep(interval)
            self.show()

    def finish(self) -> None:
        """The last figures (100% when a total was known); on a terminal the line is
        cleared, as the summary follows."""
        self.show(done=True)
