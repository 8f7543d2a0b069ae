"""A definition as a drawable graph: its activities, data nodes, preconditions, resources and
actions, and the edges between them (``dependsOn``, ``input``/``output``, ``precondition``,
``runsOn``, ``onFail``/``onSuccess``/``onLateAction``; a ``workerGroup`` is a box around its
members), with inherited fields followed (a ``Default`` ``onFail`` is an edge from every
object that inherits it).
"""

from __future__ import annotations

from typing import Any

from engine.definition import Definition

#: the categories drawn (schedules, databases and the like are settings, not steps)
DRAWN = ("activity", "datanode", "precondition", "resource", "action")
#: field -> whether the edge runs from the field's object to its target (False: reversed, so
#: that arrows follow the data: an activity's input points at the activity)
EDGE_FIELDS: dict[str, bool] = {
    "dependsOn": False, "input": False, "output": True, "precondition": False,
    "runsOn": False, "onFail": True, "onSuccess": True, "onLateAction": True,
}


def pipeline_graph(definition: Definition, statuses: dict[str, str] | None = None,
                   ) -> dict[str, Any]:
    """``{"nodes": [{id, label, type, category, status, group?}], "edges": [{from, to,
    kind}]}``. ``statuses``: a status to show per component (the latest interval's).
    ``group`` is the node's ``workerGroup`` (when it has no ``runsOn``): drawn as a box around
    the group's nodes rather than as an edge from every one of them."""
    statuses = statuses or {}
    drawn = [oid for oid in definition.objects if definition.category(oid) in DRAWN]
    ids = set(drawn)
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    for oid in drawn:
        name = definition.first(oid, "name")
        nodes.append({"id": oid, "label": str(name) if isinstance(name, str) else oid,
                      "type": definition.type_of(oid) or "", "category":
                      definition.category(oid) or "", "status": statuses.get(oid, "")})
        for field_name, forward in EDGE_FIELDS.items():
            for target in definition.refs(oid, field_name):
                if target not in ids:
                    continue
                a, b = (oid, target) if forward else (target, oid)
                edges.append({"from": a, "to": b, "kind": field_name})
        group = definition.first(oid, "workerGroup")
        if isinstance(group, str) and group and not definition.refs(oid, "runsOn"):
            nodes[-1]["group"] = group
    return {"nodes": nodes, "edges": edges}
