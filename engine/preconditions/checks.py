"""Precondition checks: each returns True when satisfied (False means "poll again").

``Exists`` checks the data node it guards: a file or a non-empty directory for a ``file://``
S3DataNode, a key or a non-empty prefix for ``s3://``, a table for SQL data nodes, a table for
DynamoDB (which AWS did not allow; headrace does). The ``S3*``, ``DynamoDB*`` and
``SqlQueryPrecondition`` (a headrace extension) checks read their own fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from engine.activities.base import AttemptContext, precondition
from engine.activities.sql_nodes import file_location, node_kind
from engine.activities.staging import local_path
from engine.errors import RunError


def _path_exists(path: Path, directory: bool) -> bool:
    if directory:
        return path.is_dir() and any(path.iterdir())
    return path.exists()


async def uri_exists(uri: str, *, prefix: bool) -> bool:
    path = local_path(uri)
    if path is not None:
        return await anyio.to_thread.run_sync(_path_exists, path, prefix or uri.endswith("/"))
    if uri.startswith("s3://"):
        from connectors import s3

        if prefix or uri.endswith("/"):
            return await s3.prefix_not_empty(uri)
        return await s3.key_exists(uri)
    raise RunError(f"cannot check {uri}: unsupported scheme", transient=False)


@precondition("Exists")
async def exists(ctx: AttemptContext) -> bool:
    node: dict[str, Any] = ctx.node_fields or {}
    node_type = node.get("type")
    kind = node_kind(node)
    if kind == "files":
        uri, directory = file_location(node) or (str(node.get("filePath")), False)
        return await uri_exists(uri, prefix=directory)
    if kind == "sql":
        from engine.activities.sql_nodes import table_exists

        return await table_exists(ctx, ctx.node_id or "")
    if kind == "dynamodb":
        from connectors import dynamodb

        return await dynamodb.table_exists(str(node.get("tableName")), node.get("region"))
    raise RunError(f"Exists cannot check a {node_type or 'untyped'} object", transient=False)


@precondition("S3KeyExists")
async def s3_key_exists(ctx: AttemptContext) -> bool:
    return await uri_exists(str(ctx.field_text("s3Key")), prefix=False)


@precondition("S3PrefixNotEmpty")
async def s3_prefix_not_empty(ctx: AttemptContext) -> bool:
    return await uri_exists(str(ctx.field_text("s3Prefix")), prefix=True)


@precondition("DynamoDBTableExists")
async def dynamodb_table_exists(ctx: AttemptContext) -> bool:
    from connectors import dynamodb

    return await dynamodb.table_exists(str(ctx.field_text("tableName")),
                                       ctx.field_text("region"))


@precondition("DynamoDBDataExists")
async def dynamodb_data_exists(ctx: AttemptContext) -> bool:
    from connectors import dynamodb

    return await dynamodb.table_has_data(str(ctx.field_text("tableName")),
                                         ctx.field_text("region"))


@precondition("SqlQueryPrecondition")
async def sql_query(ctx: AttemptContext) -> bool:
    from engine.activities.sql_nodes import query_is_true

    return await query_is_true(ctx, ctx.refs("database")[0], str(ctx.field_text("query")))
