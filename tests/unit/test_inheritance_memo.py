"""Inheritance is memoized (each object's view built from its parent's, so long chains
validate in linear time); it must give exactly what walking each chain gives, cycles, dangling
parents and a Default with a type of its own included."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.definition import Definition
from engine.definition.raw import RawDefinition, RawObject, Ref
from engine.errors import Report

IDS = ["Default", "A", "B", "C", "D", "E"]

OBJECTS = st.lists(st.tuples(
    st.sampled_from(IDS),
    st.one_of(st.none(), st.sampled_from([*IDS, "Missing"])),
    st.dictionaries(st.sampled_from(["type", "command", "myX", "schedule"]),
                    st.sampled_from(["Default", "ShellCommandActivity", "x", "y"]),
                    max_size=3)), min_size=1, max_size=7)


def build(objects: list[tuple[str, str | None, dict[str, str]]]) -> Definition:
    raw = RawDefinition()
    for oid, parent, fields in objects:
        values: dict[str, list[str | Ref]] = {k: [v] for k, v in fields.items()}
        if parent is not None:
            values["parent"] = [Ref(parent)]
        raw.objects.append(RawObject(oid, oid, values))
    return Definition.build(raw, Report())


def walked_owner(definition: Definition, oid: str, name: str) -> str:
    """The first object of the chain with the field, among those it is inherited from
    (``parent`` is never inherited, nor Default's ``"type": "Default"``)."""
    for index, ancestor in enumerate(definition.parent_chain(oid)):
        values = definition.objects[ancestor].fields.get(name)
        if values is None or (index and name == "parent"):
            continue
        if index and ancestor == "Default" and name == "type" and values == ["Default"]:
            continue
        return ancestor
    return oid


@settings(max_examples=300, deadline=None)
@given(OBJECTS)
def test_memoized_inheritance_equals_walking_every_chain(objects: list) -> None:  # type: ignore[type-arg]
    definition = build(objects)
    for oid in definition.objects:
        fast = definition.effective(oid)
        slow = definition._effective_by_walking(oid)
        assert list(fast.items()) == list(slow.items())  # same values, same order
        for name in ("type", "command", "myX", "schedule", "parent"):
            assert definition.owner(oid, name) == walked_owner(definition, oid, name)


def test_a_chain_of_ten_thousand_inherits_from_its_root() -> None:
    objects = [("A0", None, {"type": "ShellCommandActivity", "command": "x"})]
    objects += [(f"A{i}", f"A{i - 1}", {}) for i in range(1, 10_000)]
    definition = build(objects)
    assert definition.first("A9999", "command") == "x"
    assert definition.owner("A9999", "command") == "A0"
