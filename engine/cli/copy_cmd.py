"""``headrace copy SOURCE DEST``: one streaming copy between any two connector URLs."""

from __future__ import annotations

import json
import os
import resource
import sys
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import anyio
import click

from connectors.base import (
    CSV,
    DYNAMODB_JSONL,
    MAX_PARTITIONS,
    EndpointOptions,
    Progress,
    TextFormat,
)
from connectors.copy import CopyOptions, CopyResult
from connectors.copy import copy as run_copy
from connectors.errors import ConfigError, ConnectorError, root_cause
from connectors.formats import format_for_path, format_named
from connectors.local import STDIO, path_from_url
from connectors.urls import (
    open_sink,
    open_source,
    redact_text,
    redact_url,
    scheme_of,
    url_passwords,
)
from engine.cli.copy_progress import (
    PROGRESS_MODES,
    ProgressDisplay,
    ProgressMode,
    figures,
    resolve_mode,
)
from engine.cli.help import examples
from engine.cli.log_lines import configure_command_log
from engine.cli.output import CommandFailed, output_option
from engine.cli.store_option import store_option
from engine.errors import HeadraceError
from engine.telemetry.command import command_telemetry
from engine.telemetry.metrics import queue_depth_recorder, record_copy
from engine.telemetry.redact import add_secrets


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@dataclass(frozen=True)
class Increments:
    """``--incremental COLUMN [--key COLUMNS] [--lookback PERIOD]``."""

    column: str
    key: tuple[str, ...]
    lookback: str | None


def increment_url(dest: str, run: int) -> str:
    """Where run ``run`` of an incremental copy to files or S3 writes: a folder of its own
    below DEST (which must be one), so earlier increments stay; a rerun after a crash before
    the store noted the run writes the same folder again."""
    if not dest.endswith("/") and not (scheme_of(dest) == "file" and os.path.isdir(
            path_from_url(dest))):
        raise ConfigError(f"{redact_url(dest)}: an incremental copy to files or S3 writes a "
                          "folder per increment: give a directory or prefix (ending in /)")
    from engine.activities.incremental import increment_folder

    return dest.rstrip("/") + "/" + increment_folder(run)


async def _incremental(source_url: str, dest_url: str, options: EndpointOptions,
                       sink_options: EndpointOptions, copy_options: CopyOptions,
                       progress: Progress, inc: Increments) -> tuple[CopyResult, dict[str, Any]]:
    from connectors.sql import IncrementSpec
    from engine.activities.incremental import (
        copy_key,
        lease_owner,
        one_at_a_time,
        parse_lookback,
        run_incremental,
    )
    from engine.runtime.crashpoints import crash_point
    from engine.store import open_store
    from engine.store.records import utcnow

    spec = IncrementSpec(inc.column, inc.key, parse_lookback(inc.lookback))
    source = open_source(source_url, options)
    shown_source, shown_dest = redact_url(source_url), redact_url(dest_url)
    # a query is part of what the copy reads: another query is another copy
    key = copy_key(shown_source + (f"\n{options.query}" if options.query else ""),
                   shown_dest, inc.column)
    if options.query:
        shown_source = source.describe
    async with open_store() as store, one_at_a_time(store, key, lease_owner("copy"), utcnow,
                                                    _waiting):
        record = await store.copy_state(key)
        files = scheme_of(dest_url) in _TEXT_SCHEMES
        run_url = increment_url(dest_url, (record.runs if record else 0) + 1) if files \
            else dest_url
        sink = open_sink(run_url, sink_options)
        done = await run_incremental(source, sink, spec, key,
                                     stored=record.state if record else None,
                                     options=copy_options, progress=progress)
        crash_point("incremental-output-complete")
        # files and S3: this is the commit of the watermark (the output is complete); SQL
        # targets committed theirs with the rows, and the store keeps a copy for describe-copy
        run = await store.record_copy_run(key, source=shown_source, dest=shown_dest,
                                          column=inc.column, state=done.state.to_json(),
                                          rows=done.result.rows, watermark=done.state.display)
    return done.result, {**done.as_json(), "copyKey": key, "run": run}


