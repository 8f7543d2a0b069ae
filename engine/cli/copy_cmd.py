"""``headrace copy SOURCE DEST``: one streaming copy between any two connector URLs."""

from __future__ import annotations

import json
import resource
import sys
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
from connectors.local import STDIO
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
from engine.errors import HeadraceError
from engine.telemetry.command import command_telemetry
from engine.telemetry.metrics import queue_depth_recorder, record_copy
from engine.telemetry.redact import add_secrets


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


async def _run(source_url: str, dest_url: str, options: EndpointOptions,
               sink_options: EndpointOptions, shown: ProgressMode,
               progress: Progress) -> CopyResult:
    source = open_source(source_url, options)
    sink = open_sink(dest_url, sink_options)
    copy_options = CopyOptions(on_queue_depth=queue_depth_recorder(None))
    if shown == "none":
        result = await run_copy(source, sink, copy_options, progress=progress)
    else:
        display = ProgressDisplay(progress, shown)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(display.run)
                result = await run_copy(source, sink, copy_options, progress=progress)
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise root_cause(group) from None
        display.finish()
    record_copy(None, source.describe, sink.describe, rows=result.rows, nbytes=result.bytes,
                seconds=result.seconds, lane=result.lane, retries=result.retries)
    return result


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


FORMAT_NAMES = ["csv", "tsv", "jsonl", "dynamodb-jsonl"]
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
@output_option
def copy(source: str, dest: str, fmt: str | None, from_fmt: str | None, to_fmt: str | None,
         header: bool, query: str | None, parallel: int, create: bool,
         source_conn: str | None, dest_conn: str | None, partitions: int,
         progress_mode: str, output: str) -> None:
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
            result = anyio.run(_run, source, dest, options, sink_options, shown, progress)
    except KeyboardInterrupt:
        _fail("interrupted", 130, source, dest)
    except ConfigError as exc:
        _fail(str(exc), 2, source, dest)
    except (ConnectorError, HeadraceError) as exc:
        _fail(str(exc), 1, source, dest)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}", 1, source, dest)
    data = summary(result, progress)
    to_stderr = dest == STDIO  # stdout carries the data
    if output == "json":
        click.echo(json.dumps(data), err=to_stderr)
    elif result.lane in ("direct", "server-side"):  # bytes as they are: no records counted
        click.echo(
            f"copied {data['bytes']:,} bytes from {redact_url(source)} to {redact_url(dest)} "
            f"in {result.seconds:.2f} s ({data['mbPerSecond']:,.2f} MB/s, {result.lane} "
            "copy, byte for byte)", err=to_stderr)
    else:
        click.echo(
            f"copied {data['rows']:,} rows, {data['bytes']:,} bytes from {redact_url(source)} "
            f"to {redact_url(dest)} in {result.seconds:.2f} s "
            f"({data['rowsPerSecond']:,.0f} rows/s, {data['mbPerSecond']:,.2f} MB/s, "
            f"{result.lane} lane)", err=to_stderr)


COMMANDS = [copy]
