"""The request shapes of the AWS Data Pipeline API (2012-10-29), and the check every request
passes before an operation sees it.

The table is headrace's own, kept equal to botocore's service model by a test
(``tests/unit/test_server_shapes.py``) for as long as botocore ships that model: botocore
deletes a service's model when AWS retires the service, and this server must go on answering
then. It holds the input of all 19 operations, the Task Runner verbs included, so a handler is
all those need to be served.

A failed check is reported the way AWS's validation reports it ("N validation errors
detected: ... at 'pipelineObjects.1.member.id' failed to satisfy constraint: ..."), except that
the offending value is never repeated (it may be a secret).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

#: at most this many problems are listed in one error message
MAX_REPORTED = 10


@dataclass(frozen=True)
class Str:
    min: int | None = None
    max: int | None = None
    #: the model's pattern for most strings: XML characters only (no control characters
    #: except tab, newline and carriage return, no lone surrogates, no U+FFFE/U+FFFF)
    xml: bool = True
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Int:
    pass


@dataclass(frozen=True)
class Timestamp:
    """Epoch seconds (what botocore sends for the JSON protocol) or an ISO 8601 string."""


@dataclass(frozen=True)
class ListOf:
    member: Shape
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class MapOf:
    key: Shape
    value: Shape


@dataclass(frozen=True)
class Struct:
    members: dict[str, Shape] = field(default_factory=dict)
    required: tuple[str, ...] = ()


Shape = Union[Str, Bool, Int, Timestamp, ListOf, MapOf, Struct]  # noqa: UP007 (forward refs)

# --- named shapes, as the model names them ------------------------------------------------

ID = Str(1, 1024)
STRING = Str(0, 1024)
FIELD_NAME = Str(1, 256)
FIELD_VALUE = Str(0, 10240)
LONG_STRING = Str(0, 20971520)
TASK_ID = Str(1, 2048)
ERROR_MESSAGE = Str(xml=False)
TAG_KEY = Str(1, 128, xml=False)
TAG_VALUE = Str(0, 256, xml=False)

FIELD = Struct({"key": FIELD_NAME, "stringValue": FIELD_VALUE, "refValue": FIELD_NAME},
               ("key",))
FIELD_LIST = ListOf(FIELD)
PIPELINE_OBJECT = Struct({"id": ID, "name": ID, "fields": FIELD_LIST}, ("id", "name", "fields"))
PIPELINE_OBJECT_LIST = ListOf(PIPELINE_OBJECT)
PARAMETER_ATTRIBUTE = Struct({"key": FIELD_NAME, "stringValue": FIELD_VALUE},
                             ("key", "stringValue"))
PARAMETER_OBJECT = Struct({"id": FIELD_NAME, "attributes": ListOf(PARAMETER_ATTRIBUTE)},
                          ("id", "attributes"))
PARAMETER_VALUE = Struct({"id": FIELD_NAME, "stringValue": FIELD_VALUE}, ("id", "stringValue"))
PARAMETER_VALUE_LIST = ListOf(PARAMETER_VALUE)
TAG = Struct({"key": TAG_KEY, "value": TAG_VALUE}, ("key", "value"))
TAG_LIST = ListOf(TAG, 0, 10)
ID_LIST = ListOf(ID)
STRING_LIST = ListOf(STRING)
OPERATOR = Struct({"type": Str(xml=False, enum=("EQ", "REF_EQ", "LE", "GE", "BETWEEN")),
                   "values": STRING_LIST})
QUERY = Struct({"selectors": ListOf(Struct({"fieldName": STRING, "operator": OPERATOR}))})
DEFINITION: dict[str, Shape] = {"pipelineId": ID, "pipelineObjects": PIPELINE_OBJECT_LIST,
              "parameterObjects": ListOf(PARAMETER_OBJECT),
              "parameterValues": PARAMETER_VALUE_LIST}

#: operation -> its input shape
INPUTS: dict[str, Struct] = {
    "ActivatePipeline": Struct({"pipelineId": ID, "parameterValues": PARAMETER_VALUE_LIST,
                                "startTimestamp": Timestamp()}, ("pipelineId",)),
    "AddTags": Struct({"pipelineId": ID, "tags": TAG_LIST}, ("pipelineId", "tags")),
    "CreatePipeline": Struct({"name": ID, "uniqueId": ID, "description": STRING,
                              "tags": TAG_LIST}, ("name", "uniqueId")),
    "DeactivatePipeline": Struct({"pipelineId": ID, "cancelActive": Bool()}, ("pipelineId",)),
    "DeletePipeline": Struct({"pipelineId": ID}, ("pipelineId",)),
    "DescribeObjects": Struct({"pipelineId": ID, "objectIds": ID_LIST,
                               "evaluateExpressions": Bool(), "marker": STRING},
                              ("pipelineId", "objectIds")),
    "DescribePipelines": Struct({"pipelineIds": ID_LIST}, ("pipelineIds",)),
    "EvaluateExpression": Struct({"pipelineId": ID, "objectId": ID, "expression": LONG_STRING},
                                 ("pipelineId", "objectId", "expression")),
    "GetPipelineDefinition": Struct({"pipelineId": ID, "version": STRING}, ("pipelineId",)),
    "ListPipelines": Struct({"marker": STRING}),
    "PollForTask": Struct({"workerGroup": STRING, "hostname": ID,
                           "instanceIdentity": Struct({"document": STRING,
                                                       "signature": STRING})},
                          ("workerGroup",)),
    "PutPipelineDefinition": Struct(DEFINITION, ("pipelineId", "pipelineObjects")),
    "QueryObjects": Struct({"pipelineId": ID, "query": QUERY, "sphere": STRING,
                            "marker": STRING, "limit": Int()}, ("pipelineId", "sphere")),
    "RemoveTags": Struct({"pipelineId": ID, "tagKeys": STRING_LIST}, ("pipelineId", "tagKeys")),
    "ReportTaskProgress": Struct({"taskId": TASK_ID, "fields": FIELD_LIST}, ("taskId",)),
    "ReportTaskRunnerHeartbeat": Struct({"taskrunnerId": ID, "workerGroup": STRING,
                                         "hostname": ID}, ("taskrunnerId",)),
    "SetStatus": Struct({"pipelineId": ID, "objectIds": ID_LIST, "status": STRING},
                        ("pipelineId", "objectIds", "status")),
    "SetTaskStatus": Struct({"taskId": TASK_ID,
                             "taskStatus": Str(xml=False, enum=("FINISHED", "FAILED", "FALSE")),
                             "errorId": STRING, "errorMessage": ERROR_MESSAGE,
                             "errorStackTrace": STRING}, ("taskId", "taskStatus")),
    "ValidatePipelineDefinition": Struct(DEFINITION, ("pipelineId", "pipelineObjects")),
}


def _bad_char(text: str) -> bool:
    for ch in text:
        code = ord(ch)
        if code < 0x20 and ch not in "\t\n\r":
            return True
        if 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            return True
    return False


def _bounds(low: int | None, high: int | None, size: int, where: str, what: str,
            out: list[str]) -> None:
    if low is not None and size < low:
        out.append(f"Value {where} failed to satisfy constraint: Member must have {what} "
                   f"greater than or equal to {low}")
    if high is not None and size > high:
        out.append(f"Value {where} failed to satisfy constraint: Member must have {what} "
                   f"less than or equal to {high}")


def _check(shape: Shape, value: Any, path: str, out: list[str]) -> None:
    where = f"at '{path}'" if path else "at the top level"
    if value is None:
        return  # a null member is an absent one; required members are checked by the parent
    if isinstance(shape, Str):
        if not isinstance(value, str):
            out.append(f"Value {where} failed to satisfy constraint: Member must be a string")
            return
        _bounds(shape.min, shape.max, len(value), where, "length", out)
        if shape.xml and _bad_char(value):
            out.append(f"Value {where} failed to satisfy constraint: Member must hold only "
                       "XML characters (no control characters but tab, newline and carriage "
                       "return)")
        if shape.enum and value not in shape.enum:
            out.append(f"Value {where} failed to satisfy constraint: Member must satisfy enum "
                       f"value set: [{', '.join(shape.enum)}]")
    elif isinstance(shape, Bool):
        if not isinstance(value, bool):
            out.append(f"Value {where} failed to satisfy constraint: Member must be a boolean")
    elif isinstance(shape, Int):
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(f"Value {where} failed to satisfy constraint: Member must be an integer")
        elif not -2**31 <= value < 2**31:
            out.append(f"Value {where} failed to satisfy constraint: Member must fit in 32 bits")
    elif isinstance(shape, Timestamp):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            out.append(f"Value {where} failed to satisfy constraint: Member must be a "
                       "timestamp (epoch seconds or an ISO 8601 string)")
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            out.append(f"Value {where} failed to satisfy constraint: Member must be a list")
            return
        _bounds(shape.min, shape.max, len(value), where, "number of items", out)
        for index, item in enumerate(value, 1):
            if item is None:
                out.append(f"Value at '{path}.{index}.member' failed to satisfy constraint: "
                           "Member must not be null")
                continue
            _check(shape.member, item, f"{path}.{index}.member", out)
            if len(out) > MAX_REPORTED:
                return
    elif isinstance(shape, MapOf):
        if not isinstance(value, dict):
            out.append(f"Value {where} failed to satisfy constraint: Member must be a map")
            return
        for key, item in value.items():
            _check(shape.key, key, f"{path}.key", out)
            _check(shape.value, item, f"{path}.{key}", out)
    elif isinstance(shape, Struct):
        if not isinstance(value, dict):
            out.append(f"Value {where} failed to satisfy constraint: Member must be a "
                       "structure")
            return
        for name in shape.required:
            if value.get(name) is None:
                at = f"{path}.{name}" if path else name
                out.append(f"Value null at '{at}' failed to satisfy constraint: Member must "
                           "not be null")
        for name, member in shape.members.items():
            if name in value:
                _check(member, value[name], f"{path}.{name}" if path else name, out)
            if len(out) > MAX_REPORTED:
                return


def problems(operation: str, body: Any) -> list[str]:
    """What is wrong with ``body`` as the input of ``operation`` (empty when it fits).
    Members the model does not name are ignored, as AWS ignores them."""
    out: list[str] = []
    _check(INPUTS[operation], body, "", out)
    return out


def message(found: list[str]) -> str:
    """AWS's wording for a list of validation problems."""
    shown = found[:MAX_REPORTED]
    count = len(found)
    head = f"{count} validation error{'s' if count != 1 else ''} detected: "
    more = f"; and {count - len(shown)} more" if count > len(shown) else ""
    return head + "; ".join(shown) + more
