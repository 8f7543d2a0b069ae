"""The ``${input1}`` / ``${output1}`` tables of a HiveActivity: data nodes staged to local
directories and declared to Spark SQL.

As on AWS (``stage: true``, the default), input *n* and output *n* become tables named
``input``\\ *n* and ``output``\\ *n*, with the columns of the node's data format (``column``:
``name TYPE`` in Hive types; STRING when a type is left out):

* S3DataNode (``s3://``, or ``file://``/a plain path): an input is downloaded into a local
  directory first (a ``filePath`` as the one file of it); an output is a fresh local directory
  uploaded after the script succeeded (the objects of the prefix the script did not write are
  then deleted: ``INSERT OVERWRITE`` replaced the table's data), ``_SUCCESS`` last. CSV is
  RFC 4180 with ``"`` doubled inside quotes; TSV is tab-separated, ``\\N`` for NULL,
  unquoted; Custom is its ``columnSeparator``/``recordSeparator``, unquoted; RegEx is read with
  Hive's ``RegexSerDe``.
* DynamoDBDataNode (with a DynamoDBDataFormat naming its columns): an input is scanned through
  headrace's DynamoDB connector into JSON lines of those columns, paced by
  ``readThroughputPercent``; an output's JSON lines are loaded into the table with full-item
  puts, paced by ``writeThroughputPercent`` (not atomic, idempotent by key).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from engine.activities.base import AttemptContext
from engine.activities.sql_nodes import file_location
from engine.errors import RunError

_IO = anyio.CapacityLimiter(4)


def sql_string(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _one(fields: dict[str, Any], name: str) -> Any:
    value = fields.get(name)
    return value[0] if isinstance(value, list) and value else value


def _ref(fields: dict[str, Any], name: str) -> str | None:
    value = _one(fields, name)
    return value["ref"] if isinstance(value, dict) and "ref" in value else None


@dataclass
class HiveTable:
    name: str
    node_id: str
    node: dict[str, Any]
    format_type: str
    format_fields: dict[str, Any]
    local: Path
    is_output: bool

    @property
    def kind(self) -> str:
        return str(_one(self.node, "type") or "")

    def columns(self) -> list[tuple[str, str]]:
        raw = self.format_fields.get("column") or []
        raw = [raw] if isinstance(raw, str) else list(raw)
        out = []
        for spec in raw:
            parts = str(spec).split(None, 1)
            if parts:
                out.append((parts[0], parts[1].strip() if len(parts) > 1 else "STRING"))
        return out

    def column_list(self) -> str:
        return ", ".join(f"`{n}` {t}" for n, t in self.columns())

    def ddl(self) -> str:
        cols = self.columns()
        if self.is_output and not cols:
            raise RunError(f"{self.node_id}: the output table {self.name} needs the columns of "
                           "its data format ('column' on the node's dataFormat)",
                           transient=False)
        schema = f" ({self.column_list()})" if cols else ""
        path = sql_string(str(self.local))
        if self.kind == "DynamoDBDataNode":
            if not cols:
                raise RunError(f"{self.node_id}: a DynamoDBDataNode table needs a dataFormat "
                               "(DynamoDBDataFormat) naming its columns", transient=False)
            return f"CREATE TABLE {self.name}{schema} USING json OPTIONS (path {path})"
        t, f = self.format_type, self.format_fields
        if t == "RegEx":
            regex = str(_one(f, "inputRegEx") or "")
            cols_text = ", ".join(f"`{n}` STRING" for n, _ in cols) or "`line` STRING"
            return (f"CREATE EXTERNAL TABLE {self.name} ({cols_text}) ROW FORMAT SERDE "
                    "'org.apache.hadoop.hive.serde2.RegexSerDe' WITH SERDEPROPERTIES "
                    f"('input.regex' = {sql_string(regex)}) LOCATION {path}")
        options = {"path": str(self.local), "header": "false"}
        if t in ("", "CSV"):
            escape = str(_one(f, "escapeChar") or '"')
            options.update(sep=",", quote='"', escape=escape)
        elif t == "TSV":
            options.update(sep=str(_one(f, "columnSeparator") or "\t"), quote="\u0000",
                           escape=str(_one(f, "escapeChar") or "\\"), nullValue="\\N",
                           lineSep=str(_one(f, "recordSeparator") or "\n"))
        elif t == "Custom":
            options.update(sep=str(_one(f, "columnSeparator") or ","), quote="\u0000",
                           lineSep=str(_one(f, "recordSeparator") or "\n"))
        else:
            raise RunError(f"{self.node_id}: a {t} data format cannot be a Hive table on an "
                           "S3DataNode here (CSV, TSV, Custom and RegEx can)", transient=False)
        if str(_one(f, "header") or "").lower() == "true":
            options["header"] = "true"
        rendered = ", ".join(f"{k} {sql_string(v)}" for k, v in options.items())
        return f"CREATE TABLE {self.name}{schema} USING csv OPTIONS ({rendered})"


def tables_of(ctx: AttemptContext, root: Path) -> list[HiveTable]:
    out = []
    for role in ("input", "output"):
        for n, node_id in enumerate(ctx.refs(role), start=1):
            node = ctx.resolve(node_id)
            format_id = _ref(node, "dataFormat")
            fmt = ctx.resolve(format_id) if format_id else {}
            name = f"{role}{n}"
            out.append(HiveTable(name, node_id, node, str(_one(fmt, "type") or ""), fmt,
                                 root / name, role == "output"))
    return out


async def stage_in(table: HiveTable) -> None:
    """An input table's data into its local directory."""
    await anyio.to_thread.run_sync(lambda: table.local.mkdir(parents=True, exist_ok=True))
    if table.kind == "DynamoDBDataNode":
        await _dynamodb_to_json(table)
        return
    if table.kind != "S3DataNode":
        raise RunError(f"{table.node_id}: a {table.kind or 'untyped object'} cannot be a Hive "
                       "table here (S3DataNode and DynamoDBDataNode can)", transient=False)
    from engine.activities import staging

    await staging.stage_in(table.node, table.local)


