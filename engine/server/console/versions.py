"""The definitions page: the stored versions, latest and active side by side with a diff, the
latest's validation findings (object, field, line) and whether it can be activated, a new
definition validated before it is stored, and roll back (an earlier version stored again as
the latest, to activate after looking at the diff)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.definition import LoadOptions
from engine.definition.serialize import masked
from engine.errors import DefinitionError, HeadraceError, ParseError, Problem
from engine.runtime.runner import load_version
from engine.server.console.guard import authenticated, read_form
from engine.server.console.render import page
from engine.server.console.sessions import Session
from engine.server.console.state import console_of, context
from engine.service import DefinitionCheck, PipelineService
from engine.store import PipelineRecord, Store

#: versions listed (the latest ones)
MAX_VERSIONS = 50
#: the largest definition pasted into the page (the API's own body limit is 8 MiB)
MAX_DEFINITION_CHARS = 4 * 1024 * 1024


@dataclass
class DiffLine:
    kind: str  # "add", "del", "hunk" or "same"
    text: str


def _pretty(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, sort_keys=False, ensure_ascii=False)


def diff_lines(old: str, new: str, old_name: str, new_name: str) -> list[DiffLine]:
    out = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name,
                                     n=3, lineterm=""):
        if line.startswith(("+++", "---")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        out.append(DiffLine(kind, line))
    return out


def findings(problems: list[Problem]) -> list[dict[str, Any]]:
    return [{"severity": p.severity, "object": p.object_id or "", "field": p.field or "",
             "line": p.line or "", "message": p.message} for p in problems]


def _check(text: str, name: str) -> DefinitionCheck | str:
    try:
        return PipelineService.check_definition(name, LoadOptions(), text=text)
    except ParseError as exc:
        return str(exc)


async def _readiness(store: Store, record: PipelineRecord) -> list[dict[str, Any]]:
    """What activating the latest version would refuse (a parameter without a value...)."""
    if record.latest_version is None:
        return []
    try:
        await load_version(store, record.id, record.latest_version)
    except DefinitionError as exc:
        return findings(exc.problems)
    return []


async def _page(request: Request, session: Session, *, pasted: str = "",
                pasted_findings: list[dict[str, Any]] | None = None,
                pasted_error: str | None = None, status: int = 200) -> Response:
    console = console_of(request)
    try:
        record = await console.pipelines.pipeline(request.path_params["pipeline_id"])
    except HeadraceError as exc:
        return page("error.html", 404, **context(request, session, title="Not found",
                                                 message=str(exc)))
    latest_n, active_n = record.latest_version, record.active_version
    versions = list(range(latest_n or 0, 0, -1))[:MAX_VERSIONS]
    bodies: dict[int, dict[str, Any]] = {}
    for n in {latest_n, active_n} - {None}:
        assert n is not None
        bodies[n] = await console.store.get_definition(record.id, n)
    latest_text = _pretty(masked(bodies[latest_n])) if latest_n else ""
    active_text = _pretty(masked(bodies[active_n])) if active_n else ""
    diff = diff_lines(active_text, latest_text, f"active (version {active_n})",
                      f"latest (version {latest_n})") if latest_n and active_n else []
    latest_findings: list[dict[str, Any]] = []
    if latest_n:
        checked = _check(json.dumps(bodies[latest_n]), f"<version {latest_n}>")
        latest_findings = ([{"severity": "error", "object": "", "field": "", "line": "",
                             "message": checked}] if isinstance(checked, str) else
                           findings(checked.report.errors + checked.report.warnings))
    blocking = await _readiness(console.store, record)
    return page("definitions.html", status, **context(
        request, session, record=record, pid=record.id, versions=versions,
        latest_text=latest_text, active_text=active_text, diff=diff,
        findings=latest_findings, blocking=blocking, pasted=pasted,
        pasted_findings=pasted_findings, pasted_error=pasted_error,
        next_url=f"{console.base}/pipelines/{record.id}/definitions"))


@authenticated
async def definitions(request: Request, session: Session) -> Response:
    return await _page(request, session)


@authenticated
async def submit(request: Request, session: Session) -> Response:
    """A pasted definition: validated (``intent=validate``), or validated and stored as the
    latest version when it has no error (``intent=put``)."""
    console = console_of(request)
    form = await read_form(request)
    text = form.get("definition")
    if len(text) > MAX_DEFINITION_CHARS:
        return await _page(request, session, pasted_error="the definition is larger than "
                           f"{MAX_DEFINITION_CHARS:,} characters", status=413)
    checked = _check(text, "<pasted definition>")
    if isinstance(checked, str):
        return await _page(request, session, pasted=text, pasted_error=checked, status=400)
    found = findings(checked.report.errors + checked.report.warnings)
    if form.get("intent") != "put" or checked.errored:
        return await _page(request, session, pasted=text, pasted_findings=found,
                           status=400 if checked.errored else 200)
    pid = request.path_params["pipeline_id"]
    try:
        version = await console.pipelines.put_definition(pid, checked)
    except HeadraceError as exc:
        return await _page(request, session, pasted=text, pasted_error=str(exc), status=400)
    session.notice = (f"stored as version {version} (latest); activate it to run it"
                      + (f", {len(checked.report.warnings)} warning(s)"
                         if checked.report.warnings else ""))
    return RedirectResponse(f"{console.base}/pipelines/{pid}/definitions", 303)


async def roll_back(service: PipelineService, pipeline_id: str, version: int) -> str:
    """Store version ``version`` again as the latest (checked as a put is); the pipeline
    runs it once activated."""
    record = await service.pipeline(pipeline_id)
    if record.latest_version is None or not 1 <= version <= record.latest_version:
        return f"no version {version} of {pipeline_id}"
    body = await service.store.get_definition(pipeline_id, version)
    checked = _check(json.dumps(body), f"<version {version}>")
    if isinstance(checked, str):
        return f"version {version} cannot be read: {checked}"
    stored = await service.put_definition(pipeline_id, checked)
    return (f"version {version} stored again as version {stored} (latest); compare it with "
            "the active version below, then activate it")
