"""The console's pages: login, pipelines, a pipeline (graph and grid), an instance."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.definition import Definition
from engine.definition.serialize import masked
from engine.errors import DefinitionError, NotFound
from engine.runtime.runner import load_version
from engine.server.console.grid_html import grid_rows
from engine.server.console.guard import authenticated, read_form, refused, same_origin
from engine.server.console.render import page
from engine.server.console.sessions import COOKIE, Session
from engine.server.console.state import console_of, context, safe_next
from engine.service import InvalidRequest, PipelineDeleted, PipelineNotFound
from engine.service.graph import pipeline_graph
from engine.service.overview import DEFAULT_GRID_INTERVALS, MAX_GRID_INTERVALS, describe_schedule
from engine.store import PipelineRecord, PipelineState
from engine.store.records import TERMINAL

_COPIED = re.compile(r"copied (\d+) rows, (\d+) bytes in ([0-9.]+) s")


async def home(request: Request) -> Response:
    return RedirectResponse(f"{console_of(request).base}/pipelines", 303)


async def login_form(request: Request) -> Response:
    console = console_of(request)
    if console.sessions.open_access:
        return RedirectResponse(f"{console.base}/pipelines", 303)
    return page("login.html", **context(request, None, access_key="",
                                        next=request.query_params.get("next", "")))


async def login(request: Request) -> Response:
    console = console_of(request)
    if not same_origin(request):
        return refused(request, 403, "refused: the login comes from another site")
    form = await read_form(request)
    access_key, secret = form.get("access_key").strip(), form.get("secret_key")
    target = safe_next(console.base, form.get("next"))
    if access_key and console.sessions.locked(access_key):
        return page("login.html", 429, **context(
            request, None, access_key=access_key, next=target,
            error="too many failed logins with this access key; try again in a minute"))
    session = console.sessions.login(access_key, secret) if access_key else None
    if session is None:
        return page("login.html", 401, **context(
            request, None, access_key=access_key, next=target,
            error="unknown access key or wrong secret"))
    response = RedirectResponse(target, 303)
    console.set_cookie(response, session)
    return response


@authenticated
async def logout(request: Request, session: Session) -> Response:
    console = console_of(request)
    console.sessions.close(request.cookies.get(COOKIE))
    response = RedirectResponse(f"{console.base}/login", 303)
    console.clear_cookie(response)
    return response


def _tag_matches(tags: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    key = key.strip()
    if key not in tags:
        return False
    return not sep or tags[key] == value.strip()


@authenticated
async def pipelines(request: Request, session: Session) -> Response:
    console = console_of(request)
    q = request.query_params.get("q", "").strip()
    tag = request.query_params.get("tag", "").strip()
    state = request.query_params.get("state", "").strip().upper()
    every = await console.overview.pipelines()
    shown = [p for p in every
             if (not q or q.lower() in p.record.name.lower() or q.lower() in p.record.id.lower())
             and (not tag or _tag_matches(p.record.tags, tag))
             and (not state or p.record.state.value == state)]
    return page("pipelines.html", **context(
        request, session, shown=shown, total=len(every), q=q, tag=tag, state=state,
        states=[s.value for s in PipelineState]))


async def _pipeline_or_page(request: Request, session: Session,
                            ) -> tuple[PipelineRecord | None, Response | None]:
    try:
        record = await console_of(request).pipelines.pipeline(
            request.path_params["pipeline_id"])
    except (PipelineNotFound, PipelineDeleted) as exc:
        return None, page("error.html", 404, **context(request, session, title="Not found",
                                                       message=str(exc)))
    return record, None


async def _body(request: Request, record: PipelineRecord) -> dict[str, Any]:
    version = record.active_version or record.latest_version
    if version is None:
        return {"objects": []}
    return masked(await console_of(request).store.get_definition(record.id, version))


async def _definition(request: Request, record: PipelineRecord) -> Definition | None:
    version = record.active_version or record.latest_version
    if version is None:
        return None
    try:
        return await load_version(console_of(request).store, record.id, version)
    except DefinitionError:
        return None


def _intervals(request: Request) -> int:
    raw = request.query_params.get("intervals", "")
    return max(1, min(int(raw), MAX_GRID_INTERVALS)) if raw.isdigit() else \
        DEFAULT_GRID_INTERVALS


@authenticated
async def pipeline(request: Request, session: Session) -> Response:
    console = console_of(request)
    record, missing = await _pipeline_or_page(request, session)
    if record is None:
        return missing or refused(request, 404, "no such pipeline")
    body = await _body(request, record)
    intervals = _intervals(request)
    grid = await console.overview.grid(record.id, body, intervals)
    latest = {row.component: row.cells[max(row.cells)].status for row in grid.rows
              if row.cells}
    definition = await _definition(request, record)
    graph = pipeline_graph(definition, latest) if definition else {"nodes": [], "edges": []}
    for node in graph["nodes"]:
        if node["id"] in latest:
            node["href"] = f"#row-{node['id']}"
    return page("pipeline.html", **context(
        request, session, record=record, schedule=describe_schedule(body), grid=grid,
        graph=graph, intervals=intervals, pid=record.id, grid_rows=grid_rows,
        next_url=f"{console.base}/pipelines/{record.id}"))


@authenticated
async def grid(request: Request, session: Session) -> Response:
    """The grid alone: what a page fetches when instances were planned or removed."""
    console = console_of(request)
    record, missing = await _pipeline_or_page(request, session)
    if record is None:
        return missing or refused(request, 404, "no such pipeline")
    body = await _body(request, record)
    found = await console.overview.grid(record.id, body, _intervals(request))
    return page("grid.html", **context(request, session, grid=found, pid=record.id,
                                       grid_rows=grid_rows))


def _copy_metrics(events: str | None) -> dict[str, str] | None:
    """Rows, bytes and throughput of a copy, from the attempt's ``events`` log."""
    match = _COPIED.search(events or "")
    if match is None:
        return None
    rows, size, seconds = int(match[1]), int(match[2]), float(match[3])
    rate = f"{size / seconds / 1e6:.1f} MB/s, {rows / seconds:,.0f} rows/s" if seconds else ""
    return {"rows": f"{rows:,}", "bytes": f"{size:,}", "seconds": f"{seconds:.2f}",
            "rate": rate}


