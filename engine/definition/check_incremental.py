"""Validation of the incremental-copy fields, headrace extensions: ``incrementalColumn``,
``incrementalKey`` and ``lookback`` on a CopyActivity, or on the SQL data node that is its
input.

Each object's three fields go together: a key or a look-back without a column on the same
object is an error (they are never combined across objects). When both the activity and its
input set ``incrementalColumn``, the activity's set is used whole and the node's ignored (a
warning). A look-back that is not a period (``30s``, ``5m``, ``1h``, ``2d``, ``5 minutes``) is
an error here when written as is, and at run time when it comes from an expression.
"""

from __future__ import annotations

from engine.definition.findings import Findings, shown
from engine.definition.reader import Ref
from engine.errors import ScheduleError
from engine.schedule import parse_lookback

FIELDS = ("incrementalColumn", "incrementalKey", "lookback")
#: the types that take them: the activity, and the SQL data nodes it reads
TYPES = ("CopyActivity", "SqlDataNode", "MySqlDataNode")


def check_incremental(object_id: str, ctx: Findings) -> None:
    definition = ctx.definition
    type_name = definition.type_of(object_id)
    if type_name not in TYPES:
        return
    fields = definition.effective(object_id)
    present = [name for name in FIELDS if name in fields]
    if not present:
        return
    column = fields.get("incrementalColumn")
    if column is None:
        ctx.error(f"{present[0]!r} goes with 'incrementalColumn' on the same object (an "
                  "incremental copy's column, key and look-back are set together)",
                  object_id, present[0])
    elif all(isinstance(v, str) and not v.strip() for v in column):
        ctx.error("'incrementalColumn' is empty: name the column to copy incrementally by",
                  object_id, "incrementalColumn")
    for value in fields.get("lookback", ()):
        if isinstance(value, Ref) or "#{" in value:
            continue  # a reference is refused by the field's kind; expressions at run time
        try:
            parse_lookback(value)
        except ScheduleError as exc:
            ctx.error(f"'lookback': {exc}" if value.strip() else
                      f"'lookback': {shown('lookback', value)} is empty", object_id,
                      "lookback")
    if type_name != "CopyActivity" and column is not None:
        _check_node(object_id, ctx)


def _check_node(node_id: str, ctx: Findings) -> None:
    """A data node's fields are read only by the CopyActivity it is the input of."""
    definition = ctx.definition
    readers = [oid for oid in definition.objects
               if definition.type_of(oid) == "CopyActivity"
               and node_id in definition.refs(oid, "input")]
    if not readers:
        ctx.warn("'incrementalColumn' on a data node is read only when the node is a "
                 "CopyActivity's input; here it is ignored", node_id, "incrementalColumn")
    for activity in readers:
        if "incrementalColumn" in definition.effective(activity):
            ctx.warn(f"{activity!r} sets 'incrementalColumn' too: the activity's incremental "
                     "fields are used, this node's are ignored", node_id,
                     "incrementalColumn")
