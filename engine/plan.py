"""Definition x time window -> the instances to run and how they depend on each other.

Instances are made for activities, data nodes and the preconditions guarding them (resources
such as Ec2Resource run nothing here). An instance's dependencies are the instances of the
objects it waits for (``dependsOn``, ``input``, and for a data node the activity that outputs it)
on the matching interval: the instances of the other object whose intervals fall inside this
one's (a roll-up, as when an hourly activity waits for four 15-minute ones), or, when none do,
the latest one that started at or before this one's start. A dependency whose instance lies
outside the planned window is not waited for (decision: a window is planned on its own; the
runtime's store resolves cross-window dependencies).

A precondition has no schedule of its own: it gets one instance per instance of each object that
lists it, with that object's times, and that object waits for it.

Ondemand pipelines get exactly one instance of each object per activation, with
``@scheduledStartTime`` = ``@scheduledEndTime`` = the activation time (reference section 13.6,
decided), whatever the window.

A plan makes at most ``max_instances`` instances (decision: 10,000 by default, RELIABILITY case
21): a larger window, a backfill from years ago or a schedule of seconds over months, is refused
naming the cap, which the caller raises explicitly (``--max-instances``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from engine.definition.document import DEFAULT_ID, Definition
from engine.definition.graph import dependency_graph
from engine.definition.reader import Ref
from engine.definition.scope import EvalContext, ObjectScope, render
from engine.definition.types import is_secret_field
from engine.errors import ExpressionError, PlanError, ScheduleError
from engine.schedule import (
    ScheduleSpec,
    ScheduleType,
    eligible_at,
    format_timestamp,
    parse_period,
    parse_schedule_type,
    parse_timestamp,
)

MASK = "****"

#: The most instances one plan makes unless the caller raises it (``--max-instances``): a
#: backfill must be explicit and bounded (RELIABILITY case 21).
DEFAULT_MAX_INSTANCES = 10_000


def instance_id(object_id: str, start: datetime, node_id: str | None = None) -> str:
    """``@Obj_2020-01-01T00:00:00``; a precondition adds the node it guards: ``@Pre@Node_...``."""
    middle = f"{object_id}@{node_id}" if node_id else object_id
    return f"@{middle}_{format_timestamp(start)}"


@dataclass
class PlannedInstance:
    id: str
    object_id: str
    type: str
    category: str
    schedule_type: ScheduleType
    scheduled_start: datetime
    scheduled_end: datetime
    eligible_at: datetime
    #: instance ids this one waits for (activities, data nodes, and its precondition instances)
    depends_on: list[str] = field(default_factory=list)
    #: for a precondition instance: the instance it guards
    node: str | None = None

    def runtime(self, pipeline_id: str) -> dict[str, object]:
        return {
            "@scheduledStartTime": self.scheduled_start,
            "@scheduledEndTime": self.scheduled_end,
            "@pipelineId": pipeline_id,
            "@id": self.id,
            "@sphere": "INSTANCE",
            "@componentParent": self.object_id,
        }


@dataclass
class Plan:
    pipeline_id: str
    activation: datetime
    instances: list[PlannedInstance]

    def by_id(self) -> dict[str, PlannedInstance]:
        return {i.id: i for i in self.instances}


def schedule_type_of(definition: Definition, object_id: str) -> ScheduleType:
    value = definition.first(object_id, "scheduleType")
    return parse_schedule_type(value if isinstance(value, str) else None)


def _scalar(definition: Definition, object_id: str, name: str) -> str | None:
    values = definition.field(object_id, name)
    if not values or isinstance(values[0], Ref):
        return None
    text = values[0]
    if "#{" not in text:
        return text
    try:
        result = ObjectScope(EvalContext(definition), object_id).lookup(name)
    except (ExpressionError, KeyError, RecursionError) as exc:
        raise PlanError(f"object {object_id!r}, field {name!r}: {_eval_message(exc)}") from None
    return render(result)


def schedule_spec(definition: Definition, schedule_id: str) -> ScheduleSpec:
    """Parse a Schedule object (parameters evaluated)."""
    try:
        period_text = _scalar(definition, schedule_id, "period")
        if period_text is None:
            raise PlanError(f"schedule {schedule_id!r} has no period")
        start_text = _scalar(definition, schedule_id, "startDateTime")
        end_text = _scalar(definition, schedule_id, "endDateTime")
        occ_text = _scalar(definition, schedule_id, "occurrences")
        occurrences = None
        if occ_text:
            try:
                occurrences = int(occ_text.strip())
            except ValueError:
                raise ScheduleError(f"occurrences {occ_text!r} is not a whole number") from None
        return ScheduleSpec(
            period=parse_period(period_text),
            start=parse_timestamp(start_text) if start_text else None,
            end=parse_timestamp(end_text) if end_text else None,
            occurrences=occurrences,
        )
    except ScheduleError as exc:
        raise PlanError(f"schedule {schedule_id!r}: {exc}") from None


def pipeline_is_ondemand(definition: Definition) -> bool:
    value = definition.schedule_type_text
    return isinstance(value, str) and value.strip().lower() == "ondemand"


def schedule_window(definition: Definition, activation: datetime,
                    now: datetime) -> tuple[datetime, datetime]:
    """The default window of ``run``: from the earliest schedule start to the latest schedule
    end (``endDateTime`` or the last occurrence), or up to ``now`` for open-ended schedules."""
    if pipeline_is_ondemand(definition):
        return activation, activation
    starts, ends = [], []
    for schedule_id in _schedules_used(definition):
        spec = schedule_spec(definition, schedule_id)
        starts.append(spec.first_start(activation))
        last = spec.last_end(activation)
        ends.append(last if last is not None else max(now, spec.first_start(activation)))
    if not starts:
        raise PlanError("no object has a schedule: nothing to plan")
    return min(starts), max(ends)


def _schedules_used(definition: Definition) -> list[str]:
    out: list[str] = []
    for oid in definition.of_category("activity", "datanode"):
        for sid in definition.refs(oid, "schedule"):
            if sid not in out:
                out.append(sid)
    return out


def plan(definition: Definition, start: datetime, end: datetime, *,
         activation: datetime | None = None, pipeline_id: str = "df-local",
         max_instances: int | None = DEFAULT_MAX_INSTANCES) -> Plan:
    """Instances whose ``@scheduledStartTime`` is in ``[start, end)``, sorted by time and id.

    An ondemand pipeline plans its single run at ``activation`` (default ``start``). More than
    ``max_instances`` instances (None: no cap) is a :class:`PlanError` naming the cap, raised
    before they are all made."""
    activation = activation or start
    ondemand = pipeline_is_ondemand(definition)
    objects = [oid for oid in definition.of_category("activity", "datanode")
               if oid != DEFAULT_ID]
    times: dict[str, list[tuple[datetime, datetime]]] = {}
    types: dict[str, ScheduleType] = {}
    budget = _Budget(max_instances, start, end)
    for oid in objects:
        if ondemand:
            times[oid] = [(activation, activation)]
            types[oid] = "ondemand"
            budget.spend(1 + _guards(definition, oid))
            continue
        schedule_ids = definition.refs(oid, "schedule")
        if not schedule_ids:
            raise PlanError(f"object {oid!r} has no schedule (set 'schedule' on it or on "
                            "Default)")
        spec = schedule_spec(definition, schedule_ids[0])
        per_instance = 1 + _guards(definition, oid)
        times[oid] = []
        try:
            for interval in spec.intervals(activation, start, end):
                budget.spend(per_instance)
                times[oid].append(interval)
        except ScheduleError as exc:
            raise PlanError(f"schedule {schedule_ids[0]!r}: {exc}") from None
        try:
            types[oid] = schedule_type_of(definition, oid)
        except ScheduleError as exc:
            raise PlanError(f"object {oid!r}: {exc}") from None

    instances: dict[str, PlannedInstance] = {}
    starts_of: dict[str, list[datetime]] = {}
    for oid in objects:
        starts_of[oid] = [s for s, _ in times[oid]]
        for s, e in times[oid]:
            iid = instance_id(oid, s)
            instances[iid] = PlannedInstance(
                id=iid, object_id=oid, type=definition.type_of(oid) or "",
                category=definition.category(oid) or "", schedule_type=types[oid],
                scheduled_start=s, scheduled_end=e,
                eligible_at=eligible_at(types[oid], s, e))

    graph = dependency_graph(definition)
    for inst in list(instances.values()):
        for dep in graph.get(inst.object_id, []):
            if dep not in times:
                continue
            for s in _matching(times[dep], starts_of[dep], inst.scheduled_start,
                               inst.scheduled_end):
                inst.depends_on.append(instance_id(dep, s))
        for pre in definition.refs(inst.object_id, "precondition"):
            pid = instance_id(pre, inst.scheduled_start, inst.object_id)
            instances[pid] = PlannedInstance(
                id=pid, object_id=pre, type=definition.type_of(pre) or "",
                category="precondition", schedule_type=inst.schedule_type,
                scheduled_start=inst.scheduled_start, scheduled_end=inst.scheduled_end,
                eligible_at=inst.eligible_at, node=inst.id)
            inst.depends_on.append(pid)
    ordered = sorted(instances.values(), key=lambda i: (i.scheduled_start, i.object_id, i.id))
    return Plan(pipeline_id, activation, ordered)


def _guards(definition: Definition, object_id: str) -> int:
    """How many precondition instances each instance of ``object_id`` brings."""
    return len(definition.refs(object_id, "precondition"))


class _Budget:
    """Counts planned instances and stops at the cap."""

    def __init__(self, cap: int | None, start: datetime, end: datetime) -> None:
        self.cap = cap
        self.used = 0
        self.window = f"[{format_timestamp(start)}, {format_timestamp(end)})"

    def spend(self, n: int) -> None:
        self.used += n
        if self.cap is not None and self.used > self.cap:
            raise PlanError(
                f"the window {self.window} holds more than {self.cap:,} instances, the cap "
                "(--max-instances): plan a shorter window or raise the cap explicitly")


def _matching(intervals: list[tuple[datetime, datetime]], starts: list[datetime],
              start: datetime, end: datetime) -> Iterable[datetime]:
    """Starts of the dependency's intervals inside [start, end), else the latest <= start."""
    lo = bisect.bisect_left(starts, start)
    inside = [s for s, e in intervals[lo:] if s < end and e <= end]
    if inside:
        return inside
    hi = bisect.bisect_right(starts, start)
    return [starts[hi - 1]] if hi > 0 else []


