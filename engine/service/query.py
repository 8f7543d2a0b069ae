"""QueryObjects' selector language: ``{"fieldName", "operator": {"type", "values"}}`` ANDed.

``EQ`` and ``REF_EQ`` match when the field equals any of the values (the AWS CLI's
``list-runs --status a,b`` sends one ``EQ`` with several values); ``LE``, ``GE`` and ``BETWEEN``
(inclusive) compare the four time fields. A selector on a field the object does not have
matches nothing. Status words the AWS CLI sends that are not statuses (``WAITING``,
``PENDING``, ``CANCELLED``) mean what ``list-runs`` documents for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import ScheduleError
from engine.schedule import parse_timestamp
from engine.service.errors import InvalidRequest
from engine.store import Status
from engine.store.queries import Filters
from engine.store.records import to_text

OPERATORS = ("EQ", "REF_EQ", "LE", "GE", "BETWEEN")
SPHERES = ("COMPONENT", "INSTANCE", "ATTEMPT")
#: the fields QueryObjects selects on (AWS's list), and the store column of each
TIME_FIELDS = {"@scheduledStartTime": "scheduled_start", "@scheduledEndTime": "scheduled_end",
               "@actualStartTime": "actual_start", "@actualEndTime": "actual_end"}
EQ_FIELDS = ("name", "@sphere", "parent", "@componentParent", "@instanceParent", "@status",
             *TIME_FIELDS)
#: AWS allows at most ten selectors in one query
MAX_SELECTORS = 10

#: words of ``aws datapipeline list-runs --status`` that are not status names
STATUS_WORDS = {
    "WAITING": [Status.WAITING_ON_DEPENDENCIES.value, Status.WAITING_FOR_RUNNER.value],
    "PENDING": [Status.WAITING_ON_DEPENDENCIES.value, Status.WAITING_FOR_RUNNER.value],
    "CANCELLED": [Status.CANCELED.value],
}


@dataclass(frozen=True)
class Selector:
    field: str
    operator: str
    values: tuple[str, ...]


def parse_selectors(raw: Any) -> list[Selector]:
    """Selectors from the request's ``query.selectors`` (shape already checked), with their
    meaning checked: known operator, a field it applies to, the right number of values."""
    selectors: list[Selector] = []
    items = list(raw or [])
    if len(items) > MAX_SELECTORS:
        raise InvalidRequest(f"a query holds at most {MAX_SELECTORS} selectors, got "
                             f"{len(items)}")
    for index, item in enumerate(items):
        where = f"query.selectors[{index}]"
        name = item.get("fieldName")
        operator = item.get("operator") or {}
        kind = operator.get("type")
        values = tuple(operator.get("values") or ())
        if not name:
            raise InvalidRequest(f"{where}: fieldName is required")
        if kind not in OPERATORS:
            raise InvalidRequest(f"{where}: operator type must be one of "
                                 f"{', '.join(OPERATORS)}, got {kind!r}")
        if kind in ("LE", "GE", "BETWEEN"):
            if name not in TIME_FIELDS:
                raise InvalidRequest(f"{where}: {kind} applies to {', '.join(TIME_FIELDS)}, "
                                     f"not {name!r}")
            wanted = 2 if kind == "BETWEEN" else 1
            if len(values) != wanted:
                raise InvalidRequest(f"{where}: {kind} takes {wanted} value(s), got "
                                     f"{len(values)}")
            for value in values:
                _time(value, where)
        elif not values:
            raise InvalidRequest(f"{where}: {kind} needs at least one value")
        selectors.append(Selector(name, kind, values))
    return selectors


def _time(value: str, where: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ScheduleError as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


def time_bounds(selector: Selector) -> tuple[datetime | None, datetime | None]:
    """The inclusive bounds a time selector sets (EQ: both at the value)."""
    values = [_time(v, selector.field) for v in selector.values]
    if selector.operator == "LE":
        return None, values[0]
    if selector.operator == "GE":
        return values[0], None
    if selector.operator == "BETWEEN":
        return values[0], values[1]
    return values[0], values[0]


def status_values(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(STATUS_WORDS.get(value.upper(), [value.upper()]))
    return out


def store_filters(selectors: Sequence[Selector], sphere: str) -> Filters:
    """The selectors as store filters for the INSTANCE or ATTEMPT sphere."""
    filters = Filters()

    def narrow(column: str, values: Sequence[Any]) -> None:
        if column in filters.equals:
            kept = [v for v in filters.equals[column] if v in values]
            filters.equals[column] = kept
        else:
            filters.equals[column] = list(values)
        if not filters.equals[column]:
            filters.impossible = True

    for sel in selectors:
        if sel.field in TIME_FIELDS:
            if sel.operator == "EQ" and len(sel.values) > 1:
                # one of several exact times: an IN on the column
                narrow(TIME_FIELDS[sel.field], [to_text(_time(v, sel.field))
                                                for v in sel.values])
                continue
            lo, hi = time_bounds(sel)
            old_lo, old_hi = filters.ranges.get(TIME_FIELDS[sel.field], (None, None))
            lo = max(x for x in (lo, old_lo) if x is not None) if lo or old_lo else None
            hi = min(x for x in (hi, old_hi) if x is not None) if hi or old_hi else None
            filters.ranges[TIME_FIELDS[sel.field]] = (lo, hi)
        elif sel.field == "@status":
            narrow("status", status_values(sel.values))
        elif sel.field == "@componentParent":
            narrow("object_id", sel.values)
        elif sel.field == "@instanceParent" and sphere == "ATTEMPT":
            narrow("instance_id", sel.values)
        elif sel.field == "name" and sphere == "INSTANCE":
            narrow("id", sel.values)
        elif sel.field == "@sphere":
            if sphere not in sel.values:
                filters.impossible = True
        else:  # a field objects of this sphere do not have (parent, or name of an attempt)
            filters.impossible = True
    return filters


def component_matches(selectors: Sequence[Selector], object_id: str, name: str,
                      parents: Sequence[str], status: str | None) -> bool:
    """Whether a component passes every selector (components have no time fields)."""
    for sel in selectors:
        if sel.field == "name":
            ok = name in sel.values
        elif sel.field == "@sphere":
            ok = "COMPONENT" in sel.values
        elif sel.field == "parent":
            ok = any(p in sel.values for p in parents)
        elif sel.field == "@status":
            ok = status is not None and status in status_values(sel.values)
        elif sel.field == "@componentParent":
            ok = object_id in sel.values
        else:
            ok = False
        if not ok:
            return False
    return True
