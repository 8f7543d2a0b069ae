"""A definition as read, before anything is interpreted: objects with their fields (strings and
references), parameter objects with their attributes, and values, each with the line (and the
file) it came from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ref:
    """A ``{"ref": id}`` field value."""

    id: str

    def __str__(self) -> str:
        return f"{{ref: {self.id}}}"


FieldValue = str | Ref


@dataclass
class RawObject:
    id: str
    name: str
    fields: dict[str, list[FieldValue]]
    line: int | None = None

    @property
    def type(self) -> str | None:
        values = self.fields.get("type")
        if values and isinstance(values[0], str):
            return values[0]
        return None


@dataclass
class RawParameter:
    id: str
    attributes: dict[str, list[str]]
    line: int | None = None
    #: the file that declares it (the definition, or a --parameter-objects file)
    source: str | None = None

    def attr(self, name: str) -> str | None:
        values = self.attributes.get(name)
        return values[0] if values else None


@dataclass
class RawValues:
    """Parameter values as read from one place: id -> values, and where each id was given."""

    values: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    source: str | None = None


@dataclass
class RawDefinition:
    objects: list[RawObject] = field(default_factory=list)
    parameters: list[RawParameter] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    source: str = "<definition>"
    #: lines of the ids in ``values``
    value_lines: dict[str, int] = field(default_factory=dict)
    #: literal secrets the reader knows of beyond ``*`` fields and parameters (the values of a
    #: CloudFormation template's NoEcho parameters): never shown in a message
    secrets: set[str] = field(default_factory=set)
    #: what the file was: "definition", "definition (YAML)" or "CloudFormation template"
    kind: str = "definition"
    #: (object id, field) whose value a template left unresolved (an error already says so):
    #: the field counts as present, so it is not also reported missing
    unresolved: set[tuple[str, str]] = field(default_factory=set)
