"""Validation of secrets given by reference: a masked value as written (a ``*`` field's, a
``*`` parameter's value or default) that is ``env:NAME`` or ``file:/path`` must name a
variable that is set or a file that can be read, here. (The parameters' own are checked by
:meth:`~engine.definition.parameters.Parameters.check_secret_references`, with this module's
:func:`secret_problem`.)

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


def may_be_reference(text: str) -> bool:
    """Cheap first look: only such texts can be ``env:``/``file:`` references (the
    ``connectors.sql`` package, which reads them, loads pydantic: ``validate`` imports it only
    when a definition needs it)."""
    return text.startswith(("env:", "file:"))


def may_name_connection(text: str) -> bool:
    """Cheap first look: only such texts can name a connection (``scheme://@name``)."""
    return "://@" in text


def uses_named_connection(fields: Mapping[str, list[FieldValue]]) -> bool:
    """The ``connectionString`` among ``fields`` names a connection (as written)."""
    values = [v for v in fields.get(CONNECTION_FIELD, ())
              if isinstance(v, str) and may_name_connection(v)]
    if not values:
        return False
    from connectors.sql import named_host

    return any(named_host(v) is not None for v in values)


def check_secret_references(object_id: str, ctx: Findings) -> None:
    """The references among ``object_id``'s own ``*`` fields resolve here (each is checked on
    the object that writes it), and so does the named connection a ``connectionString`` uses
    (``jdbc:postgresql://@warehouse/dw``)."""
    values = ctx.definition.effective(object_id).get(CONNECTION_FIELD)
    if values:
        _check_named_connection(object_id, values, ctx)
    for name, own in ctx.definition.objects[object_id].fields.items():
        if not is_secret_field(name):
            continue
        for value in own:
            if isinstance(value, str) and may_be_reference(value):
                problem = secret_problem(value)
                if problem is not None:
                    ctx.template_problem(problem, object_id, name)


def secret_problem(value: str) -> str | None:
    """Why the reference ``value`` cannot be read here (None: it can, or it is none)."""
    if not may_be_reference(value):
        return None
    from connectors.sql import secret_problem as problem_of

    return problem_of(value)


def _check_named_connection(object_id: str, values: list[FieldValue], ctx: Findings) -> None:
    for value in values:
        if isinstance(value, Ref):
            continue
        known = text_before_run(ctx.definition, object_id, value)
        if known is None or not may_name_connection(known[0]):
            continue
        from connectors.sql import named_host, parse_sql_url

        if named_host(known[0]) is None:
            continue
        try:
            parse_sql_url(known[0])
        except ConfigError as exc:
            ctx.template_problem(exc.message, field_owner(ctx.definition, object_id,
                                                          CONNECTION_FIELD), CONNECTION_FIELD)
