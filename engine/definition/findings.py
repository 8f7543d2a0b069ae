"""Collecting validation findings: the report they go to, and the wording helpers every check
shares (a "did you mean", or the list of what would be valid; values of secret fields hidden)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from engine.definition.document import Definition
from engine.errors import Report


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or the empty string."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def suggest_or_list(name: str, candidates: Iterable[str], what: str, limit: int = 8) -> str:
    """A "did you mean" when a candidate is close, else the valid names (``what``: what they
    are), so an error always says what would be valid."""
    names = sorted(set(candidates))
    hint = suggest(name, names)
    if hint:
        return hint
    if not names:
        return f" (there are no {what})"
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f" ({what}: {shown}{more})"


def shown(name: str, value: str) -> str:
    """A value quoted in a message; the value of a ``*`` field never is."""
    return "****" if name.startswith("*") else repr(value)


@dataclass
class Findings:
    """Errors and warnings of one validation, each reported once, with the object's file and
    line. ``strict`` (plan, run): a template's missing values are errors; ``strict_fields``
    (``--strict``): so are fields a type does not have."""

    definition: Definition
    report: Report
    strict: bool
    seen: set[tuple[str | None, str | None, str]]
    now: datetime
    strict_fields: bool = False
    #: objects whose parent chain is known to end (not to loop)
    chains_that_end: set[str] = field(default_factory=set)

    def _line(self, object_id: str | None) -> int | None:
        obj = self.definition.objects.get(object_id) if object_id is not None else None
        return obj.line if obj is not None else None

    def error(self, message: str, object_id: str | None, field: str | None) -> None:
        key = (object_id, field, message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.report.error(message, object_id, field, line=self._line(object_id),
                          file=self.definition.raw.source)

    def warn(self, message: str, object_id: str | None, field: str | None) -> None:
        key = (object_id, field, "w:" + message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.report.warn(message, object_id, field, line=self._line(object_id),
                         file=self.definition.raw.source)

    def unknown_field(self, message: str, object_id: str | None, field: str | None) -> None:
        """A field the type does not have: the service ran such files, so a warning, unless
        ``--strict``."""
        if self.strict_fields:
            self.error(f"{message} (--strict)", object_id, field)
        else:
            self.warn(f"{message}; it is ignored", object_id, field)

    def template_problem(self, message: str, object_id: str | None, field: str | None) -> None:
        """A value that is missing only because the template's values are not given yet."""
        if self.strict:
            self.error(message, object_id, field)
        else:
            self.warn(message, object_id, field)
