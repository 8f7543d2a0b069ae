"""The polling of a precondition: one check at a time, and when to check again.

A precondition instance runs one attempt that checks until the check holds, or until
``preconditionTimeout`` passes (else ``maximumRetries`` checks, when no timeout is set), waiting
``retryDelay`` between checks (reference section 2). The two halves are apart on purpose:
:func:`check_once` is one bounded check (its span, ``attemptTimeout``, a slot of the given
limiter for the check alone, never for the wait), and :class:`PollPlan` says when the next
check is due or why polling ends; :class:`PreconditionPoll` joins them into the body of an
:class:`~engine.runtime.attempt.Attempt` that waits in this process.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio

from engine.activities.base import AttemptContext, Check
from engine.errors import HeadraceError
from engine.runtime.attempt import DEFAULT_RETRY_DELAY
from engine.runtime.context import PipelineRuntime
from engine.runtime.fields import field_int, field_period
from engine.schedule import Period
from engine.store.records import InstanceRecord
from engine.telemetry.spans import fail as fail_span


@dataclass(frozen=True)
class PollPlan:
    """When a precondition that does not hold yet is checked again."""

    started: datetime
    #: ``preconditionTimeout``
    timeout: Period | None
    #: ``retryDelay``: the wait between checks
    delay: timedelta
    #: ``maximumRetries``: checks after the first, when there is no timeout
    max_retries: int | None
    #: ``attemptTimeout``: the limit of one check
    check_timeout: timedelta | None

    @classmethod
    def of(cls, rt: PipelineRuntime, rec: InstanceRecord, started: datetime) -> PollPlan:
        timeout = field_period(rt, rec, "preconditionTimeout")
        retry_delay = field_period(rt, rec, "retryDelay")
        delay = retry_delay.as_timedelta() if retry_delay else DEFAULT_RETRY_DELAY
        max_retries = field_int(rt, rec, "maximumRetries", None)
        check_timeout = field_period(rt, rec, "attemptTimeout")
        return cls(started, timeout, delay, max_retries,
                   check_timeout.as_timedelta() if check_timeout else None)

    @property
    def deadline(self) -> datetime | None:
        return self.started + self.timeout.as_timedelta() if self.timeout else None

    def after_false(self, checks: int, now: datetime) -> datetime | str:
        """After ``checks`` checks, the last one false: the time of the next check, or why
        polling ends here."""
        deadline = self.deadline
        if deadline is not None and now >= deadline:
            return f"precondition not met within {self.timeout} ({checks} checks)"
        if self.max_retries is not None and deadline is None and checks > self.max_retries:
            return f"precondition not met after {checks} checks"
        wake = now + self.delay
        return deadline if deadline is not None and wake > deadline else wake


async def check_once(rt: PipelineRuntime, check: Check, ctx: AttemptContext, number: int, *,
                     limit: timedelta | None, limiter: anyio.CapacityLimiter) -> bool:
    """Check number ``number`` within ``limit``, in its span: True when the precondition
    holds. A check that times out or fails retryably counts as false; one that fails for
    good raises."""
    satisfied = False
    with rt.telemetry.check_span(ctx, number) as span:
        try:
            scope = anyio.fail_after(limit.total_seconds()) if limit else nullcontext()
            with scope:
                # a slot of the engine-wide limit per check, not for the whole polling:
                # waiting preconditions must not starve the activities
                async with limiter:
                    satisfied = await check(ctx)
        except TimeoutError:
            await ctx.log.event(f"check {number} timed out")
            fail_span(span, "check timed out", "timeout")
        except Exception as exc:
            # it may quote the check's command or a server's reply: masked for the span and
            # the attempt's log alike
            message = rt.definition.mask(str(exc) or type(exc).__name__)
            fail_span(span, message, type(exc).__qualname__)
            if isinstance(exc, HeadraceError) and not exc.transient:
                raise
            await ctx.log.event(f"check {number} failed: {message}")
        span.set_attribute("headrace.check.result", satisfied)
    await ctx.log.event(f"check {number}: {'true' if satisfied else 'false'}")
    return satisfied


@dataclass
class PreconditionPoll:
    """The body of a precondition's attempt: check, wait as the plan says, check again.
    ``failure`` says why it gave up (None when the precondition was met)."""

    rt: PipelineRuntime
    check: Check
    plan: PollPlan
    checks: int = 0
    failure: str | None = None

    async def __call__(self, ctx: AttemptContext) -> None:
        while True:
            self.checks += 1
            if await check_once(self.rt, self.check, ctx, self.checks,
                                limit=self.plan.check_timeout, limiter=self.rt.limits.engine):
                return
            step = self.plan.after_false(self.checks, self.rt.now())
            if isinstance(step, str):
                self.failure = step
                return
            await self.rt.clock.sleep_until(step)