async def _waiting(holder: str) -> None:
    click.echo(f"headrace copy: waiting for another run of this incremental copy ({holder})",
               err=True)


async def _run(source_url: str, dest_url: str, options: EndpointOptions,
               sink_options: EndpointOptions, shown: ProgressMode, progress: Progress,
               verify: bool = False, inc: Increments | None = None,
               ) -> tuple[CopyResult, dict[str, Any] | None]:
    copy_options = CopyOptions(on_queue_depth=queue_depth_recorder(None), verify=verify)

    async def one_copy() -> tuple[CopyResult, dict[str, Any] | None]:
        if inc is not None:
            return await _incremental(source_url, dest_url, options, sink_options,
                                      copy_options, progress, inc)
        source = open_source(source_url, options)
        sink = open_sink(dest_url, sink_options)
        return await run_copy(source, sink, copy_options, progress=progress), None

    if shown == "none":
        result, increment = await one_copy()
    else:
        display = ProgressDisplay(progress, shown)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(display.run)
                result, increment = await one_copy()
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise root_cause(group) from None
        display.finish()
    record_copy(None, redact_url(source_url), redact_url(dest_url), rows=result.rows,
                nbytes=result.bytes, seconds=result.seconds, lane=result.lane,
                retries=result.retries)
    return result, increment


def default_format(source: str, dest: str) -> TextFormat | None:
    """The format when ``--format`` is not given: the ends decide (a file's extension, else
    CSV), except that beside a DynamoDB table a JSON-lines or extensionless file or S3 end
    holds DynamoDB's export lines (``{"Item": {...}}``, typed), as DynamoDB's own S3 export
    writes them: every attribute keeps its type and sparse items survive a round trip."""
    schemes = (scheme_of(source), scheme_of(dest))
    if schemes.count("dynamodb") != 1:
        return None
    other = dest if schemes[0] == "dynamodb" else source
    if scheme_of(other) not in ("file", "s3"):
        return None
    implied = format_for_path(other)
    return DYNAMODB_JSONL if implied is None or implied.kind == "jsonl" else None


FORMAT_NAMES = ["csv", "tsv", "jsonl", "dynamodb-jsonl", "parquet"]
#: the ends a format applies to: files and S3 objects (databases have their own types)
_TEXT_SCHEMES = ("file", "s3")


def end_formats(source: str, dest: str, *, both: str | None = None,
                source_format: str | None = None, dest_format: str | None = None,
                header: bool = False) -> tuple[TextFormat | None, TextFormat | None]:
    """The format of each end: ``--from-format``/``--to-format``, else ``--format`` (both
    ends), else what the end implies (its extension; beside DynamoDB its typed lines, see
    :func:`default_format`). ``header``: the CSV and TSV ends have a header line (read as the
    column names, written from them). None leaves an end to decide for itself."""
    implied = default_format(source, dest)
    out: list[TextFormat | None] = []
    for url, named in ((source, source_format or both), (dest, dest_format or both)):
        fmt = format_named(named) if named else implied
        if header and scheme_of(url) in _TEXT_SCHEMES:
            base = fmt or format_for_path(url) or CSV
            if base.kind in ("csv", "tsv"):
                fmt = base.replace(header=True)
        out.append(fmt)
    return out[0], out[1]


def contradicted_extensions(source: str, dest: str, both: str | None) -> list[str]:
    """Ends whose extension says another format than ``--format`` (which applies to both):
    ``copy in.csv out.txt --format tsv`` reads in.csv as TSV."""
    if both is None:
        return []
    named = format_named(both)
    found = []
    for verb, url, flag in (("read", source, "--to-format"), ("written", dest,
                                                             "--from-format")):
        implied = format_for_path(url) if scheme_of(url) in _TEXT_SCHEMES else None
        if implied is not None and implied.kind != named.kind:
            found.append(f"{redact_url(url)} is {verb} as {both} (--format applies to both "
                         f"ends), not as the {implied.kind} its name says; to convert, give "
                         f"{flag} {both} instead")
    return found


