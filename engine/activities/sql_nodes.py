"""Data nodes and database objects -> connector endpoints.

The only place the engine turns definition fields into connectors: an S3DataNode becomes a
local (``file://`` or a plain path) or S3 source/sink with its data format and compression; a
SqlDataNode, MySqlDataNode or RedshiftDataNode becomes a PostgreSQL or MySQL endpoint chosen by
its database's ``connectionString`` (``jdbc:mysql://`` -> MySQL; ``jdbc:postgresql://`` and
``jdbc:redshift://`` -> PostgreSQL); a DynamoDBDataNode becomes a DynamoDB table.

``RdsDatabase`` names an RDS instance (``rdsInstanceId``) that only AWS can look up: headrace
accepts a ``connectionString`` on it as an extension, and otherwise explains what to set.
``RedshiftDatabase.clusterId`` likewise needs ``connectionString`` here.
"""

from __future__ import annotations

from typing import Any, Literal

from connectors.base import CSV, EndpointOptions, Sink, Source, TextFormat
from connectors.errors import ConfigError
from engine.activities.base import AttemptContext
from engine.errors import RunError

NodeKind = Literal["files", "sql", "dynamodb"]

#: The one dispatch from a data node's type to the kind of connector that serves it (copies,
#: ``Exists``, staging all ask here).
NODE_KINDS: dict[str, NodeKind] = {
    "S3DataNode": "files",  # s3:// or, as a headrace extension, file:// and plain paths
    "SqlDataNode": "sql", "MySqlDataNode": "sql", "RedshiftDataNode": "sql",
    "DynamoDBDataNode": "dynamodb",
}


def node_kind(node: dict[str, Any]) -> NodeKind | None:
    """The kind of connector a data node's ``type`` is served by; None for other objects."""
    return NODE_KINDS.get(_one(node, "type") or "")


def file_location(node: dict[str, Any]) -> tuple[str, bool] | None:
    """(uri, is_directory) of an S3DataNode: its ``directoryPath``, else its ``filePath``;
    None when it has neither."""
    directory = _one(node, "directoryPath")
    if directory:
        return directory, True
    file_path = _one(node, "filePath")
    return (file_path, False) if file_path else None


