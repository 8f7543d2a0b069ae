"""Validation of secrets given by reference: a ``*`` field whose value (after parameters are
substituted) is ``env:NAME`` or ``file:/path`` must name a variable that is set or a file that
can be read, here.

A ``connectionString`` that names a connection (``jdbc:mysql://@shop/db``) must name one that
is defined here (``HEADRACE_CONN_SHOP`` or the connections file).

Where the secret comes from is a fact of the machine that runs the pipeline, not of the
definition, so a reference that cannot be resolved is a template problem (as a parameter
without a value is): a warning in ``validate`` with the "not ready to run" line, an error in
``plan``, ``run`` and activation, which refuse it before anything runs. The finding names the
object, the field and the variable or file, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.errors import ConfigError
from connectors.sql import named_host, parse_sql_url, secret_problem
from engine.definition.findings import Findings
from engine.definition.graph import field_owner
from engine.definition.reader import FieldValue, Ref
from engine.definition.scope import text_before_run
from engine.definition.types import is_secret_field

#: the field of database objects and data nodes that holds the database's URL
CONNECTION_FIELD = "connectionString"
#: what a named connection gives, so a database object that uses one needs neither (a
#: headrace extension: AWS requires both); given anyway, they win over the connection's
CREDENTIAL_FIELDS = ("username", "*password")


def uses_named_connection(fields: Mapping[str, list[FieldValue]]) -> bool:
    """The ``connectionString`` among ``fields`` names a connection (as written)."""
    return any(isinstance(v, str) and named_host(v) is not None
               for v in fields.get(CONNECTION_FIELD, ()))


def check_secret_references(object_id: str, ctx: Findings) -> None:
    """The references among ``object_id``'s effective ``*`` fields resolve here, and so does
    the named connection a ``connectionString`` uses (``jdbc:postgresql://@warehouse/dw``)."""
    for name, values in ctx.definition.effective(object_id).items():
        if name == CONNECTION_FIELD:
            _check_named_connection(object_id, values, ctx)
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


def _check_named_connection(object_id: str, values: list[FieldValue], ctx: Findings) -> None:
    for value in values:
        if isinstance(value, Ref):
            continue
        known = text_before_run(ctx.definition, object_id, value)
        if known is None or named_host(known[0]) is None:
            continue
        try:
            parse_sql_url(known[0])
        except ConfigError as exc:
            ctx.template_problem(exc.message, field_owner(ctx.definition, object_id,
                                                          CONNECTION_FIELD), CONNECTION_FIELD)