def with_parquet_compression(dest: str, fmt: TextFormat | None,
                             compression: str) -> TextFormat:
    """DEST's format with ``--parquet-compression``; an error unless DEST is Parquet."""
    implied = fmt or (format_for_path(dest) if scheme_of(dest) in _TEXT_SCHEMES else None)
    if implied is None or implied.kind != "parquet":
        raise click.UsageError("--parquet-compression applies to a Parquet DEST (--format "
                               "parquet, --to-format parquet or a .parquet name)")
    return implied.replace(parquet_compression=compression)


def summary(result: CopyResult, progress: Progress | None = None) -> dict[str, Any]:
    """The ``--output json`` summary; with the copy's ``progress``, also its final figures
    (``total``, ``percent``, ``bytesRead``, ``bytesWritten``, ``partitions``)."""
    seconds = max(result.seconds, 1e-9)
    extra = {} if progress is None else {
        k: v for k, v in figures(progress, result.seconds, done=True).items()
        if k not in ("rows", "seconds", "etaSeconds")}
    return {
        "rows": result.rows,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 6),
        "rowsPerSecond": round(result.rows / seconds, 1),
        "mbPerSecond": round(result.bytes / 1e6 / seconds, 3),
        "peakRssBytes": _peak_rss_bytes(),
        "lane": result.lane,
        **extra,
        **({"verify": result.verify.as_json()} if result.verify is not None else {}),
    }


def _fail(message: str, code: int, *urls: str) -> NoReturn:
    text = redact_text(message, *urls)
    for secret in _secrets_of(urls):
        text = text.replace(secret, "***")
    raise CommandFailed(text, code, prefix="headrace copy: error")


#: the schemes whose URLs may name a connection (``postgresql://@name``)
_SQL_SCHEMES = ("postgresql", "postgres", "redshift", "mysql", "mariadb")


def _secrets_of(urls: tuple[str, ...]) -> list[str]:
    """The passwords ``urls`` carry or name (through a named connection), as written and
    decoded: what messages and spans must not show."""
    found = {p for url in urls for p in url_passwords(url)}
    sql_urls = [url for url in urls if scheme_of(url) in _SQL_SCHEMES]
    if sql_urls:  # only database URLs name connections (connectors.sql loads pydantic)
        from connectors.sql import connection_passwords

        found.update(p for url in sql_urls for p in connection_passwords(url))
    return sorted(found, key=len, reverse=True)


def named_end(name: str, table: str, query: str | None) -> str:
    """The URL of ``--source-conn``/``--dest-conn NAME``: the table ``table`` of the named
    connection (``-`` with ``--query``: its rows, no table)."""
    from urllib.parse import quote

    from connectors.sql import find_connection

    scheme = scheme_of(find_connection(name).url)
    if table == STDIO:
        if query is None:
            raise ConfigError(f"the end of connection {name!r} is a table; - (no table) only "
                              "for a source read with --query")
        return f"{scheme}://@{name}"
    return f"{scheme}://@{name}?table={quote(table, safe='.')}"


@click.command("copy", epilog=examples(
    'headrace copy orders.csv s3://bucket/orders/ --output json',
    "headrace copy 'postgresql://app@db:5432/shop?table=orders' orders.tsv",
    "headrace copy s3://bucket/in.csv 'mysql://app@db/shop?table=t' --create",
    "headrace copy dynamodb://orders export.jsonl      # DynamoDB's typed export lines",
    "headrace copy --source-conn warehouse public.orders orders.csv   # a named connection",
    "headrace copy 'postgresql://app@db/shop?table=t' s3://bucket/t/ --format parquet",
    "headrace copy 'postgresql://app@db/shop?table=t' 'mysql://app@dw/shop?table=t' "
    "--incremental updated_at --key id",
    'headrace copy in.csv - | gzip > out.csv.gz        # - is stdout (or stdin as SOURCE)',
))
@click.argument("source")
@click.argument("dest")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES),
              help="Format of both file and S3 ends (default: from the extension, else csv; "
                   "beside DynamoDB, .jsonl or no extension means dynamodb-jsonl, the typed "
                   "{\"Item\": ...} lines of DynamoDB's export).")
@click.option("--from-format", "from_fmt", type=click.Choice(FORMAT_NAMES),
              help="Format of SOURCE only (overrides --format there).")
@click.option("--to-format", "to_fmt", type=click.Choice(FORMAT_NAMES),
              help="Format of DEST only (overrides --format there).")