def _one(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return None
    return None if value is None else str(value)


def _ref(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value["ref"] if isinstance(value, dict) and "ref" in value else None


def data_format(ctx: AttemptContext, fields: dict[str, Any]) -> TextFormat | None:
    """The node's ``dataFormat`` as a TextFormat (None when unset)."""
    from connectors.formats import format_from_definition

    format_id = _ref(fields, "dataFormat")
    if format_id is None:
        return None
    format_fields = ctx.resolve(format_id)
    type_name = _one(format_fields, "type") or ""
    return format_from_definition(type_name, format_fields)


def connection(ctx: AttemptContext, node_id: str, node: dict[str, Any],
               database_id: str | None = None) -> tuple[str, str | None, str | None, str | None]:
    """(connectionString, username, password, databaseName) for a SQL node or a database."""
    db_id = database_id or _ref(node, "database")
    if db_id is None:
        conn = _one(node, "connectionString")
        if conn is None:
            raise RunError(f"{node_id}: no 'database' and no 'connectionString' to connect "
                           "with", transient=False)
        return conn, _one(node, "username"), _one(node, "*password"), None
    db = ctx.resolve(db_id)
    db_type = _one(db, "type")
    conn = _one(db, "connectionString")
    if conn is None:
        if db_type == "RdsDatabase":
            raise RunError(
                f"{db_id}: headrace cannot look up the RDS instance "
                f"{_one(db, 'rdsInstanceId')!r}; give the database a 'connectionString' "
                "(jdbc:mysql://host:port/db or jdbc:postgresql://host:port/db)",
                transient=False)
        if db_type == "RedshiftDatabase":
            raise RunError(f"{db_id}: headrace cannot look up the cluster "
                           f"{_one(db, 'clusterId')!r}; give a 'connectionString' instead",
                           transient=False)
        raise RunError(f"{db_id}: no connectionString", transient=False)
    return (_with_jdbc_properties(conn, db), _one(db, "username"), _one(db, "*password"),
            _one(db, "databaseName"))


def _with_jdbc_properties(conn: str, db: dict[str, Any]) -> str:
    """The database's ``jdbcProperties`` timeouts (``socketTimeout=...``) folded into its
    connection string, where the connector reads them."""
    from connectors.sql import with_properties

    props = db.get("jdbcProperties")
    entries = props if isinstance(props, list) else [props] if props else []
    return with_properties(conn, [str(e) for e in entries if isinstance(e, str)])


def sql_endpoint(ctx: AttemptContext, node_id: str, node: dict[str, Any] | None = None,
                 *, create: bool = False) -> Any:
    """A PostgresEndpoint or MySqlEndpoint for a SQL data node."""
    node = node if node is not None else ctx.resolve(node_id)
    conn, user, password, dbname = connection(ctx, node_id, node)
    table = _one(node, "table") or _one(node, "tableName")
    fields = dict(table=table, schema_name=_one(node, "schemaName"),
                  select_query=_one(node, "selectQuery"),
                  insert_query=_one(node, "insertQuery"),
                  create_table_sql=_one(node, "createTableSql"), create=create)
    return endpoint_for(conn, user, password, dbname, **fields)


def endpoint_for(conn: str, user: str | None, password: str | None, dbname: str | None,
                 **fields: Any) -> Any:
    from connectors.sql import parse_sql_url

    dialect = parse_sql_url(conn).dialect
    if dialect == "mysql":
        from connectors.mysql import MySqlEndpoint

        return MySqlEndpoint.from_fields(conn, user, password, dbname, **fields)
    from connectors.postgres import PostgresEndpoint

    return PostgresEndpoint.from_fields(conn, user, password, dbname, **fields)


def _s3_like(ctx: AttemptContext, node_id: str, node: dict[str, Any], *, sink: bool,
             options: EndpointOptions, folder: str | None = None) -> Source | Sink:
    fmt = data_format(ctx, node) or CSV
    compression = _one(node, "compression")
    compression = None if compression in (None, "none") else compression
    location = file_location(node)
    if location is None:
        raise ConfigError("the S3DataNode has neither directoryPath nor filePath")
    path, directory = location
    if directory and not path.endswith("/"):
        path += "/"
    if folder is not None:
        if not directory:
            raise ConfigError(f"{node_id}: an incremental copy writes a folder per "
                              "increment; give the node a directoryPath, not a filePath")
        path += folder
    if path.startswith("s3://"):
        from connectors import s3

        if sink:
            return s3.S3Sink(path, fmt, compression=compression, parallel=options.parallel)
        return s3.S3Source(path, fmt, compression=compression, parallel=options.parallel)
    from connectors import local

    local_path = local.path_from_url(path) + ("/" if directory else "")
    if sink:
        return local.LocalSink(local_path, fmt, compression=compression)
    return local.LocalSource(local_path, fmt, compression=compression)


def node_source(ctx: AttemptContext, node_id: str,
                options: EndpointOptions | None = None) -> Source:
    return _node(ctx, node_id, sink=False, options=options or EndpointOptions())  # type: ignore[return-value]


def node_sink(ctx: AttemptContext, node_id: str, options: EndpointOptions | None = None,
              *, checkpoint_key: str | None = None, folder: str | None = None) -> Sink:
    """The sink for a data node. ``checkpoint_key`` makes a PostgreSQL or MySQL table load
    happen once under that key (:mod:`connectors.postgres`,
    :mod:`connectors.mysql`); other sinks ignore it. ``folder``: an S3DataNode's output goes
    to this folder below its ``directoryPath`` (an incremental copy's increment)."""
    return _node(ctx, node_id, sink=True, options=options or EndpointOptions(),  # type: ignore[return-value]
                 checkpoint_key=checkpoint_key, folder=folder)


def _node(ctx: AttemptContext, node_id: str, *, sink: bool,
          options: EndpointOptions, checkpoint_key: str | None = None,
          folder: str | None = None) -> Source | Sink:
    node = ctx.resolve(node_id)
    node_type = _one(node, "type")
    kind = node_kind(node)
    if kind == "files":
        return _s3_like(ctx, node_id, node, sink=sink, options=options, folder=folder)
    if kind == "sql":
        ep = sql_endpoint(ctx, node_id, node)
        if not sink:
            if options.partitions > 1:
                ep = ep.model_copy(update={"partitions": options.partitions})
            return _sql_end(ep, sink=False)
        # endpoints that take a key (PostgreSQL, MySQL), tested without importing their driver
        if checkpoint_key and "checkpoint_key" in type(ep).model_fields \
                and not ep.insert_query:
            ep = ep.model_copy(update={"checkpoint_key": checkpoint_key})
        return _sql_end(ep, sink=True)
    if kind == "dynamodb":
        from connectors.dynamodb import DynamoDBSink, DynamoDBSource, DynamoDBTable

        fmt = data_format(ctx, node)
        table = DynamoDBTable.from_node(node, fmt.columns if fmt else ())
        return DynamoDBSink(table, options) if sink else DynamoDBSource(table, options)
    raise RunError(f"{node_id}: a {node_type or 'untyped object'} cannot be copied "
                   f"{'to' if sink else 'from'}", transient=False)


async def table_exists(ctx: AttemptContext, node_id: str) -> bool:
    """``Exists`` on a SQL data node: its table exists."""
    ep = sql_endpoint(ctx, node_id, ctx.node_fields if ctx.node_id == node_id else None)
    module = sql_connector(ep)
    return await module.table_exists(ep, ep.table)


async def query_is_true(ctx: AttemptContext, database_id: str, query: str) -> bool:
    """``SqlQueryPrecondition``: the query's first row's first column is true."""
    conn, user, password, dbname = connection(ctx, database_id, {}, database_id)
    ep = endpoint_for(conn, user, password, dbname)
    return await sql_connector(ep).query_is_true(ep, query)


def _sql_end(ep: Any, *, sink: bool) -> Source | Sink:
    """The source or sink of a PostgreSQL or MySQL endpoint (only its driver is imported)."""
    if ep.dialect == "mysql":
        from connectors.mysql import MySqlSink, MySqlSource

        return MySqlSink(ep) if sink else MySqlSource(ep)
    from connectors.postgres import PostgresSink, PostgresSource

    return PostgresSink(ep) if sink else PostgresSource(ep)


def sql_connector(ep: Any) -> Any:
    """The connector package of a PostgreSQL or MySQL endpoint (scripts, checks)."""
    if ep.dialect == "mysql":
        from connectors import mysql

        return mysql
    from connectors import postgres

    return postgres