async def _dynamodb_to_json(table: HiveTable) -> None:
    from connectors.base import JSONL, EndpointOptions
    from connectors.copy import copy
    from connectors.dynamodb import DynamoDBSource, DynamoDBTable
    from connectors.formats import parse_columns
    from connectors.local import LocalSink

    columns = parse_columns([f"{n} {t}" for n, t in table.columns()])
    source = DynamoDBSource(DynamoDBTable.from_node(table.node, columns),
                            EndpointOptions(parallel=4))
    sink = LocalSink(str(table.local / "items.json"), JSONL.replace(columns=columns),
                     compression="none")
    await copy(source, sink)


async def stage_out(ctx: AttemptContext, table: HiveTable) -> str:
    """An output table's files to its data node; what was written, for the log."""
    files = await anyio.to_thread.run_sync(_written_files, table.local)
    if table.kind == "DynamoDBDataNode":
        return await _json_to_dynamodb(table, files)
    location = file_location(table.node)
    if location is None:
        raise RunError(f"{table.node_id}: the output has neither directoryPath nor filePath",
                       transient=False)
    url, is_dir = location
    if not is_dir:
        raise RunError(f"{table.node_id}: a Hive output table needs a directoryPath",
                       transient=False)
    if url.startswith("s3://"):
        from connectors import s3

        prefix = url.rstrip("/") + "/"
        existing = set(await s3.list_names(prefix))
        names = []
        for path in sorted(files, key=lambda p: p.name == "_SUCCESS"):
            name = path.relative_to(table.local).as_posix()
            await s3.upload_file(path, prefix + name)
            names.append(name)
        stale = sorted(n for n in existing - set(names) if "/" not in n)
        if stale:
            await s3.delete_names(prefix, stale)
        return f"{len(names)} file(s) to {url}"
    from engine.activities.staging import local_path

    target = local_path(url)
    if target is None:
        raise RunError(f"{table.node_id}: cannot write a Hive table to {url}", transient=False)

    def replace() -> None:
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(table.local, target,
                        ignore=shutil.ignore_patterns("*.crc", ".*.crc"))

    await anyio.to_thread.run_sync(replace, limiter=_IO)
    return f"{len(files)} file(s) to {url}"


async def _json_to_dynamodb(table: HiveTable, files: list[Path]) -> str:
    from connectors.base import JSONL, EndpointOptions
    from connectors.copy import copy
    from connectors.dynamodb import DynamoDBSink, DynamoDBTable
    from connectors.formats import parse_columns
    from connectors.local import LocalSource

    columns = parse_columns([f"{n} {t}" for n, t in table.columns()])
    fmt = JSONL.replace(columns=columns)
    sink = DynamoDBSink(DynamoDBTable.from_node(table.node, columns), EndpointOptions(parallel=4))
    rows = 0
    for path in files:
        if path.name.startswith(("_", ".")):
            continue
        result = await copy(LocalSource(str(path), fmt, compression="none"), sink)
        rows += result.rows
    return f"{rows} item(s) to dynamodb://{_one(table.node, 'tableName')}"


def _written_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and not p.name.endswith(".crc"))
