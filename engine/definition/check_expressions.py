"""Validation of ``#{...}`` expressions in field values: syntax (with the character position),
unknown functions and arity, and whether every name path resolves (runtime fields, ``node``
in actions and preconditions, fields through references, parameters)."""

from __future__ import annotations

from engine.definition.document import DEFAULT_ID, Definition
from engine.definition.expressions import Reference, parse_template
from engine.definition.findings import Findings, suggest, suggest_or_list
from engine.definition.graph import field_owner, node_referrers
from engine.definition.reader import Ref
from engine.definition.types import ATTEMPT_FIELDS, RUNTIME_FIELDS, is_user_field
from engine.errors import ExpressionSyntaxError


def check_expression(object_id: str, field: str, text: str, ctx: Findings) -> None:
    definition = ctx.definition
    owner = field_owner(definition, object_id, field)
    try:
        template = parse_template(text)
        references = template.references()
        function_problems = template.function_problems()
    except ExpressionSyntaxError as exc:
        ctx.error(f"expression syntax error at character {exc.position}: {exc.message}",
                  owner, field)
        return
    except RecursionError:
        ctx.error("expression syntax error: nested too deeply to read", owner, field)
        return
    for problem in function_problems:
        ctx.error(f"at character {problem.position}: {problem.message}", owner, field)
    typed = definition.type_of(object_id) is not None
    for reference in references:
        found = _reference_problem(object_id, reference, ctx)
        if found is None:
            continue
        severity, message = found
        if (not typed and owner == object_id and object_id != DEFAULT_ID
                and object_id in definition.parents):
            continue  # an untyped parent: names resolve in its children, which report problems
        spec = definition.spec(object_id)
        if severity == "error":
            ctx.error(message, owner, field)
        elif spec is not None and spec.runs == "ignore":
            ctx.warn(message, owner, field)  # never evaluated: headrace ignores the object
        else:
            ctx.template_problem(message, owner, field)


def _reference_problem(object_id: str, reference: Reference,
                       ctx: Findings) -> tuple[str, str] | None:
    definition = ctx.definition
    path = reference.path
    head = path[0]
    where = f"#{{{'.'.join(path)}}} at character {reference.position}"
    if head.startswith("@"):
        if head not in RUNTIME_FIELDS:
            return "error", (f"{where}: unknown runtime field {head!r}"
                             f"{suggest(head, RUNTIME_FIELDS)}")
        return None
    if head == "node":
        referrers = node_referrers(definition, object_id)
        category = definition.category(object_id)
        if category not in ("action", "precondition") and definition.type_of(object_id):
            return "error", (f"{where}: 'node' is only defined in actions and preconditions "
                             "(the object that triggered them)")
        if len(path) == 1 or not referrers:
            return None
        # every object that uses this action or precondition must have what it reads
        missing = [r for r in referrers if not _path_resolves(r, path[1:], definition)]
        if not missing:
            return None
        names: set[str] = set()
        for referrer in missing:
            names.update(definition.effective(referrer))
        hint = suggest(path[1], names | RUNTIME_FIELDS) or suggest_or_list(
            path[1], names, "their fields")
        some = "" if len(missing) == len(referrers) else "some of "
        return "error", (f"{where}: {path[1]!r} is not a field of {some}the objects that use "
                         f"{object_id!r} ({', '.join(sorted(missing))}){hint}")
    if head in ("id", "name", "type") or head in ATTEMPT_FIELDS:
        return None
    params = definition.parameters
    fields = definition.effective(object_id)
    base = head[1:] if head.startswith("*") else head
    if params.known(head):
        decl = params.decl(head)
        if (params.raw_value(head) is None and head not in fields and f"*{base}" not in fields
                and not (decl is not None and decl.optional)):
            return "warning", f"{where}: parameter {head!r} has no value"
        if len(path) > 1:
            return "error", f"{where}: parameter {head!r} has no fields"
        return None
    if head in fields or base in fields or f"*{base}" in fields:
        if len(path) == 1:
            return None
        if _path_resolves(object_id, path, definition):
            return None
        targets = definition.refs(object_id, head)
        if not targets:
            return "error", f"{where}: {head!r} is not a reference, so it has no fields"
        names = set()
        for target in targets:
            names.update(definition.effective(target))
        hint = suggest(path[1], names | RUNTIME_FIELDS) or suggest_or_list(
            path[1], names, "its fields")
        return "error", (f"{where}: {path[1]!r} is not a field of {', '.join(targets)}{hint}")
    if is_user_field(base):
        return "warning", (f"{where}: {head!r} resolves to nothing (no field, no parameter and "
                           "no value of that name)")
    candidates = set(fields) | set(params.names())
    hint = suggest(head, candidates | {"node", "input", "output", "parent"}) or suggest_or_list(
        head, candidates, "names it can use")
    return "error", f"{where}: unknown name {head!r}{hint}"


def _path_resolves(object_id: str, path: tuple[str, ...], definition: Definition) -> bool:
    current = [object_id]
    for index, name in enumerate(path):
        last = index == len(path) - 1
        if name.startswith("@") or name in ("id", "name", "type") or name in ATTEMPT_FIELDS:
            return last or name == "parent"
        next_ids: list[str] = []
        found = False
        for oid in current:
            fields = definition.effective(oid)
            if name in fields or (name.startswith("*") and name[1:] in fields):
                found = True
                next_ids.extend(definition.refs(oid, name))
            elif name == "parent":
                parents = definition.objects[oid].fields.get("parent", [])
                if parents and isinstance(parents[0], Ref):
                    found = True
                    next_ids.append(parents[0].id)
            elif definition.parameters.known(name):
                found = True
        if not found:
            return False
        if not last and not next_ids:
            return False
        current = [n for n in next_ids if n in definition]
    return True
