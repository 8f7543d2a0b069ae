"""Scripted in-process activities and precondition checks for runtime tests in virtual time.

Real subprocesses and threads do not mix with trio's autojumping ``MockClock``, so runtime tests
swap the shell runners for these: the object's ``command`` field names a behaviour, and every
call is recorded (instance, attempt, virtual start and end, outcome, whether shielded cleanup
ran). Behaviours (``command``):

- ``ok``: succeed at once; ``sleep S``: take S virtual seconds, then succeed;
- ``fail``: fail (retryable) every time; ``fatal``: fail, not retryable;
- ``fail-until N``: fail the first N-1 calls of an instance, then succeed;
- ``hang``: never return (until cancelled; cleanup then takes 1 shielded virtual second);
  ``hang-until N``: hang on the first N-1 calls of an instance, then succeed.

Precondition behaviours: ``true``, ``false``, ``true-after N`` (true from the N-th poll on).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import anyio

from engine.activities.base import ACTIVITIES, PRECONDITIONS, ActivityFailed, AttemptContext
from engine.errors import RunError


@dataclass
class Call:
    instance_id: str
    object_id: str
    attempt: int
    scheduled_start: datetime
    started: datetime
    ended: datetime | None = None
    outcome: str = "running"
    cleaned_up: bool = False


@dataclass
class Script:
    """The recorder and the runners; ``install()`` puts them in the registries."""

    calls: list[Call] = field(default_factory=list)
    running: int = 0
    peak_running: int = 0
    #: peak concurrency per object id
    peaks: dict[str, int] = field(default_factory=dict)
    _per_object: dict[str, int] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def of(self, object_id: str) -> list[Call]:
        return [c for c in self.calls if c.object_id == object_id]

    def count(self, instance_id: str) -> int:
        return self._counts.get(instance_id, 0)

    @contextmanager
    def install(self, activity_type: str = "ShellCommandActivity",
                check_type: str = "ShellCommandPrecondition") -> Iterator[Script]:
        saved = ACTIVITIES.get(activity_type), PRECONDITIONS.get(check_type)
        ACTIVITIES[activity_type] = self.activity
        PRECONDITIONS[check_type] = self.check
        try:
            yield self
        finally:
            for registry, name, old in ((ACTIVITIES, activity_type, saved[0]),
                                        (PRECONDITIONS, check_type, saved[1])):
                if old is None:
                    registry.pop(name, None)
                else:
                    registry[name] = old  # type: ignore[assignment]

    def _begin(self, ctx: AttemptContext) -> Call:
        call = Call(ctx.instance.id, ctx.instance.object_id, ctx.attempt,
                    ctx.instance.scheduled_start, ctx.clock.now())
        self.calls.append(call)
        self._counts[call.instance_id] = self._counts.get(call.instance_id, 0) + 1
        oid = call.object_id
        self.running += 1
        self._per_object[oid] = self._per_object.get(oid, 0) + 1
        self.peak_running = max(self.peak_running, self.running)
        self.peaks[oid] = max(self.peaks.get(oid, 0), self._per_object[oid])
        return call

    def _finish(self, ctx: AttemptContext, call: Call, outcome: str) -> None:
        call.ended = ctx.clock.now()
        call.outcome = outcome
        self.running -= 1
        self._per_object[call.object_id] -= 1

    async def activity(self, ctx: AttemptContext) -> None:
        command = (ctx.field_text("command") or "ok").split()
        call = self._begin(ctx)
        nth = self.count(ctx.instance.id)
        try:
            match command:
                case ["ok"]:
                    pass
                case ["sleep", seconds]:
                    await ctx.clock.sleep(float(seconds))
                case ["fail"]:
                    raise ActivityFailed("scripted failure")
                case ["fatal"]:
                    raise RunError("scripted fatal failure", transient=False)
                case ["fail-until", n] if nth < int(n):
                    raise ActivityFailed(f"scripted failure {nth} of {int(n) - 1}")
                case ["fail-until", _]:
                    pass
                case ["hang"]:
                    await anyio.sleep_forever()
                case ["hang-until", n] if nth < int(n):
                    await anyio.sleep_forever()
                case ["hang-until", _]:
                    pass
                case _:
                    raise AssertionError(f"unknown scripted behaviour {command}")
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                with anyio.CancelScope(shield=True):
                    await ctx.clock.sleep(1)  # cleanup that takes time, shielded
                    call.cleaned_up = True
                self._finish(ctx, call, "cancelled")
            else:
                self._finish(ctx, call, "failed")
            raise
        self._finish(ctx, call, "ok")

    async def check(self, ctx: AttemptContext) -> bool:
        command = (ctx.field_text("command") or "true").split()
        call = self._begin(ctx)
        nth = self.count(ctx.instance.id)
        match command:
            case ["true"]:
                result = True
            case ["false"]:
                result = False
            case ["true-after", n]:
                result = nth >= int(n)
            case _:
                raise AssertionError(f"unknown scripted check {command}")
        self._finish(ctx, call, str(result).lower())
        return result
