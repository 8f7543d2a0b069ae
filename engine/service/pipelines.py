"""The pipeline verbs: create, definitions (put, get, validate), activate, deactivate, delete,
set-status, tags, and the run list. What each means is decided here once; callers format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.clock import Clock
from engine.definition import Definition, LoadOptions, load
from engine.definition.serialize import masked, to_file_format
from engine.errors import NotFound, Problem, Report
from engine.plan import pipeline_is_ondemand, schedule_window
from engine.runtime.runner import activate, apply_actions, load_version
from engine.schedule import format_timestamp
from engine.service.errors import (
    InvalidRequest,
    ObjectNotFound,
    PipelineDeleted,
    PipelineNotFound,
)
from engine.store import (
    Action,
    AttemptRecord,
    AttemptStatus,
    InstanceRecord,
    PipelineRecord,
    PipelineState,
    Status,
    Store,
)
from engine.store.queries import get_instances, instance_status_counts
from engine.store.records import utcnow

#: AWS's limit: at most ten tags on a pipeline
MAX_TAGS = 10
#: AWS blocks an activation whose first interval starts more than this long ago (a backfill)
BACKFILL_GUARD = timedelta(days=1)
#: the statuses of an on-demand run still in progress
_IN_PROGRESS = (Status.WAITING_ON_DEPENDENCIES, Status.WAITING_FOR_RUNNER, Status.RUNNING)


@dataclass
class DefinitionCheck:
    """A definition read and validated (not stored): what PutPipelineDefinition and
    ValidatePipelineDefinition report."""

    definition: Definition | None
    report: Report

    @property
    def errored(self) -> bool:
        return self.definition is None or bool(self.report.errors)


@dataclass
class PipelineSummary:
    record: PipelineRecord
    #: instance count per status
    counts: dict[str, int]


@dataclass
class Activation:
    pipeline_id: str
    version: int
    activation_time: datetime
    window_start: datetime
    instances: int
    warnings: list[str] = field(default_factory=list)
    #: instances this activation added (a re-activation adds only what was not planned yet)
    new_instances: int = 0


def parameter_value_args(values: list[tuple[str, str]]) -> list[str]:
    """``[(id, value)]`` (the API's parameterValues) as the CLI's ``id=value`` arguments."""
    return [f"{key}={value}" for key, value in values]


class PipelineService:
    """The verbs against one open store."""

    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or Clock()

    # --- pipelines -------------------------------------------------------------------------

    async def pipeline(self, pipeline_id: str) -> PipelineRecord:
        """The pipeline, or :class:`PipelineNotFound` / :class:`PipelineDeleted`."""
        try:
            return await self.store.get_pipeline(pipeline_id)
        except NotFound:
            deleted = await self.store.deleted_at(pipeline_id)
            if deleted is not None:
                raise PipelineDeleted(f"no pipeline {pipeline_id!r}: it was deleted at "
                                      f"{format_timestamp(deleted)}") from None
            raise PipelineNotFound(f"no pipeline {pipeline_id!r} in this store") from None

    async def create(self, name: str, unique_id: str, description: str = "",
                     tags: dict[str, str] | None = None) -> PipelineRecord:
        """An empty pipeline (PENDING), or the one already made with this ``unique_id``."""
        if tags and len(tags) > MAX_TAGS:
            raise InvalidRequest(f"a pipeline has at most {MAX_TAGS} tags, got {len(tags)}")
        return await self.store.create_pipeline(name, unique_id, description, tags=tags)

    async def delete(self, pipeline_id: str) -> None:
        """Delete a pipeline, its definitions and its run history. An engine running it
        notices and stops it."""
        await self.pipeline(pipeline_id)
        await self.store.delete_pipeline(pipeline_id)

    async def list_pipelines(self) -> list[PipelineRecord]:
        return await self.store.list_pipelines()

    async def describe(self, pipeline_ids: list[str]) -> list[PipelineSummary]:
        out = []
        for pid in pipeline_ids:
            record = await self.pipeline(pid)
            out.append(PipelineSummary(record, await instance_status_counts(self.store, pid)))
        return out

    async def add_tags(self, pipeline_id: str, tags: dict[str, str]) -> dict[str, str]:
        record = await self.pipeline(pipeline_id)
        merged = {**record.tags, **tags}
        if len(merged) > MAX_TAGS:
            raise InvalidRequest(f"a pipeline has at most {MAX_TAGS} tags; {pipeline_id} would "
                                 f"have {len(merged)}")
        await self.store.update_pipeline(pipeline_id, tags=merged)
        return merged

    async def remove_tags(self, pipeline_id: str, keys: list[str]) -> dict[str, str]:
        record = await self.pipeline(pipeline_id)
        kept = {k: v for k, v in record.tags.items() if k not in set(keys)}
        await self.store.update_pipeline(pipeline_id, tags=kept)
        return kept

    # --- definitions -----------------------------------------------------------------------

    @staticmethod
    def check_definition(location: str, options: LoadOptions | None = None, *,
                         text: str | None = None) -> DefinitionCheck:
        """Read and validate a definition (a file, or ``text``) as PutPipelineDefinition does.
        Raises :class:`~engine.errors.ParseError` when it cannot be read at all."""
        definition, report = load(location, options, text=text)
        return DefinitionCheck(definition, report)

    async def put_definition(self, pipeline_id: str, check: DefinitionCheck) -> int:
        """Store a checked definition as the pipeline's latest version; returns the version.
        A definition with errors is refused whole (nothing is stored)."""
        await self.pipeline(pipeline_id)
        if check.errored or check.definition is None:
            raise InvalidRequest(f"the definition has {len(check.report.errors)} error(s); "
                                 "nothing was stored")
        return await self.store.put_definition(pipeline_id, to_file_format(check.definition))

    async def get_definition(self, pipeline_id: str, which: str = "latest") -> dict[str, Any]:
        """A stored version (``latest`` or ``active``) in the definition-file format, with
        secret fields and values as ``****``."""
        if which not in ("latest", "active"):
            raise InvalidRequest(f"version must be 'latest' or 'active', got {which!r}")
        record = await self.pipeline(pipeline_id)
        version = record.latest_version if which == "latest" else record.active_version
        if version is None:
            raise InvalidRequest(f"pipeline {pipeline_id} has no {which} definition")
        return masked(await self.store.get_definition(pipeline_id, version))

    # --- activation ------------------------------------------------------------------------

    async def activate(self, pipeline_id: str, *, start: datetime | None = None,
                       parameter_values: list[str] | None = None, allow_backfill: bool = False,
                       max_instances: int = 10_000) -> Activation:
        """Activate the latest definition: plan its instances (a running engine runs them).

        ``parameter_values`` (``id=value``) override the stored values and are kept as a new
        version. A first interval more than a day in the past is a backfill, refused unless
        ``allow_backfill``."""
        record = await self.pipeline(pipeline_id)
        if record.latest_version is None:
            raise InvalidRequest(f"pipeline {pipeline_id} has no definition; "
                                 "put-pipeline-definition first")
        definition = await load_version(self.store, pipeline_id, record.latest_version,
                                        list(parameter_values or []))
        version = record.latest_version
        if parameter_values:
            version = await self.store.put_definition(pipeline_id, to_file_format(definition))
        now = self.clock.now()
        warnings: list[str] = []
        if pipeline_is_ondemand(definition):
            active = await self.store.list_instances(pipeline_id, statuses=_IN_PROGRESS)
            if active:
                raise InvalidRequest(f"pipeline {pipeline_id} has an on-demand run in progress "
                                     f"({len(active)} instances); wait for it to end")
        else:
            own_start, _ = schedule_window(definition, record.first_activated_at or now, now)
            first = start or own_start
            if first < now - BACKFILL_GUARD and not allow_backfill:
                raise InvalidRequest(
                    f"the pipeline would start at {format_timestamp(first)}, more than one day "
                    "in the past (a backfill of every interval since); pass --allow-backfill "
                    "or --start-timestamp (API: startTimestamp)")
            warnings.extend(_cascade_backfill_warning(definition, first, now))
        before = sum((await instance_status_counts(self.store, pipeline_id)).values())
        activation, window_start, _ = await activate(self.store, pipeline_id, definition,
                                                     version, self.clock, start=start,
                                                     max_instances=max_instances)
        count = sum((await instance_status_counts(self.store, pipeline_id)).values())
        return Activation(pipeline_id, version, activation, window_start, count, warnings,
                          new_instances=count - before)

    async def deactivate(self, pipeline_id: str, cancel_active: bool = True) -> str:
        """Pause a pipeline. With an engine running it: DEACTIVATING, and the engine winds it
        down; otherwise INACTIVE at once (running leftovers of a dead process canceled when
        ``cancel_active``). Returns the state and, for DEACTIVATING, who winds it down."""
        await self.pipeline(pipeline_id)
        holder = await self.store.lease_holder(f"pipeline:{pipeline_id}")
        if holder is None:
            if cancel_active:  # left RUNNING by a process that is gone
                await self._cancel_leftovers(pipeline_id)
            await self.store.update_pipeline(pipeline_id, state=PipelineState.INACTIVE)
            return "INACTIVE"
        await self.store.update_pipeline(pipeline_id, state=PipelineState.DEACTIVATING,
                                         cancel_active=cancel_active)
        return f"DEACTIVATING (the engine {holder[0]} winds it down)"

    async def _cancel_leftovers(self, pipeline_id: str) -> None:
        why = "the pipeline was deactivated"
        for rec in await self.store.list_instances(pipeline_id, statuses=[Status.RUNNING]):
            await self.store.update_instance(pipeline_id, rec.id, status=Status.CANCELED,
                                             error=why, actual_end=utcnow())
            for attempt in await self.store.list_attempts(pipeline_id, rec.id):
                if attempt.status == AttemptStatus.RUNNING:
                    await self.store.update_attempt(pipeline_id, rec.id, attempt.number,
                                                    status=AttemptStatus.CANCELED,
                                                    ended_at=utcnow(), error=why)

    # --- user actions ----------------------------------------------------------------------

    async def set_status(self, pipeline_id: str, object_ids: list[str],
                         action: Action) -> list[str]:
        """RERUN, MARK_FINISHED, TRY_CANCEL instances; PAUSE, RESUME components. Handed to
        the process that runs the pipeline through the store, else applied here. Returns one
        line per object."""
        record = await self.pipeline(pipeline_id)
        await self._check_targets(record, object_ids, action)
        holder = await self.store.lease_holder(f"pipeline:{pipeline_id}")
        if holder is not None:
            for oid in object_ids:
                await self.store.add_request(pipeline_id, oid, action)
            return [f"{action.value} {oid}: sent to {holder[0]}" for oid in object_ids]
        if (record.active_version or record.latest_version) is None:
            raise InvalidRequest(f"pipeline {pipeline_id} has no definition")
        # no process runs it: applied to the store (a rerun makes a FINISHED pipeline
        # SCHEDULED again), for the next run or engine to carry on
        return await apply_actions(self.store, pipeline_id,
                                   [(action, oid) for oid in object_ids])

    async def _check_targets(self, record: PipelineRecord, object_ids: list[str],
                             action: Action) -> None:
        """All components (PAUSE, RESUME) or all instances (the rest), each one that exists."""
        if not object_ids:
            raise InvalidRequest("set-status needs at least one object id")
        on_components = action in (Action.PAUSE, Action.RESUME)
        wrong = [oid for oid in object_ids if oid.startswith("@") == on_components]
        if wrong:
            kind = "components" if on_components else "instances (ids starting with '@')"
            raise InvalidRequest(f"{action.value} applies to {kind}; {wrong[0]!r} is not one "
                                 "(objectIds must be all components or all instances)")
        if on_components:
            version = record.active_version or record.latest_version
            body = await self.store.get_definition(record.id, version) if version else {}
            known = {o.get("id") for o in body.get("objects", [])}
            missing = [oid for oid in object_ids if oid not in known]
        else:
            found = await get_instances(self.store, record.id, object_ids)
            missing = [oid for oid in object_ids if oid not in found]
        if missing:
            raise ObjectNotFound(f"pipeline {record.id} has no "
                                 f"{'component' if on_components else 'instance'} "
                                 f"{missing[0]!r}")

    # --- the run list ----------------------------------------------------------------------

    async def list_runs(self, pipeline_id: str, *, statuses: list[Status] | None = None,
                        scheduled: tuple[datetime, datetime] | None = None,
                        started: tuple[datetime, datetime] | None = None,
                        ) -> tuple[list[InstanceRecord], dict[str, AttemptRecord]]:
        """The instances (optionally filtered; intervals half-open) and each one's latest
        attempt (its trace id, the worker that ran it)."""
        await self.pipeline(pipeline_id)
        rows = await self.store.list_instances(pipeline_id, statuses=statuses)
        if scheduled:
            rows = [r for r in rows if scheduled[0] <= r.scheduled_start < scheduled[1]]
        if started:
            rows = [r for r in rows if r.actual_start and started[0] <= r.actual_start
                    < started[1]]
        latest: dict[str, AttemptRecord] = {}
        for attempt in await self.store.list_attempts(pipeline_id):
            latest[attempt.instance_id] = attempt
        return rows, latest


def _cascade_backfill_warning(definition: Definition, first: datetime,
                              now: datetime) -> list[str]:
    """AWS's save-time warning for cascade combined with a backfill (reference section 3.3)."""
    if first >= now:
        return []
    for oid in definition.objects:
        mode = definition.first(oid, "failureAndRerunMode")
        if isinstance(mode, str) and mode.lower() == "cascade" and definition.category(oid) in (
                "activity", "datanode"):
            return [f"{oid} has 'failureAndRerunMode' set to 'cascade' and you are about to "
                    f"create a backfill with scheduleStartTime {format_timestamp(first)}. This "
                    "can result in rapid creation of pipeline objects in case of failures."]
    return []


def problems_by_object(problems: list[Problem], fallback_id: str) -> dict[str, list[str]]:
    """Findings grouped by object id, as the API's ``validationErrors``/``Warnings`` are
    (a finding about no object is filed under ``fallback_id``); each message names its
    field."""
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        text = problem.message
        if problem.field is not None:
            text = f"field {problem.field!r}: {text}"
        grouped.setdefault(problem.object_id or fallback_id, []).append(text)
    return grouped

