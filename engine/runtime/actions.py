"""onSuccess / onFail / onLateAction: SnsAlarm publishes, Terminate cancels.

An SnsAlarm's ``subject``, ``message`` and ``topicArn`` are evaluated with ``node`` bound to the
instance that triggered it (``#{node.name}``, ``#{node.@scheduledStartTime}``,
``#{node.errorMessage}``). A failure to evaluate or deliver an alarm is logged with the reason;
it never changes the instance's outcome.
"""

from __future__ import annotations

import logging
from typing import Protocol

import anyio

from engine.actions.notify import Alarm
from engine.definition.scope import EvalContext, ObjectScope, render
from engine.errors import HeadraceError
from engine.runtime.context import PipelineRuntime
from engine.store.records import InstanceRecord

log = logging.getLogger("headrace.actions")

#: seconds an alarm may take to deliver
PUBLISH_TIMEOUT = 30.0


class Terminable(Protocol):
    """What a Terminate action ends: the instance that fired it (its actor)."""

    async def terminate(self, reason: str) -> None: ...


async def fire_actions(rt: PipelineRuntime, inst: InstanceRecord, field: str,
                       actor: Terminable | None = None) -> int:
    """Run every action named by ``field`` of the instance's object; returns how many ran."""
    fired = 0
    for action_id in rt.definition.refs(inst.object_id, field):
        action_type = rt.definition.type_of(action_id)
        try:
            if action_type == "SnsAlarm":
                # shielded (and bounded): a shutdown must not swallow an alarm half-sent
                with anyio.move_on_after(PUBLISH_TIMEOUT, shield=True) as scope, \
                        rt.telemetry.action_span(inst, action_id, field):
                    await rt.notifier.publish(_alarm(rt, inst, action_id))
                if scope.cancelled_caught:
                    raise TimeoutError(f"not delivered within {PUBLISH_TIMEOUT:g} s")
            elif action_type == "Terminate":
                if actor is not None:
                    await actor.terminate(f"terminated by {action_id} ({field})")
            else:
                log.warning("%s: %s names %s of type %s, which is not an action", inst.id,
                            field, action_id, action_type)
                continue
            fired += 1
            rt.events.append(f"{field} {action_id} for {inst.id}")
        except Exception as exc:
            log.error("%s: action %s (%s) failed: %s", inst.id, action_id, field, exc)
    return fired


def _alarm(rt: PipelineRuntime, inst: InstanceRecord, action_id: str) -> Alarm:
    # an alarm shared by onFail and onSuccess/onLateAction reads #{node.errorMessage}: empty
    # when the instance has no error, rather than an evaluation error that loses the alarm
    node = rt.scope(inst, None, **({} if inst.error else {"errorMessage": ""}))
    scope = ObjectScope(EvalContext(rt.definition), action_id, node.runtime, node)

    def text(name: str) -> str:
        try:
            value = scope.lookup(name)
        except KeyError:
            return ""
        except HeadraceError as exc:  # still deliver the alarm, with the reason
            raw = rt.definition.first(action_id, name)
            log.error("%s: %s of %s cannot be evaluated: %s", inst.id, name, action_id, exc)
            return f"{raw if isinstance(raw, str) else ''} [not evaluated: {exc}]"
        return render(value) if not isinstance(value, list) else ", ".join(
            render(v) for v in value)

    topic, subject, message = text("topicArn"), text("subject"), text("message")
    if scope.ctx.secret_used:  # an alarm never carries a masked value
        subject, message = "****", "****"
    return Alarm(pipeline_id=rt.pipeline_id, action_id=action_id, topic_arn=topic,
                 subject=subject, message=message, node=inst.id)
