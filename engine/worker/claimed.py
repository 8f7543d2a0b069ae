"""One claimed instance, run by a worker process: an activity's attempt, or one check of a
precondition.

The worker holds the instance under a :class:`~engine.store.records.Fence`; every write goes
through the store under that fence, so a worker that lost its claim (its lease lapsed while it
was paused, and another worker claimed the instance) changes nothing. Outputs check the claim
too before they become visible (:data:`connectors.base.OUTPUT_FENCE`): the SQL loads inside
their own transaction against the token recorded in ``headrace_checkpoints``; S3 and file
outputs complete inside a store transaction that holds the instance's row locked under the
claim's token and an unexpired lease (:func:`_holder`), so that the reaper and the claimers
(both ``FOR UPDATE SKIP LOCKED``) cannot take the instance over between the check and the
completion.

A precondition's attempt spans claims: each claim runs one check; a check that is false puts
the instance back in the queue for when the next check is due (the wait is in the store, no
worker sleeps through it), with the number of checks made so far.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import anyio

from connectors.base import OUTPUT_FENCE, OutputFence
from engine.activities.base import ACTIVITIES, PRECONDITIONS, AttemptContext
from engine.errors import RunError, StoreError
from engine.runtime.attempt import (
    Attempt,
    AttemptHost,
    RetryPolicy,
    interrupt_lost_attempts,
    kill_orphans,
)
from engine.runtime.context import PipelineRuntime
from engine.runtime.crashpoints import ENV as CRASH_ENV
from engine.runtime.precondition import PollPlan, check_once
from engine.store import queue
from engine.store.records import AttemptRecord, AttemptStatus, Fence, InstanceRecord, Status
from engine.store.schema import db_now

log = logging.getLogger("headrace.worker")


class LeaseLost(RunError):
    """This worker no longer holds the instance: an output must not be completed."""


@dataclass
class Claim:
    """A worker's hold on one instance while it runs it."""

    rec: InstanceRecord
    fence: Fence
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    attempt: Attempt | None = None
    #: why the attempt is being stopped (the scheduler's TRY_CANCEL), when it is
    reason: str = "canceled"
    lost: bool = False
    handing_back: bool = False
    #: the holder is writing its last word (the attempt's end, a hand-back): a renewal that
    #: misses the instance from now on is that write, not a lost lease
    ending: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.rec.pipeline_id, self.rec.id

    def lose(self) -> None:
        """The claim is gone (lapsed, claimed by another): stop writing, stop working."""
        self.lost = True
        if self.attempt is not None:
            self.attempt.lost = True
        self.scope.cancel()

    def cancel(self, reason: str) -> None:
        self.reason = reason
        self.scope.cancel()


async def run_claimed(rt: PipelineRuntime, host: AttemptHost, claim: Claim) -> None:
    """Run what ``claim`` holds; the outcome is recorded under its fence."""
    rec = claim.rec
    if rec.category == "precondition":
        await _one_check(rt, host, claim)
        return
    runner = ACTIVITIES.get(rec.type)
    if runner is None:
        await queue.release(rt.store, rec.pipeline_id, rec.id, claim.fence,
                            status=Status.FAILED, actual_end=rt.now(),
                            error=f"this worker cannot run objects of type {rec.type}")
        return
    policy = RetryPolicy.of(rt, rec)
    if rec.status == Status.RUNNING:  # its last holder let go without ending its attempt
        await interrupt_lost_attempts(rt, rec)
        if not await queue.update_held(rt.store, rec.pipeline_id, rec.id, claim.fence,
                                       status=Status.WAITING_FOR_RUNNER):
            return
        rec.status = Status.WAITING_FOR_RUNNER
    await kill_orphans(rt, rec)
    attempt = _attempt(rt, host, claim)
    if not await attempt.begin():
        await _let_go(rt, claim)
        return
    token = OUTPUT_FENCE.set(OutputFence(claim.fence.token, _holder(rt, claim)))
    try:
        outcome = await attempt.run_activity(runner, policy.timeout)
    finally:
        OUTPUT_FENCE.reset(token)
    claim.ending = True
    _, recorded = await attempt.settle(policy, outcome)
    if not recorded:
        log.error("worker %s lost the lease on %s (lease version %d): the outcome of attempt "
                  "%d is not recorded", claim.fence.worker_id, rec.id, claim.fence.token,
                  attempt.number)


