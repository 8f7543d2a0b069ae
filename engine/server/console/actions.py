"""The console's actions, each through the service layer the CLI and the API call: rerun
(with or without dependants), mark finished, cancel, pause/resume a component,
activate/deactivate a pipeline. A post without ``confirm=yes`` gets the confirmation page;
with it, the action runs and the page it came from shows the outcome."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine.errors import HeadraceError
from engine.server.console.guard import authenticated, read_form
from engine.server.console.render import page
from engine.server.console.sessions import Session
from engine.server.console.state import console_of, context, safe_next
from engine.server.console.versions import roll_back
from engine.service import InvalidRequest, PipelineService
from engine.store import Action, Store
from engine.store.records import TERMINAL


@dataclass(frozen=True)
class ActionSpec:
    title: str
    button: str
    #: the SetStatus action, for the ones that are one
    status: Action | None = None
    #: the targets: instances, components, or the pipeline itself
    targets: str = "instances"


ACTIONS: dict[str, ActionSpec] = {
    "rerun": ActionSpec("Rerun", "Rerun", Action.RERUN),
    "rerun-dependants": ActionSpec("Rerun with dependants", "Rerun all", Action.RERUN),
    "mark-finished": ActionSpec("Mark finished", "Mark finished", Action.MARK_FINISHED),
    "cancel": ActionSpec("Cancel", "Cancel the instance", Action.TRY_CANCEL),
    "pause": ActionSpec("Pause", "Pause", Action.PAUSE, "components"),
    "resume": ActionSpec("Resume", "Resume", Action.RESUME, "components"),
    "activate": ActionSpec("Activate the pipeline", "Activate", targets="pipeline"),
    "deactivate": ActionSpec("Deactivate the pipeline", "Deactivate", targets="pipeline"),
    "rollback": ActionSpec("Roll back to an earlier version", "Roll back", targets="pipeline"),
}


async def dependants(store: Store, pipeline_id: str, roots: list[str]) -> list[str]:
    """The instances downstream of ``roots`` (transitively) that have ended: what a rerun
    "with dependants" reruns too (the ones still waiting go on by themselves)."""
    every = await store.list_instances(pipeline_id)
    downstream: dict[str, list[str]] = {}
    for inst in every:
        for dep in inst.depends_on:
            downstream.setdefault(dep, []).append(inst.id)
    terminal = {inst.id for inst in every if inst.status in TERMINAL}
    seen, queue, out = set(roots), list(roots), []
    while queue:
        for child in downstream.get(queue.pop(), []):
            if child not in seen:
                seen.add(child)
                queue.append(child)
                if child in terminal:
                    out.append(child)
    return sorted(out)


def _describe(name: str, spec: ActionSpec, pipeline_id: str, targets: list[str],
              version: str) -> str:
    if name == "rollback":
        return (f"Store version {version} of {pipeline_id} again as its latest version? "
                "The running version does not change until you activate it.")
    if spec.targets == "pipeline":
        return f"{spec.title} {pipeline_id}?"
    count = len(targets)
    what = "component(s)" if spec.targets == "components" else "instance(s)"
    return f"{spec.title}: {count} {what} of {pipeline_id}."


async def _carry_out(service: PipelineService, name: str, spec: ActionSpec,
                     pipeline_id: str, targets: list[str], options: set[str],
                     version: str) -> str:
    if name == "rollback":
        if not version.isdigit():
            raise InvalidRequest(f"roll back needs a version number, got {version[:40]!r}")
        return await roll_back(service, pipeline_id, int(version))
    if name == "activate":
        done = await service.activate(pipeline_id, allow_backfill="allow_backfill" in options)
        lines = [f"activated version {done.version}: {done.new_instances} new instance(s)",
                 *done.warnings]
        return "; ".join(lines)
    if name == "deactivate":
        state = await service.deactivate(pipeline_id, cancel_active="cancel_active" in options)
        return f"deactivated: {state}"
    assert spec.status is not None
    return "; ".join(await service.set_status(pipeline_id, targets, spec.status))


@authenticated
async def act(request: Request, session: Session) -> Response:
    console = console_of(request)
    name = request.path_params["action"]
    pipeline_id = request.path_params["pipeline_id"]
    spec = ACTIONS.get(name)
    form = await read_form(request)
    back = safe_next(console.base, form.get("next") or f"{console.base}/pipelines/"
                      f"{pipeline_id}")
    if spec is None:
        return page("error.html", 404, **context(request, session, title="Unknown action",
                                                 message=f"no action {name!r}"))
    objects = [o for o in form.all("object_id") if o]
    version = form.get("version")
    targets = list(objects)
    if name == "rerun-dependants":
        try:
            await console.pipelines.pipeline(pipeline_id)
        except HeadraceError as exc:
            session.error = str(exc)
            return RedirectResponse(back, 303)
        targets = objects + [d for d in await dependants(console.store, pipeline_id, objects)
                             if d not in objects]
    if form.get("confirm") != "yes":
        options = []
        if name == "activate":
            options.append({"name": "allow_backfill", "label": "allow a backfill (a start "
                            "more than a day in the past runs every interval since)",
                            "checked": False})
        if name == "deactivate":
            options.append({"name": "cancel_active", "label": "cancel running instances",
                            "checked": True})
        return page("confirm.html", **context(
            request, session, title=spec.title,
            what=_describe(name, spec, pipeline_id, targets, version), targets=targets,
            objects=targets, options=options, extra={"version": version} if version else {},
            button=spec.button,
            next_url=back, action_url=str(request.url.path)))
    chosen = {k for k, v in form.pairs if v == "yes" and k != "confirm"}
    try:
        session.notice = await _carry_out(console.pipelines, name, spec, pipeline_id,
                                          targets, chosen, version)
    except HeadraceError as exc:
        session.error = f"{spec.title} refused: {exc}"
    return RedirectResponse(back, 303)
