"""Name resolution for ``#{...}`` expressions: the :class:`~engine.definition.expressions.Scope`
of one object (or one instance of it) in a definition.

Lookup order for a bare name (reference section 5, inferred there): a parameter with a value,
then a field of the object (with inheritance), then a declared parameter without a value (an
error naming it). ``@name`` reads the instance's runtime fields; ``node`` is the object that
triggered an action or a precondition; a reference field yields the referenced object's scope,
so ``#{input.directoryPath}`` and ``#{node.output.directoryPath}`` walk the graph. A field whose
text holds expressions is evaluated in its own object's scope when it is read.

Reading a masked value (a ``*`` field or a ``*`` parameter) marks the evaluation as secret, so
callers can mask what they show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine.definition.document import Definition
from engine.definition.expressions import parse_template
from engine.definition.expressions import render as render_value
from engine.definition.parameters import typed
from engine.definition.reader import FieldValue, Ref
from engine.definition.types import ATTEMPT_FIELDS, RUNTIME_FIELDS, is_secret_field
from engine.errors import (
    ExpressionError,
    ExpressionEvalError,
    ExpressionSyntaxError,
    RuntimeOnlyField,
)

#: Runtime fields of one instance: ``{"@scheduledStartTime": datetime, "@pipelineId": str, ...}``.
Runtime = Mapping[str, object]

#: How many fields one evaluation may read through others (``#{input.myX}`` where ``myX`` reads
#: another field...): decision, far beyond real definitions, and well within Python's stack.
MAX_REFERENCE_DEPTH = 32


def evaluate_text(text: str, scope: ObjectScope) -> str | list[str]:
    """Parse and evaluate field text in ``scope``. An expression nested deeper than the parser
    or the evaluator can follow is an :class:`ExpressionSyntaxError`, not a RecursionError."""
    try:
        return parse_template(text).evaluate(scope)
    except RecursionError:
        raise ExpressionSyntaxError("the expression is nested too deeply to evaluate",
                                    0) from None


def text_before_run(definition: Definition, object_id: str,
                    value: str) -> tuple[str, bool] | None:
    """``value`` of a field of ``object_id`` as validation can know it: its parameters
    substituted, what only a running instance knows (``#{@scheduledStartTime}``) kept as
    written. Returns (text, whether a masked value took part); None when it cannot be
    evaluated before the run (an error the expression checks report, a parameter without a
    value, a runtime field at its start)."""
    if "#{" not in value:
        return value, False
    evaluation = EvalContext(definition, runtime_placeholders=True)
    try:
        result = evaluate_text(value, ObjectScope(evaluation, object_id))
    except (ExpressionError, KeyError, RecursionError):
        return None
    text = result[0] if isinstance(result, list) and result else result
    if not isinstance(text, str) or text.startswith("#{"):
        return None
    return text, evaluation.secret_used


@dataclass
class EvalContext:
    """State shared by the scopes of one evaluation."""

    definition: Definition
    #: runtime fields of a referenced object, given the referencing instance's runtime
    runtime_of: Callable[[str, Runtime], Runtime] | None = None
    secret_used: bool = False
    #: no instance runs (``plan``, ``eval``): a runtime field the scope was not given is
    #: :class:`RuntimeOnlyField` (its expression kept as written), not an unknown name
    runtime_placeholders: bool = False
    #: an attempt's evaluation (unmasked): reads the secret a masked value as written names
    #: (``env:NAME``, ``file:/path``); None everywhere else, where masked values are shown
    #: as ``****`` anyway and a reference stays as written
    read_secret: Callable[[str], str] | None = None
    #: the runtime-only names read so far, in order (with ``runtime_placeholders``)
    runtime_only: list[str] = field(default_factory=list)
    _stack: list[tuple[str, str]] = field(default_factory=list)

    def evaluate_field(self, scope: ObjectScope, name: str, text: str) -> object:
        key = (scope.object_id, name)
        if key in self._stack:
            cycle = " -> ".join(f"{o}.{f}" for o, f in [*self._stack, key])
            raise ExpressionEvalError(f"circular reference: {cycle}")
        if len(self._stack) >= MAX_REFERENCE_DEPTH:
            first = " -> ".join(f"{o}.{f}" for o, f in self._stack[:3])
            raise ExpressionEvalError(f"fields read through more than {MAX_REFERENCE_DEPTH} "
                                      f"other fields ({first} -> ...)")
        self._stack.append(key)
        try:
            return parse_template(text).evaluate(scope)
        finally:
            self._stack.pop()


class ObjectScope:
    """Resolves names for one object in one instance's context."""

    __slots__ = ("ctx", "node", "object_id", "runtime")

    def __init__(self, ctx: EvalContext, object_id: str, runtime: Runtime | None = None,
                 node: ObjectScope | None = None) -> None:
        self.ctx = ctx
        self.object_id = object_id
        self.runtime: Runtime = runtime or {}
        self.node = node

    def __repr__(self) -> str:
        return f"<ObjectScope {self.object_id}>"

    # --- the Scope protocol --------------------------------------------------------------

    def lookup(self, name: str) -> object:
        definition = self.ctx.definition
        if name.startswith("@"):
            return self._runtime(name)
        if name == "node":
            if self.node is None:
                raise KeyError(name)
            # Evaluate the node in this evaluation's context, so that reading a secret through
            # #{node...} marks this evaluation as secret.
            return ObjectScope(self.ctx, self.node.object_id, self.node.runtime, self.node.node)
        if name == "id":
            return self.object_id
        if name == "name":
            obj = definition.objects.get(self.object_id)
            return obj.name if obj is not None else self.object_id
        if name in ATTEMPT_FIELDS and name in self.runtime:
            return self.runtime[name]
        params = definition.parameters
        fields = definition.effective(self.object_id) if self.object_id in definition else {}
        if params.known(name):
            values = params.raw_value(name)
            if values is not None:
                return self._parameter(name, values)
        if name in fields:
            return self._field(name, fields[name])
        if name.startswith("*") and name[1:] in fields:
            return self._field(name[1:], fields[name[1:]])
        if not name.startswith("*") and f"*{name}" in fields:
            return self._field(f"*{name}", fields[f"*{name}"])
        decl = params.decl(name)
        if decl is not None and decl.optional:
            return [] if decl.is_array else ""  # an optional parameter left unset is empty
        if params.known(name):
            raise ExpressionEvalError(
                f"parameter {name!r} has no value (give it in \"values\", --parameter-values "
                "or --parameter-values-uri, or give the parameter a \"default\")")
        if name in ATTEMPT_FIELDS:
            self._runtime_only(name)
        raise KeyError(name)

    def names(self) -> list[str]:
        definition = self.ctx.definition
        names = set(definition.parameters.names())
        if self.object_id in definition:
            names.update(definition.effective(self.object_id))
        names.update(k for k in self.runtime if k.startswith("@"))
        names.update({"id", "name"})
        if self.node is not None:
            names.add("node")
        return sorted(names)

    # --- helpers -------------------------------------------------------------------------

    def _runtime(self, name: str) -> object:
        if name in self.runtime:
            return self.runtime[name]
        if name == "@id":
            return self.object_id
        if name == "@name":
            return self.lookup("name")
        if name in RUNTIME_FIELDS:
            self._runtime_only(name)
        raise KeyError(name)

    def _runtime_only(self, name: str) -> None:
        """Raise :class:`RuntimeOnlyField` where no instance runs; return otherwise."""
        if self.ctx.runtime_placeholders:
            if name not in self.ctx.runtime_only:
                self.ctx.runtime_only.append(name)
            raise RuntimeOnlyField(name)

    def _parameter(self, name: str, values: tuple[str, ...]) -> object:
        params = self.ctx.definition.parameters
        if params.is_secret(name):
            self.ctx.secret_used = True
        decl = params.decl(name)
        items: list[object] = []
        read = self.ctx.read_secret if params.is_secret(name) else None
        for value in values:
            if "#{" in value:
                items.append(self.ctx.evaluate_field(self, f"<parameter {name}>", value))
            else:
                items.append(typed(decl, read(value) if read else value))
        if (decl is not None and decl.is_array) or len(items) != 1:
            return _flatten(items)
        return items[0]

    def _field(self, name: str, values: list[FieldValue]) -> object:
        if is_secret_field(name):
            self.ctx.secret_used = True
        items = [self._value(name, v) for v in values]
        if len(items) == 1:
            return items[0]
        return _flatten(items)

    def _value(self, name: str, value: FieldValue) -> object:
        if isinstance(value, Ref):
            return self.scope_of(value.id)
        if "#{" in value:
            return self.ctx.evaluate_field(self, name, value)
        if self.ctx.read_secret is not None and is_secret_field(name):
            return self.ctx.read_secret(value)
        return value

    def scope_of(self, object_id: str) -> ObjectScope:
        """The scope of a referenced object, in the same instance context."""
        runtime = self.runtime
        if self.ctx.runtime_of is not None:
            runtime = self.ctx.runtime_of(object_id, self.runtime)
        elif runtime:
            runtime = {k: v for k, v in runtime.items() if k not in ("@id", "@status")}
        return ObjectScope(self.ctx, object_id, runtime, None)


def _flatten(items: list[object]) -> list[object]:
    out: list[object] = []
    for item in items:
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    return out


def evaluate_field(definition: Definition, object_id: str, name: str,
                   runtime: Runtime | None = None, node: ObjectScope | None = None,
                   ) -> tuple[str | list[str] | None, bool]:
    """Evaluate one effective field of an object to text (or a list of texts for multi-valued
    fields). Returns (value, secret) where ``secret`` says a masked value took part. References
    come back as the referenced id. A missing field gives None."""
    ctx = EvalContext(definition)
    scope = ObjectScope(ctx, object_id, runtime, node)
    values = definition.field(object_id, name)
    if not values:
        return None, False
    out: list[str] = []
    for value in values:
        if isinstance(value, Ref):
            out.append(value.id)
            continue
        try:
            result = ctx.evaluate_field(scope, name, value) if "#{" in value else value
        except RecursionError:
            raise ExpressionSyntaxError("the expression is nested too deeply to evaluate",
                                        0) from None
        if isinstance(result, list):
            out.extend(render(item) for item in result)
        else:
            out.append(render(result))
    secret = ctx.secret_used or is_secret_field(name)
    if len(values) == 1 and len(out) == 1 and not _is_list_valued(definition, object_id, name):
        return out[0], secret
    return out, secret


def _is_list_valued(definition: Definition, object_id: str, name: str) -> bool:
    spec = definition.spec(object_id)
    fs = spec.all_fields.get(name) if spec else None
    return bool(fs and fs.multi)


def render(value: object) -> str:
    """Text form of an evaluated value: a referenced object renders as its id."""
    if isinstance(value, ObjectScope):
        return value.object_id
    return render_value(value)
