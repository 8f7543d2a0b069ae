"""The state store: SQLite by default (one file), PostgreSQL when engines share work."""

from engine.store.records import (
    TERMINAL,
    Action,
    AttemptRecord,
    AttemptStatus,
    InstanceRecord,
    PipelineRecord,
    PipelineState,
    RequestRecord,
    Status,
)
from engine.store.store import (
    CopyRecord,
    Store,
    default_store_url,
    new_pipeline_id,
    open_store,
)

__all__ = [
    "TERMINAL",
    "Action",
    "AttemptRecord",
    "AttemptStatus",
    "CopyRecord",
    "InstanceRecord",
    "PipelineRecord",
    "PipelineState",
    "RequestRecord",
    "Status",
    "Store",
    "default_store_url",
    "new_pipeline_id",
    "open_store",
]
