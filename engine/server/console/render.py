"""Templates (Jinja2, autoescaping on for every template) and the small helpers they use."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"

#: a one-letter abbreviation per status, shown in a cell so it reads without colour
STATUS_LETTERS = {
    "WAITING_ON_DEPENDENCIES": "W", "WAITING_FOR_RUNNER": "Q", "RUNNING": "R",
    "FINISHED": "F", "FAILED": "X", "CASCADE_FAILED": "C", "TIMEDOUT": "T",
    "CANCELED": "N", "SKIPPED": "S", "PAUSED": "P",
}


def when(value: datetime | None, seconds: bool = True) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%dT%H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def path_part(value: str) -> str:
    """An id as one URL path segment (``@``, ``:`` and ``=`` kept readable)."""
    return quote(value, safe="@:=")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["path_part"] = path_part
    env.globals["STATUS_LETTERS"] = STATUS_LETTERS
    return env


ENV = _environment()


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(ENV.get_template(template).render(**context), status_code=status_code)
