"""Property-based tests of the #{...} language.

* Random expression trees, printed with the fewest parentheses their precedence allows (and
  random spacing, redundant grouping and nested ``#{}``), parse and evaluate to what a direct
  evaluation of the tree gives under the language's rules.
* Text without ``#{`` comes back unchanged.
* Parsing arbitrary text raises nothing but ExpressionSyntaxError, at a position inside the text;
  evaluating whatever parses raises nothing but ExpressionError.
"""

from __future__ import annotations

import math
import random
import re
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.definition.expressions import evaluate_expression, parse_template
from engine.definition.functions import render
from engine.errors import ExpressionError, ExpressionEvalError, ExpressionSyntaxError

SCOPE_VALUES: dict[str, object] = {"a": 3, "b": 2.5, "s": "xy", "n": "7", "neg": -4, "f": "0.5"}


class DictScope:
    def __init__(self, values: dict[str, object]) -> None:
        self.values = values

    def lookup(self, name: str) -> object:
        return self.values[name]


class AnythingScope:
    """Every name is known: 1 for plain names, another AnythingScope for objects."""

    def lookup(self, name: str) -> object:
        return 1

    def names(self) -> list[str]:
        return ["x"]


# --- trees ------------------------------------------------------------------------------------

Tree = tuple[Any, ...]

leaves = st.one_of(
    st.integers(0, 1000).map(lambda n: ("int", n)),
    st.integers(0, 9).map(lambda n: ("int", n)),
    st.tuples(st.integers(0, 999), st.integers(0, 99)).map(
        lambda p: ("float", f"{p[0]}.{p[1]:02d}")),
    st.text(alphabet=string.ascii_letters + string.digits + " '\"\\}{#$@*.,()+-^/\n",
            max_size=8).map(lambda s: ("str", s)),
    st.sampled_from(sorted(SCOPE_VALUES)).map(lambda k: ("name", k)),
    st.tuples(st.integers(1, 28), st.booleans()).map(lambda p: ("day", p[0], p[1])),
)


