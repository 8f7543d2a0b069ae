"""The operations: each turns a checked request into one service-layer call and the answer
into the response shape of the service model. What a verb means is decided in
``engine.service``; nothing here touches the store.

:data:`OPERATIONS` maps the operation name to its handler. The Task Runner verbs
(PollForTask, ReportTaskProgress, SetTaskStatus, ReportTaskRunnerHeartbeat) go to
:class:`engine.service.tasks.TaskRunners`, on the same leasing as ``headrace worker``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio

from engine.errors import ParseError, Problem, Report, ScheduleError
from engine.schedule import parse_timestamp
from engine.server.protocol import invalid_request
from engine.server.wire import definition_text, described, object_fields, to_wire
from engine.service import (
    DefinitionCheck,
    Objects,
    PipelineService,
    parameter_value_args,
    parse_selectors,
)
from engine.service.pipelines import problems_by_object
from engine.service.tasks import TaskRunners
from engine.store import Action

T = TypeVar("T")

#: ListPipelines answers this many pipelines a page
LIST_PAGE = 100
#: DescribeObjects answers this many objects a page (the AWS CLI asks for 100 at a time)
DESCRIBE_PAGE = 100
#: AWS's limit on DescribePipelines
MAX_DESCRIBE_PIPELINES = 25


@dataclass
class Context:
    """What a handler may use: the verbs, and who is asking."""

    pipelines: PipelineService
    objects: Objects
    principal: str | None
    #: definition checks are CPU work: at most this many at once, off the event loop
    checks: anyio.CapacityLimiter
    tasks: TaskRunners


Handler = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any]]]
OPERATIONS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        OPERATIONS[name] = func
        return func
    return register


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["key"]: t["value"] for t in items or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _page(items: list[T], marker: str | None, size: int) -> tuple[list[T], str | None]:
    """One page of ``items`` from the offset ``marker`` names; the next page's marker, or
    None on the last page."""
    if marker and not marker.isdigit():
        raise invalid_request("marker is not one this service handed out")
    start = int(marker or 0)
    more = start + size < len(items)
    return items[start:start + size], str(start + size) if more else None


def _paged(key: str, items: list[Any], marker: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {key: items, "hasMoreResults": marker is not None}
    if marker is not None:
        out["marker"] = marker
    return out


def _timestamp(value: Any) -> datetime:
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC).replace(microsecond=0)
        except (OverflowError, OSError, ValueError):
            raise invalid_request("startTimestamp is out of range") from None
    try:
        return parse_timestamp(str(value).replace("Z", "").split("+")[0][:19])
    except ScheduleError as exc:
        raise invalid_request(f"startTimestamp: {exc}") from None


# --- pipelines -----------------------------------------------------------------------------

@operation("CreatePipeline")
async def create_pipeline(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    record = await ctx.pipelines.create(p["name"], p["uniqueId"], p.get("description") or "",
                                        tags=_tags(p.get("tags")))
    return {"pipelineId": record.id}


@operation("DeletePipeline")
async def delete_pipeline(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.pipelines.delete(p["pipelineId"])
    return {}


@operation("ListPipelines")
async def list_pipelines(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    page, marker = _page(await ctx.pipelines.list_pipelines(), p.get("marker"), LIST_PAGE)
    return _paged("pipelineIdList", [{"id": r.id, "name": r.name} for r in page], marker)


@operation("DescribePipelines")
async def describe_pipelines(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ids = p["pipelineIds"]
    if len(ids) > MAX_DESCRIBE_PIPELINES:
        raise invalid_request(f"DescribePipelines takes at most {MAX_DESCRIBE_PIPELINES} "
                              f"pipeline ids, got {len(ids)}")
    out = []
    for summary in await ctx.pipelines.describe(ids):
        r = summary.record
        fields = [{"key": "@id", "stringValue": r.id}, {"key": "name", "stringValue": r.name},
                  {"key": "uniqueId", "stringValue": r.unique_id},
                  {"key": "@sphere", "stringValue": "PIPELINE"},
                  {"key": "@pipelineState", "stringValue": r.state.value}]
        for key, value in (("@creationTime", r.created_at),
                           ("@lastActivationTime", r.activated_at),
                           ("@firstActivationTime", r.first_activated_at)):
            if value is not None:
                fields.append({"key": key, "stringValue": value.strftime("%Y-%m-%dT%H:%M:%S")})
        for key, number in (("@version", r.latest_version), ("@activeVersion", r.active_version)):
            if number is not None:
                fields.append({"key": key, "stringValue": str(number)})
        if summary.counts:
            failing = sum(summary.counts.get(s, 0) for s in ("FAILED", "CASCADE_FAILED",
                                                             "TIMEDOUT"))
            fields.append({"key": "@healthStatus",
                           "stringValue": "ERROR" if failing else "HEALTHY"})
        item: dict[str, Any] = {"pipelineId": r.id, "name": r.name, "fields": fields,
                                "tags": _tag_list(r.tags)}
        if r.description:
            item["description"] = r.description
        out.append(item)
    return {"pipelineDescriptionList": out}


@operation("AddTags")
async def add_tags(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.pipelines.add_tags(p["pipelineId"], _tags(p["tags"]))
    return {}


@operation("RemoveTags")
async def remove_tags(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.pipelines.remove_tags(p["pipelineId"], list(p["tagKeys"]))
    return {}


# --- definitions ---------------------------------------------------------------------------

async def _check(ctx: Context, p: dict[str, Any]) -> DefinitionCheck:
    await ctx.pipelines.pipeline(p["pipelineId"])
    text = definition_text(p)
    source = f"<definition of {p['pipelineId']}>"
    try:
        return await anyio.to_thread.run_sync(
            lambda: PipelineService.check_definition(source, text=text), limiter=ctx.checks)
    except ParseError as exc:
        return DefinitionCheck(None, Report(list(exc.problems), list(exc.warnings)))


def _findings(check: DefinitionCheck, pipeline_id: str) -> dict[str, Any]:
    def grouped(problems: list[Problem], key: str) -> list[dict[str, Any]]:
        return [{"id": oid, key: messages}
                for oid, messages in problems_by_object(problems, pipeline_id).items()]

    return {"errored": check.errored,
            "validationErrors": grouped(check.report.errors, "errors"),
            "validationWarnings": grouped(check.report.warnings, "warnings")}


@operation("PutPipelineDefinition")
async def put_pipeline_definition(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    check = await _check(ctx, p)
    if not check.errored:
        await ctx.pipelines.put_definition(p["pipelineId"], check)
    return _findings(check, p["pipelineId"])


@operation("ValidatePipelineDefinition")
async def validate_pipeline_definition(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _findings(await _check(ctx, p), p["pipelineId"])


@operation("GetPipelineDefinition")
async def get_pipeline_definition(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    body = await ctx.pipelines.get_definition(p["pipelineId"], p.get("version") or "latest")
    return to_wire(body)


# --- activation ----------------------------------------------------------------------------

@operation("ActivatePipeline")
async def activate_pipeline(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    start = _timestamp(p["startTimestamp"]) if p.get("startTimestamp") is not None else None
    values = [(v["id"], v["stringValue"]) for v in p.get("parameterValues") or []]
    # an explicit startTimestamp is the caller naming where to start: a backfill asked for
    await ctx.pipelines.activate(p["pipelineId"], start=start,
                                 parameter_values=parameter_value_args(values),
                                 allow_backfill=start is not None)
    return {}


@operation("DeactivatePipeline")
async def deactivate_pipeline(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    cancel = p.get("cancelActive")
    await ctx.pipelines.deactivate(p["pipelineId"], True if cancel is None else bool(cancel))
    return {}


@operation("SetStatus")
async def set_status(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    try:
        action = Action(p["status"].upper())
    except ValueError:
        raise invalid_request(f"status must be one of {', '.join(a.value for a in Action)}, "
                              f"got {p['status'][:100]!r}") from None
    await ctx.pipelines.set_status(p["pipelineId"], list(p["objectIds"]), action)
    return {}


# --- objects -------------------------------------------------------------------------------

@operation("DescribeObjects")
async def describe_objects(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    page, marker = _page(list(p["objectIds"]), p.get("marker"), DESCRIBE_PAGE)
    views = await ctx.objects.describe(p["pipelineId"], page,
                                       evaluate=bool(p.get("evaluateExpressions")))
    return _paged("pipelineObjects", [described(v, p["pipelineId"]) for v in views], marker)


@operation("QueryObjects")
async def query_objects(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    selectors = parse_selectors((p.get("query") or {}).get("selectors"))
    ids, marker = await ctx.objects.query(p["pipelineId"], p["sphere"], selectors,
                                          limit=p.get("limit"), marker=p.get("marker"))
    return _paged("ids", ids, marker)


@operation("EvaluateExpression")
async def evaluate_expression(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    value = await ctx.objects.evaluate(p["pipelineId"], p["objectId"], p["expression"])
    return {"evaluatedExpression": value}


# --- task runners --------------------------------------------------------------------------

@operation("PollForTask")
async def poll_for_task(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    task = await ctx.tasks.poll(p["workerGroup"], p.get("hostname"))
    if task is None:
        return {}
    objects = {oid: {"id": obj["id"], "name": obj["name"],
                     "fields": object_fields(obj["fields"])}
               for oid, obj in task.objects.items()}
    return {"taskObject": {"taskId": task.task_id, "pipelineId": task.pipeline_id,
                           "attemptId": task.attempt_id, "objects": objects}}


@operation("ReportTaskProgress")
async def report_task_progress(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"canceled": await ctx.tasks.progress(p["taskId"])}


@operation("SetTaskStatus")
async def set_task_status(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.tasks.set_status(p["taskId"], p["taskStatus"], p.get("errorId"),
                               p.get("errorMessage"))
    return {}


@operation("ReportTaskRunnerHeartbeat")
async def report_task_runner_heartbeat(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    await ctx.tasks.heartbeat(p["taskrunnerId"], p.get("workerGroup"), p.get("hostname"))
    return {"terminate": False}