def _field_rows(fields: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key in sorted(fields):
        value = fields[key]
        if key.startswith("*"):
            value = "****"  # a secret field: never shown, whatever it holds
        elif isinstance(value, dict) and "ref" in value:
            value = f"ref: {value['ref']}"
        elif isinstance(value, list):
            value = ", ".join(f"ref: {v['ref']}" if isinstance(v, dict) and "ref" in v
                              else str(v) for v in value)
        out.append((key, str(value)))
    return out


@authenticated
async def instance(request: Request, session: Session) -> Response:
    from engine.server.console.live import read_log

    console = console_of(request)
    record, missing = await _pipeline_or_page(request, session)
    if record is None:
        return missing or refused(request, 404, "no such pipeline")
    iid = request.path_params["instance_id"]
    fields_error = None
    try:
        view = (await console.objects.describe(record.id, [iid], evaluate=True))[0]
    except InvalidRequest as exc:  # cannot evaluate: show the fields as written
        fields_error = str(exc)
        view = (await console.objects.describe(record.id, [iid]))[0]
    except NotFound as exc:
        return page("error.html", 404, **context(request, session, title="Not found",
                                                 message=str(exc)))
    inst = view.instance
    if inst is None or view.sphere != "INSTANCE":
        return page("error.html", 404, **context(request, session, title="Not an instance",
                                                 message=f"{iid} is not an instance"))
    attempts = []
    for attempt in view.attempts:
        events = await read_log(attempt.log_path, "events") if attempt.log_path else None
        attempts.append({"record": attempt, "copied": _copy_metrics(events),
                         "trace_url": console.trace_url(attempt.trace_id)})
    wanted = request.query_params.get("attempt", "")
    shown = next((a for a in view.attempts if str(a.number) == wanted), None) or (
        view.attempts[-1] if view.attempts else None)
    paused = inst.object_id in await console.store.paused(record.id)
    return page("instance.html", **context(
        request, session, pid=record.id, pipeline_name=record.name, inst=inst,
        attempts=attempts, shown_attempt=shown, waiting_on=view.waiting_on,
        fields=_field_rows(view.fields), evaluated=view.evaluated, fields_error=fields_error,
        paused=paused, terminal=inst.status in TERMINAL,
        next_url=f"{console.base}/pipelines/{record.id}"))