# --- resolved fields (plan output, describe-objects) -----------------------------------------

def resolve_fields(definition: Definition, object_id: str, runtime: dict[str, object],
                   node: ObjectScope | None = None, *, mask: bool = True,
                   errors: list[str] | None = None,
                   placeholders: bool = False,
                   read_secret: Callable[[str], str] | None = None) -> dict[str, object]:
    """Every effective field of an object, evaluated in an instance's context.

    References come out as ``{"ref": id}``; multi-valued fields as lists; values that read a
    masked field or parameter as ``****`` (unless ``mask`` is false). Evaluation errors are
    appended to ``errors`` (or raised as :class:`PlanError` when ``errors`` is None). With
    ``placeholders`` (no instance runs: a plan, a waiting instance), an expression that reads a
    runtime field ``runtime`` lacks (``#{@attemptCount}``) stays as written. ``read_secret``
    (an attempt's fields, unmasked): what a masked value as written stands for (a reference
    read), wherever it is read.
    """
    out: dict[str, object] = {}
    for name, values in sorted(definition.effective(object_id).items()):
        if name == "parent":
            continue
        ctx = EvalContext(definition, runtime_placeholders=placeholders,
                          read_secret=read_secret)
        scope = ObjectScope(ctx, object_id, runtime, node)
        read = read_secret if read_secret is not None and is_secret_field(name) else None
        rendered: list[object] = []
        try:
            for value in values:
                if isinstance(value, Ref):
                    rendered.append({"ref": value.id})
                elif "#{" in value:
                    result = ctx.evaluate_field(scope, name, value)
                    if isinstance(result, list):
                        rendered.extend(render(r) for r in result)
                    else:
                        rendered.append(render(result))
                else:
                    rendered.append(read(value) if read else value)
        except (ExpressionError, KeyError, RecursionError) as exc:
            message = f"object {object_id!r}, field {name!r}: {_eval_message(exc)}"
            if errors is None:
                raise PlanError(message) from None
            errors.append(message)
            continue
        if mask and (ctx.secret_used or is_secret_field(name)):
            rendered = [MASK if not isinstance(r, dict) else r for r in rendered]
        out[name] = rendered[0] if len(rendered) == 1 and len(values) == 1 else rendered
    return out


def _eval_message(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "the expression is nested too deeply to evaluate"
    if isinstance(exc, KeyError):
        return f"unknown name {exc.args[0]!r}"
    if isinstance(exc, ExpressionError):
        return exc.message
    return str(exc)