def extend(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    return st.one_of(
        children.map(lambda c: ("neg", c)),
        st.tuples(st.sampled_from("+-*/^"), children, children).map(
            lambda t: ("bin", t[0], t[1], t[2])),
    )


# Bias towards operators: hypothesis's recursive strategy favours bare leaves.
_small = st.recursive(leaves, extend, max_leaves=10)
trees = st.one_of(_small, extend(_small), extend(extend(_small)))

_PREC = {"+": 10, "-": 10, "*": 20, "/": 20, "^": 40}
_ATOM, _UNARY = 100, 30


def quote(text: str, rnd: random.Random) -> str:
    q = rnd.choice("'\"")
    escaped = text.replace("\\", "\\\\").replace(q, "\\" + q)
    return q + escaped + q


def show(tree: Tree, rnd: random.Random) -> tuple[str, int]:
    """Print a tree; returns the text and the precedence of its top operator."""
    kind = tree[0]
    if kind in ("int", "float"):
        return str(tree[1]), _ATOM
    if kind == "str":
        return quote(tree[1], rnd), _ATOM
    if kind == "name":
        return tree[1], _ATOM
    if kind == "day":
        if tree[2]:
            return f"makeDate(2011, 5, {tree[1]}).day()", _ATOM
        return f"day(makeDate(2011,5,{tree[1]}))", _ATOM
    if kind == "neg":
        text, prec = show(tree[1], rnd)
        if prec < _UNARY:
            text = group(text, rnd)
        return "-" + text, _UNARY
    op, left, right = tree[1], tree[2], tree[3]
    prec = _PREC[op]
    ltext, lprec = show(left, rnd)
    rtext, rprec = show(right, rnd)
    if op == "^":
        if lprec < _ATOM:
            ltext = group(ltext, rnd)
        if rprec < _UNARY:
            rtext = group(rtext, rnd)
    else:
        if lprec < prec:
            ltext = group(ltext, rnd)
        if rprec <= prec:
            rtext = group(rtext, rnd)
    space = rnd.choice(["", " ", "  ", "\n"])
    text = f"{ltext}{space}{op}{space}{rtext}"
    if rnd.random() < 0.1:  # redundant grouping changes nothing
        return group(text, rnd), _ATOM
    return text, prec


def group(text: str, rnd: random.Random) -> str:
    return f"#{{{text}}}" if rnd.random() < 0.3 else f"({text})"


# --- the rules, evaluated directly on the tree --------------------------------------------------


class Refused(Exception):
    """The direct evaluation refuses the tree: the engine must raise ExpressionEvalError."""


_NUMBER = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", re.ASCII)


def number(value: object) -> int | float:
    if isinstance(value, int | float):
        return value
    assert isinstance(value, str)
    text = value.strip()
    if not _NUMBER.fullmatch(text):
        raise Refused
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    result = float(text)
    if not math.isfinite(result):
        raise Refused
    return result


def finite(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise Refused
    return value


def direct(tree: Tree) -> object:
    kind = tree[0]
    if kind == "int":
        return tree[1]
    if kind == "float":
        return float(tree[1])
    if kind == "str":
        return tree[1]
    if kind == "name":
        return SCOPE_VALUES[tree[1]]
    if kind == "day":
        return tree[1]
    if kind == "neg":
        return -number(direct(tree[1]))
    op = tree[1]
    left, right = direct(tree[2]), direct(tree[3])
    try:
        if op == "+":
            if isinstance(left, str) or isinstance(right, str):
                return render(left) + render(right)
            return finite(number(left) + number(right))
        a, b = number(left), number(right)
        if op == "-":
            return finite(a - b)
        if op == "*":
            return finite(a * b)
        if op == "/":
            if b == 0:
                raise Refused
            if isinstance(a, int) and isinstance(b, int):
                q = a // b
                return q + 1 if q < 0 and q * b != a else q  # toward zero, like Java
            return finite(a / b)
        result = float(a) ** float(b)
    except (OverflowError, ZeroDivisionError):
        raise Refused from None
    if isinstance(result, complex) or math.isnan(result) or math.isinf(result):
        raise Refused
    return result


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(tree=trees, seed=st.integers(0, 2**32 - 1))
def test_printed_trees_parse_and_evaluate_like_direct_evaluation(tree: Tree, seed: int) -> None:
    text, _ = show(tree, random.Random(seed))
    scope = DictScope(SCOPE_VALUES)
    try:
        expected = direct(tree)
    except Refused:
        expected = Refused
    if expected is Refused:
        try:
            evaluate_expression(text, scope)
        except ExpressionEvalError:
            return
        raise AssertionError(f"{text!r} should have been refused")
    result = evaluate_expression(text, scope)
    assert result == expected, text
    assert type(result) is type(expected), text
    assert parse_template("#{" + text + "}").evaluate(scope) == render(expected)
    assert parse_template("<#{" + text + "}>").evaluate(scope) == "<" + render(expected) + ">"


@given(st.text().filter(lambda t: "#{" not in t))
def test_text_without_an_expression_is_returned_unchanged(text: str) -> None:
    template = parse_template(text)
    assert template.is_constant
    assert template.references() == []
    assert template.evaluate(DictScope({})) == text


_SYNTAX = st.text(alphabet="#{}()'\"\\+-*/^.,@ _aZ19$\n", max_size=40)


@settings(max_examples=300)
@given(st.one_of(_SYNTAX, st.text(max_size=40),
                 st.lists(st.sampled_from(["#{", "}", "(", ")", "'", "a", "1", ".", "+", "*",
                                           "@x", "f(", ",", "\"", "\\", " "]),
                          max_size=20).map("".join)))
def test_parse_raises_only_syntax_errors_inside_the_text(text: str) -> None:
    try:
        template = parse_template(text)
    except ExpressionSyntaxError as err:
        assert err.position is not None
        assert 0 <= err.position <= len(text)
        return
    for ref in template.references():
        assert text[ref.position] in "@*_" or text[ref.position].isalpha()
    try:
        result = template.evaluate(AnythingScope())
    except ExpressionError:
        return
    assert isinstance(result, str) or all(isinstance(r, str) for r in result)
