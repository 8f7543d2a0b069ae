"""The object graph of a definition: who waits for whom, who triggers an action or is guarded by
a precondition, and which ancestor owns an inherited field."""

from __future__ import annotations

from engine.definition.document import Definition


def field_owner(definition: Definition, object_id: str, field: str) -> str:
    """The object in the parent chain whose own field this is."""
    return definition.owner(object_id, field)


def node_referrers(definition: Definition, object_id: str) -> list[str]:
    """Objects whose effective action or precondition fields name ``object_id``: the objects
    ``#{node...}`` can stand for in an action or a precondition."""
    return definition.action_referrers(object_id)


def dependency_graph(definition: Definition) -> dict[str, list[str]]:
    """object -> objects it waits for: dependsOn, inputs, and (for a data node) the activities
    that output it."""
    graph: dict[str, list[str]] = {oid: [] for oid in definition.objects}
    for oid in definition.objects:
        if definition.type_of(oid) is None:
            continue
        for key in ("dependsOn", "input"):
            for target in definition.refs(oid, key):
                if target in graph and target not in graph[oid]:
                    graph[oid].append(target)
        for target in definition.refs(oid, "output"):
            if target in graph and oid not in graph[target]:
                graph[target].append(oid)
    return graph


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle as ``[a, b, c, a]`` (a waits for b, ...), or None. Iterative depth-first
    search, so a chain of thousands of objects needs no deep recursion."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for root in graph:
        if color[root] != white:
            continue
        path: list[str] = [root]
        pending: list[list[str]] = [list(reversed(graph.get(root, [])))]
        color[root] = grey
        while path:
            successors = pending[-1]
            if not successors:
                color[path.pop()] = black
                pending.pop()
                continue
            nxt = successors.pop()
            state = color.get(nxt)
            if state == grey:
                return [*path[path.index(nxt):], nxt]
            if state == white:
                color[nxt] = grey
                path.append(nxt)
                pending.append(list(reversed(graph.get(nxt, []))))
    return None
