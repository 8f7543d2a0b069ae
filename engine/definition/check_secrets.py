"""Validation of secrets given by reference: a ``*`` field whose value (after parameters are
substituted) is ``env:NAME`` or ``file:/path`` must name a variable that is set or a file that
can be read, here.

Where the secret comes from is a fact of the machine that runs the pipeline, not of the
definition, so a reference that cannot be resolved is a template problem (as a parameter
without a value is): a warning in ``validate`` with the "not ready to run" line, an error in
``plan``, ``run`` and activation, which refuse it before anything runs. The finding names the
object, the field and the variable or file, never a value.
"""

from __future__ import annotations

from connectors.sql import secret_problem
from engine.definition.findings import Findings
from engine.definition.graph import field_owner
from engine.definition.reader import Ref
from engine.definition.scope import text_before_run
from engine.definition.types import is_secret_field


def check_secret_references(object_id: str, ctx: Findings) -> None:
    """The references among ``object_id``'s effective ``*`` fields resolve here."""
    for name, values in ctx.definition.effective(object_id).items():
        if not is_secret_field(name):
            continue
        for value in values:
            if isinstance(value, Ref):
                continue
            known = text_before_run(ctx.definition, object_id, value)
            if known is None:
                continue
            text = known[0]
            problem = secret_problem(text)
            if problem is None:
                continue
            via = "" if value == text else " (the value of a parameter refers to it)"
            ctx.template_problem(f"{problem}{via}",
                                 field_owner(ctx.definition, object_id, name), name)