@click.option("--header/--no-header", default=False, show_default=True,
              help="CSV and TSV ends have a header line: read as the column names (the keys "
                   "of JSON lines, the columns of a table), written from them.")
@click.option("--parquet-compression", type=click.Choice(["zstd", "snappy", "none"]),
              help="Compression of a Parquet DEST's row groups (default: zstd).")
@click.option("--query", help="SQL whose result is the source (database sources).")
@click.option("--parallel", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Parts in flight, scan segments, writers.")
@click.option("--create", is_flag=True, help="Create the destination table when missing.")
@click.option("--source-conn", metavar="NAME",
              help="SOURCE is a table of the named connection NAME (HEADRACE_CONN_NAME or "
                   "the connections file; - with --query).")
@click.option("--dest-conn", metavar="NAME",
              help="DEST is a table of the named connection NAME.")
@click.option("--partitions", type=click.IntRange(1, MAX_PARTITIONS), default=1,
              show_default=True,
              help="Read a PostgreSQL or MySQL table as N key ranges at once (PostgreSQL "
                   "without a key: page ranges), all from one consistent snapshot; load a "
                   "PostgreSQL table by N COPY streams into a staging table swapped in at "
                   "once.")
@click.option("--progress", "progress_mode", type=click.Choice(PROGRESS_MODES), default="auto",
              show_default=True,
              help="Progress on stderr: done/total, percent and ETA where the source knows "
                   "its size (files, S3) or estimates its rows (tables, marked ~). auto: a "
                   "live line on a terminal (JSON lines with --output json), none otherwise.")
@click.option("--incremental", "incremental", metavar="COLUMN",
              help="Copy only the rows past this column's last committed watermark (a "
                   "PostgreSQL or MySQL table source); rerunning continues from it.")
@click.option("--key", "key", metavar="COLUMNS",
              help="With --incremental: merge by these columns (upsert: the latest version "
                   "of each key wins) instead of appending; comma-separated.")
@click.option("--lookback", metavar="PERIOD",
              help="With --incremental: also re-read rows this far before the watermark "
                   "(30s, 5m, 1h or '5 minutes'), for rows committed late; re-read rows are "
                   "matched by key (--key, else the source's primary key).")
@click.option("--verify", is_flag=True,
              help="Compare the rows and a content checksum of both ends before the "
                   "destination commits; a mismatch fails the copy and leaves no output.")
@output_option
def copy(source: str, dest: str, fmt: str | None, from_fmt: str | None, to_fmt: str | None,
         header: bool, parquet_compression: str | None, query: str | None, parallel: int,
         create: bool, source_conn: str | None, dest_conn: str | None, partitions: int,
         progress_mode: str, incremental: str | None, key: str | None, lookback: str | None,
         verify: bool, output: str) -> None:
    """Copy SOURCE to DEST (paths, file://, s3://, postgresql://, mysql://, dynamodb://).

    - is stdin as SOURCE and stdout as DEST (then the summary goes to stderr). A FIFO, a
    device or a symlink as DEST is written through, as cat would; only a regular file is
    written to a temp and renamed over, so nothing but DEST is ever replaced.

    A database may be a named connection, its password kept out of the command line:
    postgresql://@NAME/db?table=t, or --source-conn NAME / --dest-conn NAME with SOURCE or
    DEST a table."""
    try:
        source = named_end(source_conn, source, query) if source_conn else source
        dest = named_end(dest_conn, dest, None) if dest_conn else dest
    except ConfigError as exc:
        _fail(str(exc), 2)
    source_format, dest_format = end_formats(source, dest, both=fmt, source_format=from_fmt,
                                             dest_format=to_fmt, header=header)
    if parquet_compression is not None:
        dest_format = with_parquet_compression(dest, dest_format, parquet_compression)
    if (key or lookback) and not incremental:
        raise click.UsageError("--key and --lookback go with --incremental COLUMN")
    increments = Increments(incremental, tuple(k.strip() for k in (key or "").split(",")
                                               if k.strip()), lookback) \
        if incremental else None
    if from_fmt is None and to_fmt is None:
        for warning in contradicted_extensions(source, dest, fmt):
            click.echo(f"headrace copy: warning: {warning}", err=True)
    options = EndpointOptions(format=source_format, query=query,
                              parallel=parallel, create=create, partitions=partitions)
    sink_options = EndpointOptions(format=dest_format, parallel=parallel, create=create,
                                   partitions=partitions)
    shown = resolve_mode(cast(ProgressMode, progress_mode), output, sys.stderr)
    progress = Progress()
    configure_command_log("headrace copy")  # e.g. a call that could not reach S3, retried
    # as written and decoded, in the user part or a JDBC-style ``password=``: what redact_text
    # masks in messages is what telemetry scrubs
    add_secrets(_secrets_of((source, dest)))
    try:
        with command_telemetry():
            result, increment = anyio.run(_run, source, dest, options, sink_options, shown,
                                          progress, verify, increments)
    except KeyboardInterrupt:
        _fail("interrupted", 130, source, dest)
    except ConfigError as exc:
        _fail(str(exc), 2, source, dest)
    except (ConnectorError, HeadraceError) as exc:
        _fail(str(exc), 1, source, dest)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}", 1, source, dest)
    data = summary(result, progress)
    if increment is not None:
        data["incremental"] = increment
    to_stderr = dest == STDIO  # stdout carries the data
    if output == "json":
        click.echo(json.dumps(data), err=to_stderr)
    elif result.lane in ("direct", "server-side"):  # bytes as they are: no records counted
        click.echo(
            f"copied {data['bytes']:,} bytes from {redact_url(source)} to {redact_url(dest)} "
            f"in {result.seconds:.2f} s ({data['mbPerSecond']:,.2f} MB/s, {result.lane} "
            "copy, byte for byte)", err=to_stderr)
    else:
        if increment is not None:
            click.echo(f"incremental by {increment['column']}: watermark "
                       f"{increment['previousWatermark'] or '(none: the first run)'} -> "
                       f"{increment['watermark'] or '(none)'}, run {increment['run']}",
                       err=to_stderr)
        if result.verify is not None:
            v = result.verify
            click.echo(f"verified: {v.source.rows:,} rows, checksum {v.source.checksum} at "
                       "both ends", err=to_stderr)
        click.echo(
            f"copied {data['rows']:,} rows, {data['bytes']:,} bytes from {redact_url(source)} "
            f"to {redact_url(dest)} in {result.seconds:.2f} s "
            f"({data['rowsPerSecond']:,.0f} rows/s, {data['mbPerSecond']:,.2f} MB/s, "
            f"{result.lane} lane)", err=to_stderr)