async def _one_check(rt: PipelineRuntime, host: AttemptHost, claim: Claim) -> None:
    rec = claim.rec
    check = PRECONDITIONS.get(rec.type)
    if check is None:
        await queue.release(rt.store, rec.pipeline_id, rec.id, claim.fence,
                            status=Status.FAILED, actual_end=rt.now(),
                            error=f"this worker cannot check preconditions of type {rec.type}")
        return
    existing = None
    if rec.status == Status.RUNNING:  # a later check of an attempt begun by an earlier claim
        running = [a for a in await rt.store.list_attempts(rec.pipeline_id, rec.id)
                   if a.status == AttemptStatus.RUNNING]
        existing = running[-1] if running else None
    attempt = _attempt(rt, host, claim, existing)
    if existing is None:
        if not await attempt.begin():
            await _let_go(rt, claim)
            return
        rec.checks = 0
    plan = PollPlan.of(rt, rec, attempt.record.started_at or rt.now())
    number = rec.checks + 1
    met = False

    async def body(ctx: AttemptContext) -> None:
        nonlocal met
        met = await check_once(rt, check, ctx, number, limit=plan.check_timeout,
                               limiter=rt.limits.engine)

    outcome = await attempt.run(body, None, last=False)
    claim.ending = True
    now = rt.now()
    step: datetime | str
    if met:
        attempt.record.status, attempt.record.ended_at = AttemptStatus.FINISHED, now
        await attempt.log.event(f"attempt {attempt.number} ended FINISHED")
        await attempt.end(Status.FINISHED, actual_end=now, error=None)
        return
    step = outcome.error if not outcome.ok and outcome.error else plan.after_false(number, now)
    if isinstance(step, str):
        attempt.record.status, attempt.record.ended_at = AttemptStatus.FAILED, now
        attempt.record.error = step
        await attempt.log.event(f"attempt {attempt.number} ended FAILED: {step}")
        await attempt.end(Status.FAILED, actual_end=now, error=step)
        return
    if not await queue.release(rt.store, rec.pipeline_id, rec.id, claim.fence,
                               requeue_in=max(0.0, (step - now).total_seconds()),
                               checks=number):
        log.error("%s: check %d not recorded: this worker no longer holds the instance",
                  rec.id, number)


def _attempt(rt: PipelineRuntime, host: AttemptHost, claim: Claim,
             existing: AttemptRecord | None = None) -> Attempt:
    attempt = Attempt(rt, claim.rec, host, publish=lambda: None,
                      cancel_reason=lambda: claim.reason, fence=claim.fence,
                      existing=existing)
    claim.attempt = attempt
    return attempt


async def _let_go(rt: PipelineRuntime, claim: Claim) -> None:
    """The instance was not where the claim found it (canceled, marked finished meanwhile):
    let go of it without changing it."""
    claim.ending = True
    rec = await rt.store.get_instance(claim.rec.pipeline_id, claim.rec.id)
    await queue.release(rt.store, rec.pipeline_id, rec.id, claim.fence,
                        requeue_in=0.0 if rec.status in (Status.WAITING_FOR_RUNNER,
                                                         Status.RUNNING) else None)


async def hand_back(rt: PipelineRuntime, claim: Claim) -> None:
    """Give an instance whose attempt never began back to the queue (a draining worker)."""
    claim.ending = True
    if not claim.lost:
        await queue.release(rt.store, claim.rec.pipeline_id, claim.rec.id, claim.fence,
                            requeue_in=0.0)


#: the longest an output's completion keeps the instance's row locked: a worker paused inside
#: it for longer loses the lock (PostgreSQL ends its store session), so that a paused process
#: cannot keep the instance from being taken over for ever
HOLD_LIMIT_SECONDS = 600


_stopped: set[str] = set()


def _stop_point(name: str) -> None:
    """Tests only: the process stops itself (SIGSTOP) the first time it passes ``name`` when
    ``HEADRACE_CRASH_POINT`` is ``name``, as a paused process would (a test sends SIGCONT)."""
    if os.environ.get(CRASH_ENV) == name and name not in _stopped:
        _stopped.add(name)
        os.kill(os.getpid(), signal.SIGSTOP)


def _holder(rt: PipelineRuntime, claim: Claim) -> OutputFence.Hold:
    """The claim held around an output's completion.

    On PostgreSQL a store transaction locks the instance's row (``FOR KEY SHARE``) under the
    claim's token and an unexpired lease, and stays open until the output is visible. The
    reaper and the claimers skip locked rows, so nobody takes the instance over meanwhile;
    the heartbeat's renewals and a scheduler's cancel requests (plain updates of other
    columns) are not blocked, nor are this claim's other completions. On SQLite (one process,
    no other worker) the check alone."""
    store = rt.store
    pipeline_id, instance_id = claim.key

    def lost() -> LeaseLost:
        return LeaseLost(f"{instance_id}: this worker lost its lease on the instance (lease "
                         f"version {claim.fence.token}); its output is not completed",
                         transient=False)

    @asynccontextmanager
    async def hold() -> AsyncIterator[None]:
        _stop_point("output-hold")
        if claim.lost:
            raise lost()
        if store.backend.dialect != "postgresql":
            if not await queue.holds(store, pipeline_id, instance_id, claim.fence):
                raise lost()
            yield
            return
        where, params = claim.fence.where()
        entered = False
        failed: Exception | None = None
        try:
            async with store.backend.transaction() as tx:
                if claim.lost or not await tx.fetch(
                        f"SELECT 1 FROM hr_instances WHERE pipeline_id = ? AND id = ? AND "
                        f"{where} AND lease_until > {db_now('postgresql')} FOR KEY SHARE",
                        pipeline_id, instance_id, *params):
                    raise lost()
                await tx.fetch("SELECT set_config('idle_in_transaction_session_timeout', ?, "
                               "true)", str(HOLD_LIMIT_SECONDS * 1000))
                entered = True
                _stop_point("output-held")
                try:
                    yield
                except Exception as exc:
                    failed = exc
                    raise
        except Exception as exc:
            if failed is not None and exc is not failed:  # the store wrapped it: unwrap
                raise failed from failed.__cause__
            if not (entered and failed is None and isinstance(exc, StoreError)):
                raise
            # the output is visible; only the end of the lock's transaction failed (the
            # attempt's own writes are fenced by the store as always)
            log.warning("%s: output completed; its store lock ended with an error: %s",
                        instance_id, exc)
    return hold
