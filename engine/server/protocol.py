"""The AWS JSON 1.1 protocol: ``POST /`` with ``X-Amz-Target: DataPipeline.<Operation>``, a
JSON object in, a JSON object out, and errors as ``{"__type": ..., "message": ...}``.

Which exception becomes which ``__type`` is decided here, once: the service layer's refusals
(``engine.service.errors``) map onto the errors the service model declares; anything not
raised on purpose is an ``InternalServiceError`` whose message names the request id (the
traceback goes to the server's log, never to the client).
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import DefinitionError, HeadraceError, NotFound, StoreError
from engine.service.errors import (
    InvalidRequest,
    PipelineDeleted,
    PipelineNotFound,
    TaskNotFound,
)

CONTENT_TYPE = "application/x-amz-json-1.1"
#: also accepted on requests (some clients send the plain JSON type)
ACCEPTED_CONTENT_TYPES = (CONTENT_TYPE, "application/x-amz-json-1.0", "application/json")
TARGET_PREFIX = "DataPipeline."


class AwsError(Exception):
    """An answer in AWS's error shape."""

    def __init__(self, type_: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.status = status

    def body(self) -> bytes:
        return json.dumps({"__type": self.type, "message": self.message}).encode()


def invalid_request(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message)


def unknown_operation(target: str | None) -> AwsError:
    shown = target if target else "(no X-Amz-Target header)"
    return AwsError("UnknownOperationException", f"unknown operation {shown[:200]}")


def internal_error(request_id: str) -> AwsError:
    return AwsError("InternalServiceError", "the server failed on this request; its log has "
                    f"the details under request id {request_id}", 500)


def aws_error_of(exc: BaseException, request_id: str) -> AwsError:
    """The AWS error for an exception an operation raised."""
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, TaskNotFound):
        return AwsError("TaskNotFoundException", str(exc))
    if isinstance(exc, PipelineDeleted):
        return AwsError("PipelineDeletedException", str(exc))
    if isinstance(exc, PipelineNotFound):
        return AwsError("PipelineNotFoundException", str(exc))
    if isinstance(exc, InvalidRequest | NotFound | DefinitionError):
        return invalid_request(str(exc))
    if isinstance(exc, StoreError):  # the store failed, not the request
        return internal_error(request_id)
    if isinstance(exc, HeadraceError):
        return invalid_request(str(exc))
    return internal_error(request_id)


def operation_of(target: str | None) -> str:
    """The operation named by ``X-Amz-Target``, or :class:`AwsError`."""
    if not target or not target.startswith(TARGET_PREFIX):
        raise unknown_operation(target)
    return target[len(TARGET_PREFIX):]


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}`` (botocore sends ``{}``)."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AwsError("SerializationException", f"the request body is not UTF-8 (byte "
                       f"{exc.start})") from None
    except json.JSONDecodeError as exc:
        raise AwsError("SerializationException", f"the request body is not JSON: {exc.msg} "
                       f"at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise AwsError("SerializationException", "the request body nests too deeply") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise AwsError("SerializationException", f"the request body is not usable JSON: "
                       f"{str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise AwsError("SerializationException", "the request body must be a JSON object")
    return data


def encode(result: dict[str, Any]) -> bytes:
    return json.dumps(result, separators=(",", ":")).encode()