@click.command("describe-copy", epilog=examples(
    "headrace describe-copy                    # every incremental copy in the store",
    "headrace describe-copy copy:3f2a... --output json",
))
@click.argument("copy_key", required=False)
@store_option
@output_option
def describe_copy(copy_key: str | None, store_url: str | None, output: str) -> None:
    """Incremental copies: each one's watermark, rows moved and runs (COPY_KEY: one copy,
    with every run)."""
    from engine.activities.incremental import describe_copies
    from engine.errors import NotFound

    try:
        copies = anyio.run(describe_copies, store_url, copy_key)
    except NotFound as exc:  # the copy asked for is not in the store
        raise CommandFailed(str(exc), 1, prefix="headrace describe-copy: error") from None
    except HeadraceError as exc:  # no such store (a mistyped --store): a usage error
        raise CommandFailed(str(exc), 2, prefix="headrace describe-copy: error") from None
    if output == "json":
        click.echo(json.dumps({"copies": copies}))
        return
    if not copies:
        click.echo("no incremental copies in this store")
    for c in copies:
        click.echo(f"{c['copyKey']}  {c['source']} -> {c['dest']}")
        click.echo(f"  column {c['column']}, watermark {c['watermark']}, {c['rowsMoved']:,} "
                   f"rows moved in {c['runs']} runs, last {c['updatedAt']}")
        for r in c.get("history", []):
            click.echo(f"    run {r['run']}: {r['rowsMoved']:,} rows, watermark "
                       f"{r['watermark']}, {r['finishedAt']}")


COMMANDS = [copy, describe_copy]
