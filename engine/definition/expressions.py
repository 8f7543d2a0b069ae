"""The ``#{...}`` expression language of AWS Data Pipeline: lexer, parser, AST, evaluator.

A field's text is a *template*: literal text with ``#{expression}`` parts. ``${...}``, ``$1`` and
``$VAR`` are shell/Hive variables and stay untouched; there is no escape for a literal ``#{``.

Grammar (lowest precedence first)::

    expression := sum
    sum        := product (('+' | '-') product)*
    product    := unary (('*' | '/') unary)*
    unary      := '-' unary | power
    power      := postfix ('^' unary)?                   right-associative
    postfix    := primary ('.' NAME ['(' args ')'])*    field access, method-call form
    primary    := NUMBER | STRING | NAME ['(' args ')'] | '(' expression ')' | '#{' expression '}'
    NAME       := ('@' | '*')? (letter | '_') (letter | digit | '_')*

So ``-2 ^ 2`` is ``-(2 ^ 2)``. ``x.f(a)`` is ``f(x, a)``; a nested ``#{x}`` inside an expression
is a parenthesised sub-expression. A ``*`` is a masked-parameter prefix where an operand is
expected and is directly followed by a name (``#{*myPassword}``), and multiplication elsewhere.
Numbers are decimal integers and decimals (``2``, ``1.5``, ``.5``; no exponent form). Strings use
single or double quotes; ``\\\\``, ``\\'``, ``\\"``, ``\\n``, ``\\t`` and ``\\r`` are escapes and
any other backslash stays as written (so regular expressions pass through).

Evaluation:

* Names resolve through :class:`Scope`: ``a.b.c`` looks ``a`` up in the scope, then ``b`` in the
  result when it is a Scope, mapping over a list of Scopes. An unknown name is an
  :class:`ExpressionEvalError` at the name's position, with a "did you mean" when the scope
  offers ``names()``. Function names are resolved at evaluation (an unknown function or wrong
  arity is an evaluation error, so a definition can carry a template it never evaluates);
  :meth:`Template.function_problems` finds these without a scope, for validation.
* ``+`` adds numbers and concatenates when either side is a String (the other side rendered
  first). ``-``, ``*``, ``/`` and ``^`` need numbers; a String that reads as a number counts as
  one. ``/`` on two integers truncates toward zero (Java); ``^`` gives a Double. Division by zero
  and results Java would print as Infinity or NaN are evaluation errors. Integers do not
  overflow (Java would wrap at 64 bits). DateTime arithmetic is only through functions.
* An expression that names an object (``#{input}``) writes the object's ``id``, as a reference
  field's value reads in the API; an object without one is an error.
* An operator or function with a list operand maps over the list (two lists: every
  combination, left to right). A template whose expressions give lists evaluates to one string
  per combination; a field whose whole text is ``#{myArr}`` gives the list itself.
* The definition layer decides types: a typed parameter (Integer, Double) should reach the
  scope as a number, so that ``#{myCount + 1}`` adds instead of concatenating.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple, Protocol

from engine.definition.functions import FUNCTIONS, as_number, render, type_name
from engine.errors import ExpressionEvalError, ExpressionSyntaxError, RuntimeOnlyField

__all__ = [
    "Reference",
    "Scope",
    "Template",
    "evaluate_expression",
    "evaluate_template",
    "parse_expression",
    "parse_template",
    "render",
]


class Scope(Protocol):
    """Resolves names for an evaluation. Implemented by the definition layer, not here.

    A scope may also offer ``names() -> Iterable[str]`` for "did you mean" suggestions.
    """

    def lookup(self, name: str) -> object:
        """The value of ``name``; raises KeyError when the name is unknown."""
        ...


@dataclass(frozen=True)
class Reference:
    """A name path an expression uses, and where it starts in the field text."""

    path: tuple[str, ...]
    position: int


# --------------------------------------------------------------------------------------------
# Lexer

# Token kinds.
_NUM, _STR, _NAME, _OP, _OPEN, _CLOSE, _END = "number", "string", "name", "op", "#{", "}", "end"
_OPERATORS = frozenset("+-*/^(),.")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


class _Token(NamedTuple):
    kind: str
    value: object
    pos: int
    end: int

    def describe(self) -> str:
        if self.kind == _END:
            return "the end of the text"
        if self.kind == _STR:
            return "a string"
        if self.kind == _NUM:
            return f"number {self.value!r}"
        if self.kind == _NAME:
            return f"name {self.value!r}"
        return f"{self.value!r}"


_SPACE = re.compile(r"[ \t\r\n]*")
_NAME_TEXT = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_TEXT = re.compile(r"([0-9]+)(\.[0-9]+)?|\.[0-9]+")


class _Lexer:
    """Reads tokens on demand, so the text after a closing ``}`` is never tokenized."""

    __slots__ = ("_peeked", "pos", "text")

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos
        self._peeked: _Token | None = None

    def peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._read()
        return self._peeked

    def next(self) -> _Token:
        token = self.peek()
        self._peeked = None
        return token

    def _read(self) -> _Token:
        text = self.text
        i = _SPACE.match(text, self.pos).end()  # type: ignore[union-attr]
        if i >= len(text):
            self.pos = i
            return _Token(_END, None, i, i)
        c = text[i]
        kind: str
        value: object
        if c == "#" and text.startswith("#{", i):
            kind, value, end = _OPEN, "#{", i + 2
        elif c == "}":
            kind, value, end = _CLOSE, "}", i + 1
        elif (match := _NAME_TEXT.match(text, i)) is not None:
            kind, value, end = _NAME, match.group(), match.end()
        elif (match := _NUMBER_TEXT.match(text, i)) is not None:
            literal = match.group()
            try:
                value = int(literal) if match.group(2) is None and match.group(1) else (
                    float(literal))
            except ValueError:  # beyond Python's limit on digits in an int
                raise ExpressionSyntaxError("number literal is too long", i) from None
            kind, end = _NUM, match.end()
        elif c in _OPERATORS:
            kind, value, end = _OP, c, i + 1
        elif c == "'" or c == '"':
            value, end = self._string(i)
            kind = _STR
        elif c == "@":
            raise ExpressionSyntaxError(
                "'@' must be followed by a field name, as in '@scheduledStartTime'", i)
        else:
            raise ExpressionSyntaxError(f"unexpected character {c!r} in an expression", i)
        self.pos = end
        return _Token(kind, value, i, end)

    def _string(self, start: int) -> tuple[str, int]:
        text, n = self.text, len(self.text)
        quote = text[start]
        out: list[str] = []
        i = start + 1
        while i < n:
            c = text[i]
            if c == quote:
                return "".join(out), i + 1
            if c == "\\" and i + 1 < n:
                nxt = text[i + 1]
                if nxt in _ESCAPES:
                    out.append(_ESCAPES[nxt])
                else:
                    out.append(c + nxt)
                i += 2
                continue
            out.append(c)
            i += 1
        raise ExpressionSyntaxError(f"unterminated string literal (no closing {quote})", start)


# --------------------------------------------------------------------------------------------
# AST


class _Ctx:
    """What an evaluation needs besides the tree: the scope."""

    __slots__ = ("scope",)

    def __init__(self, scope: Scope) -> None:
        self.scope = scope


class Expr:
    """A node of the expression tree; ``pos`` is its offset in the field text."""

    __slots__ = ()
    pos: int

    def eval(self, ctx: _Ctx) -> object:
        raise NotImplementedError

    def walk(self) -> Iterator[Expr]:
        yield self


@dataclass(frozen=True, slots=True, eq=False)
class Literal(Expr):
    value: object
    pos: int

    def eval(self, ctx: _Ctx) -> object:
        return self.value


@dataclass(frozen=True, slots=True, eq=False)
class Name(Expr):
    name: str
    pos: int

    def eval(self, ctx: _Ctx) -> object:
        return _lookup(ctx.scope, self.name, self.pos, None)


@dataclass(frozen=True, slots=True, eq=False)
class Field(Expr):
    """``obj.name``: a field of the object (or of each object in a list) ``obj`` refers to."""

    obj: Expr
    name: str
    pos: int  # of the field name

    def eval(self, ctx: _Ctx) -> object:
        return _field(self.obj.eval(ctx), self.name, self.pos, self.obj)

    def walk(self) -> Iterator[Expr]:
        yield self
        yield from self.obj.walk()


@dataclass(frozen=True, slots=True, eq=False)
class Unary(Expr):
    op: str
    operand: Expr
    pos: int

    def eval(self, ctx: _Ctx) -> object:
        return _map1(_negate, self.operand.eval(ctx), self.pos)

    def walk(self) -> Iterator[Expr]:
        yield self
        yield from self.operand.walk()


@dataclass(frozen=True, slots=True, eq=False)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr
    pos: int  # of the operator

    def eval(self, ctx: _Ctx) -> object:
        left = self.left.eval(ctx)
        right = self.right.eval(ctx)
        return _map2(_BINARY[self.op], left, right, self.op, self.pos)

    def walk(self) -> Iterator[Expr]:
        yield self
        yield from self.left.walk()
        yield from self.right.walk()


@dataclass(frozen=True, slots=True, eq=False)
class Call(Expr):
    name: str
    args: tuple[Expr, ...]
    pos: int  # of the function name

    def eval(self, ctx: _Ctx) -> object:
        function = FUNCTIONS.get(self.name)
        if function is None:
            raise ExpressionEvalError(_unknown_function(self.name), self.pos)
        values = [a.eval(ctx) for a in self.args]
        try:
            return function(*values)
        except ExpressionEvalError as err:
            raise ExpressionEvalError(err.message, self.pos) from err.__cause__

    def walk(self) -> Iterator[Expr]:
        yield self
        for arg in self.args:
            yield from arg.walk()


def _unknown_function(name: str) -> str:
    message = f"unknown function {name}()"
    close = difflib.get_close_matches(name, FUNCTIONS, n=1, cutoff=0.6)
    if close:
        message += f" (did you mean {close[0]}()?)"
    return message


# --------------------------------------------------------------------------------------------
# Evaluation helpers


def _is_scope(value: object) -> bool:
    return callable(getattr(value, "lookup", None))


def _lookup(scope: Scope, name: str, pos: int, owner: str | None) -> object:
    try:
        return scope.lookup(name)
    except KeyError:
        message = f"unknown name {name!r}"
        if owner is not None:
            message += f" in {owner!r}"
        names = getattr(scope, "names", None)
        if callable(names):
            try:
                candidates = [str(n) for n in names()]
            except Exception:  # a suggestion must never hide the real error
                candidates = []
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        raise ExpressionEvalError(message, pos) from None


def _path_text(node: Expr) -> str | None:
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Field):
        inner = _path_text(node.obj)
        return None if inner is None else f"{inner}.{node.name}"
    return None


def _field(value: object, name: str, pos: int, obj: Expr) -> object:
    owner = _path_text(obj) or "the value"
    if _is_scope(value):
        return _lookup(value, name, pos, owner)  # type: ignore[arg-type]
    if isinstance(value, list | tuple):
        out: list[object] = []
        for item in value:
            got = _field(item, name, pos, obj)
            if isinstance(got, list | tuple):
                out.extend(got)
            else:
                out.append(got)
        return out
    raise ExpressionEvalError(
        f"{owner!r} is a {type_name(value)}, which has no field {name!r}"
        " (to call a function on it write name(...))",
        pos,
    )


def _map1(op: Callable[[object], object], value: object, pos: int) -> object:
    if isinstance(value, list | tuple):
        return [_map1(op, v, pos) for v in value]
    try:
        return op(value)
    except ExpressionEvalError as err:
        raise ExpressionEvalError(err.message, pos) from None


def _map2(op: Callable[[object, object], object], left: object, right: object, symbol: str,
          pos: int) -> object:
    if isinstance(left, list | tuple):
        if isinstance(right, list | tuple):
            return [_map2(op, a, b, symbol, pos) for a, b in itertools.product(left, right)]
        return [_map2(op, a, right, symbol, pos) for a in left]
    if isinstance(right, list | tuple):
        return [_map2(op, left, b, symbol, pos) for b in right]
    try:
        result = op(left, right)
    except ExpressionEvalError as err:
        raise ExpressionEvalError(err.message, pos) from None
    except (OverflowError, ValueError):  # int too large for a float, or for str()
        raise ExpressionEvalError(f"'{symbol}' result is out of range", pos) from None
    if isinstance(result, float) and not math.isfinite(result):
        raise ExpressionEvalError(f"'{symbol}' result is out of range", pos)
    return result


def _numbers(symbol: str, left: object, right: object) -> tuple[int | float, int | float]:
    a, b = as_number(left), as_number(right)
    if a is None or b is None:
        bad = left if a is None else right
        what = "a String that does not read as a number" if isinstance(bad, str) else (
            f"a {type_name(bad)}")
        hint = ""
        if isinstance(bad, datetime):
            hint = " (use plusDays(), minusHours() and the like for date arithmetic)"
        raise ExpressionEvalError(f"'{symbol}' needs numbers, got {what}{hint}")
    return a, b


def _add(left: object, right: object) -> object:
    if isinstance(left, str) or isinstance(right, str):
        return render(left) + render(right)
    a, b = _numbers("+", left, right)
    return a + b


def _subtract(left: object, right: object) -> object:
    a, b = _numbers("-", left, right)
    return a - b


def _multiply(left: object, right: object) -> object:
    a, b = _numbers("*", left, right)
    return a * b


def _divide(left: object, right: object) -> object:
    a, b = _numbers("/", left, right)
    if b == 0:
        raise ExpressionEvalError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        quotient = abs(a) // abs(b)
        return quotient if (a < 0) == (b < 0) else -quotient
    return a / b


def _power(left: object, right: object) -> object:
    a, b = _numbers("^", left, right)
    try:
        result = float(a) ** float(b)
    except (OverflowError, ZeroDivisionError):
        raise ExpressionEvalError("'^' result is out of range") from None
    if isinstance(result, complex) or math.isnan(result):
        raise ExpressionEvalError("'^' result is not a real number")
    return result


def _negate(value: object) -> object:
    number = as_number(value)
    if number is None:
        what = "a String that does not read as a number" if isinstance(value, str) else (
            f"a {type_name(value)}")
        raise ExpressionEvalError(f"'-' needs a number, got {what}")
    return -number


_BINARY: dict[str, Callable[[object, object], object]] = {
    "+": _add, "-": _subtract, "*": _multiply, "/": _divide, "^": _power,
}


# --------------------------------------------------------------------------------------------
# Parser

_INFIX = {"+": 10, "-": 10, "*": 20, "/": 20}
_UNARY_BP = 30
_POWER_BP = 40


#: Parentheses, unary minus and nested calls deeper than this are a syntax error, not a crash.
MAX_NESTING = 100


class _Parser:
    """Pratt parser over a lazily lexed token stream.

    ``opener`` is the position of the ``#{`` being parsed (None for a bare expression): when the
    text ends inside it, that ``#{`` is what the error points at.
    """

    __slots__ = ("depth", "lex", "opener")

    def __init__(self, text: str, pos: int, opener: int | None = None) -> None:
        self.lex = _Lexer(text, pos)
        self.opener = opener
        self.depth = 0

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionSyntaxError(
                f"the expression is nested more than {MAX_NESTING} levels deep",
                self.lex.peek().pos)

    def never_closed(self) -> ExpressionSyntaxError:
        assert self.opener is not None
        return ExpressionSyntaxError("'#{' is never closed by '}'", self.opener)

    def expression(self, min_bp: int = 0) -> Expr:
        self._deeper()
        try:
            return self._expression(min_bp)
        finally:
            self.depth -= 1

    def _expression(self, min_bp: int) -> Expr:
        left = self.unary()
        while True:
            token = self.lex.peek()
            if token.kind != _OP or token.value not in _INFIX:
                return left
            bp = _INFIX[token.value]
            if bp <= min_bp:
                return left
            self.lex.next()
            right = self.expression(bp)
            left = Binary(token.value, left, right, token.pos)

    def unary(self) -> Expr:
        token = self.lex.peek()
        if token.kind == _OP and token.value == "-":
            self.lex.next()
            self._deeper()
            try:
                return Unary("-", self.unary(), token.pos)
            finally:
                self.depth -= 1
        base = self.postfix()
        token = self.lex.peek()
        if token.kind == _OP and token.value == "^":
            self.lex.next()
            return Binary("^", base, self.unary(), token.pos)
        return base

    def postfix(self) -> Expr:
        node = self.primary()
        while True:
            token = self.lex.peek()
            if token.kind != _OP or token.value != ".":
                return node
            self.lex.next()
            name = self.field_name()
            following = self.lex.peek()
            if following.kind == _OP and following.value == "(":
                if name.name[0] in "@*":
                    raise ExpressionSyntaxError(
                        f"{name.name!r} is a field name, not a function", name.pos)
                self.lex.next()
                node = Call(name.name, (node, *self.arguments(following)), name.pos)
            else:
                node = Field(node, name.name, name.pos)

    def field_name(self) -> Name:
        token = self.lex.next()
        masked = self.masked_name(token)
        if masked is not None:
            return masked
        if token.kind != _NAME:
            raise ExpressionSyntaxError(
                f"expected a field name after '.', found {token.describe()}", token.pos)
        return Name(str(token.value), token.pos)

    def masked_name(self, star: _Token) -> Name | None:
        """``*name`` (no space between): a masked parameter or field, not multiplication."""
        if star.kind != _OP or star.value != "*":
            return None
        after = self.lex.peek()
        if after.kind != _NAME or after.pos != star.end or str(after.value).startswith("@"):
            return None
        self.lex.next()
        return Name("*" + str(after.value), star.pos)

    def arguments(self, open_paren: _Token) -> tuple[Expr, ...]:
        args: list[Expr] = []
        token = self.lex.peek()
        if token.kind == _OP and token.value == ")":
            self.lex.next()
            return ()
        while True:
            args.append(self.expression())
            token = self.lex.next()
            if token.kind == _OP and token.value == ",":
                continue
            if token.kind == _OP and token.value == ")":
                return tuple(args)
            self.unclosed(token, open_paren, "',' or ')'")

    def unclosed(self, token: _Token, opener: _Token, expected: str) -> None:
        if token.kind == _END and self.opener is not None:
            raise self.never_closed()
        if token.kind == _END:
            raise ExpressionSyntaxError(
                f"'{opener.value}' at character {opener.pos} is never closed", opener.pos)
        raise ExpressionSyntaxError(
            f"expected {expected} to close '{opener.value}' at character {opener.pos}, "
            f"found {token.describe()}",
            token.pos,
        )

    def primary(self) -> Expr:
        token = self.lex.next()
        kind = token.kind
        if kind in (_NUM, _STR):
            return Literal(token.value, token.pos)
        if kind == _NAME:
            name = str(token.value)
            after = self.lex.peek()
            if after.kind == _OP and after.value == "(" and name[0] != "@":
                self.lex.next()
                return Call(name, self.arguments(after), token.pos)
            return Name(name, token.pos)
        if kind == _OP:
            if token.value == "(":
                inner = self.expression()
                closing = self.lex.next()
                if not (closing.kind == _OP and closing.value == ")"):
                    self.unclosed(closing, token, "')'")
                return inner
            masked = self.masked_name(token)
            if masked is not None:
                return masked
        if kind == _OPEN:
            inner = self.expression()
            closing = self.lex.next()
            if closing.kind != _CLOSE:
                self.unclosed(closing, token, "'}'")
            return inner
        if kind == _END and self.opener is not None:
            raise self.never_closed()
        if kind == _END:
            raise ExpressionSyntaxError("the expression ends where a value is expected",
                                        token.pos)
        raise ExpressionSyntaxError(
            f"unexpected {token.describe()} where a value is expected", token.pos)


# --------------------------------------------------------------------------------------------
# Templates


def _path_of(node: Expr) -> tuple[tuple[str, ...], int] | None:
    if isinstance(node, Name):
        return (node.name,), node.pos
    if isinstance(node, Field):
        inner = _path_of(node.obj)
        if inner is None:
            return None
        return (*inner[0], node.name), inner[1]
    return None


class Template:
    """A parsed field text: literal parts and expressions, in order.

    An expression that reads a field only a running instance has (the scope raises
    :class:`RuntimeOnlyField`, as a plan's scope does) is kept as written, ``#{...}`` and all:
    a plan shows ``attempt #{@attemptCount}`` rather than failing on it."""

    __slots__ = ("_parts", "_sources", "text")

    def __init__(self, text: str, parts: tuple[str | Expr, ...],
                 sources: tuple[str, ...] = ()) -> None:
        self.text = text
        self._parts = parts
        #: the text of each part as written (``#{...}`` for an expression)
        self._sources = sources or tuple(p if isinstance(p, str) else "" for p in parts)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    @property
    def is_constant(self) -> bool:
        """True when the text holds no ``#{...}``."""
        return all(isinstance(p, str) for p in self._parts)

    @property
    def expressions(self) -> tuple[Expr, ...]:
        """The top-level expressions, in order."""
        return tuple(p for p in self._parts if isinstance(p, Expr))

    def references(self) -> list[Reference]:
        """Every name path the expressions use (not function names), in text order."""
        found: list[Reference] = []
        for expr in self.expressions:
            inner_of_path: set[int] = set()
            for node in expr.walk():
                if id(node) in inner_of_path:
                    continue
                path = _path_of(node)
                if path is None:
                    continue
                found.append(Reference(path[0], path[1]))
                sub = node
                while isinstance(sub, Field):
                    sub = sub.obj
                    inner_of_path.add(id(sub))
        found.sort(key=lambda r: r.position)
        return found

    def function_problems(self) -> list[ExpressionEvalError]:
        """Unknown functions and wrong argument counts, found without evaluating."""
        problems: list[ExpressionEvalError] = []
        for expr in self.expressions:
            for node in expr.walk():
                if not isinstance(node, Call):
                    continue
                function = FUNCTIONS.get(node.name)
                if function is None:
                    problems.append(ExpressionEvalError(_unknown_function(node.name), node.pos))
                    continue
                try:
                    function.check_arity(len(node.args))
                except ExpressionEvalError as err:
                    problems.append(ExpressionEvalError(err.message, node.pos))
        problems.sort(key=lambda e: e.position or 0)
        return problems

    def _list_literal(self) -> bool:
        """``[#{a}, #{b}]``: the whole text is a bracketed, comma-separated list of
        expressions, which evaluates to the concatenation of their values (reference 7.3)."""
        parts = self._parts
        if len(parts) < 3 or not isinstance(parts[0], str) or not isinstance(parts[-1], str):
            return False
        expected = "["
        for index, part in enumerate(parts):
            if index % 2 == 1:
                if not isinstance(part, Expr):
                    return False
                continue
            if not isinstance(part, str) or part.strip() != expected:
                return False
            expected = "]" if index + 2 == len(parts) - 1 else ","
        return True

    def evaluate(self, scope: Scope) -> str | list[str]:
        """The field's value: a string, or a list of strings when an expression gives a list."""
        parts = self._parts
        ctx = _Ctx(scope)
        if len(parts) == 1 and isinstance(parts[0], Expr):
            return self._part_text(0, ctx)
        if self._list_literal():
            items: list[str] = []
            for index in range(1, len(parts), 2):
                text = self._part_text(index, ctx)
                items.extend(text if isinstance(text, list) else [text])
            return items
        pieces: list[str | list[str]] = []
        has_list = False
        for index, part in enumerate(parts):
            if isinstance(part, str):
                pieces.append(part)
                continue
            text = self._part_text(index, ctx)
            has_list = has_list or isinstance(text, list)
            pieces.append(text)
        if not has_list:
            return "".join(pieces)  # type: ignore[arg-type]
        choices = [p if isinstance(p, list) else [p] for p in pieces]
        return ["".join(combo) for combo in itertools.product(*choices)]


    def _part_text(self, index: int, ctx: _Ctx) -> str | list[str]:
        part = self._parts[index]
        assert isinstance(part, Expr)
        try:
            return _as_text(part.eval(ctx), part.pos)
        except RuntimeOnlyField:
            return self._sources[index]


def _flatten(value: object) -> Iterator[object]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _as_text(value: object, pos: int) -> str | list[str]:
    try:
        if isinstance(value, list | tuple):
            return [_render_one(v) for v in _flatten(value)]
        return _render_one(value)
    except ExpressionEvalError as err:
        raise ExpressionEvalError(err.message, pos) from None


def _render_one(value: object) -> str:
    if _is_scope(value):
        # A reference field's value is the referenced object's id, as in the API.
        try:
            ident = value.lookup("id")  # type: ignore[attr-defined]
        except KeyError:
            ident = None
        if isinstance(ident, str):
            return ident
        raise ExpressionEvalError(
            "an object reference cannot be written as text; name one of its fields "
            "(for example input.directoryPath)")
    if value is None:
        raise ExpressionEvalError("the expression has no value")
    try:
        return render(value)
    except ValueError:  # an int beyond Python's limit on digits in a str
        raise ExpressionEvalError("the number is too large to write as text") from None


def _parse_parts(text: str) -> tuple[tuple[str | Expr, ...], tuple[str, ...]]:
    """The parts of ``text`` and the text each was written as."""
    parts: list[str | Expr] = []
    sources: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        start = text.find("#{", pos)
        if start < 0:
            parts.append(text[pos:])
            sources.append(text[pos:])
            break
        if start > pos:
            parts.append(text[pos:start])
            sources.append(text[pos:start])
        parser = _Parser(text, start + 2, start)
        if parser.lex.peek().kind == _CLOSE:
            raise ExpressionSyntaxError("empty expression '#{}'", start)
        expr = parser.expression()
        closing = parser.lex.next()
        if closing.kind == _END:
            raise parser.never_closed()
        if closing.kind != _CLOSE:
            if closing.kind == _OP and closing.value == ")":
                raise ExpressionSyntaxError("unbalanced ')': no '(' to close", closing.pos)
            raise ExpressionSyntaxError(
                f"unexpected {closing.describe()}: expected an operator or the '}}' that "
                f"closes '#{{' at character {start}",
                closing.pos,
            )
        parts.append(expr)
        sources.append(text[start:closing.end])
        pos = closing.end
    return tuple(parts), tuple(sources)


@lru_cache(maxsize=8192)
def parse_template(text: str) -> Template:
    """Parse field text; raises ExpressionSyntaxError(message, position in ``text``)."""
    if "#{" not in text:
        return Template(text, (text,) if text else ())
    return Template(text, *_parse_parts(text))


@lru_cache(maxsize=2048)
def parse_expression(source: str) -> Expr:
    """Parse one expression written without ``#{ }``; positions are offsets in ``source``."""
    parser = _Parser(source, 0)
    expr = parser.expression()
    rest = parser.lex.next()
    if rest.kind != _END:
        if rest.kind == _OP and rest.value == ")":
            raise ExpressionSyntaxError("unbalanced ')': no '(' to close", rest.pos)
        raise ExpressionSyntaxError(
            f"unexpected {rest.describe()} after the expression", rest.pos)
    return expr


def evaluate_template(text: str, scope: Scope) -> str | list[str]:
    """Parse (cached) and evaluate field text."""
    return parse_template(text).evaluate(scope)


def evaluate_expression(source: str, scope: Scope) -> object:
    """Evaluate one expression written without ``#{ }``; the result keeps its type."""
    return parse_expression(source).eval(_Ctx(scope))
