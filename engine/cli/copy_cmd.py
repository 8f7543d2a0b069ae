"""``headrace copy SOURCE DEST``: one streaming copy between any two connector URLs."""

from __future__ import annotations

import json
import resource
import sys
from typing import Any, NoReturn

import anyio
import click

from connectors.base import CSV, DYNAMODB_JSONL, EndpointOptions, Progress, TextFormat
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
from engine.cli.help import examples
from engine.cli.output import CommandFailed, output_option
from engine.cli.status_lines import configure_command_log
from engine.errors import HeadraceError
from engine.telemetry import add_secrets, command_telemetry
from engine.telemetry.metrics import queue_depth_recorder, record_copy

_REFRESH_SECONDS = 0.25


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


async def _show_progress(progress: Progress) -> None:
    """A live line on stderr (rows, bytes, rate, elapsed) until cancelled."""
    from tqdm import tqdm

    with tqdm(file=sys.stderr, unit=" rows", unit_scale=True, dynamic_ncols=True,
              leave=False) as bar:
        while True:
            bar.update(progress.rows - bar.n)
            bar.set_postfix_str(f"{progress.bytes / 1e6:,.1f} MB", refresh=True)
            await anyio.sleep(_REFRESH_SECONDS)


async def _run(source_url: str, dest_url: str, options: EndpointOptions,
               sink_options: EndpointOptions, live: bool, verify: bool = False) -> CopyResult:
    source = open_source(source_url, options)
    sink = open_sink(dest_url, sink_options)
    progress = Progress()
    copy_options = CopyOptions(on_queue_depth=queue_depth_recorder(None), verify=verify)
    if not live:
        result = await run_copy(source, sink, copy_options, progress=progress)
    else:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_show_progress, progress)
                result = await run_copy(source, sink, copy_options, progress=progress)
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise root_cause(group) from None
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


def summary(result: CopyResult) -> dict[str, Any]:
    seconds = max(result.seconds, 1e-9)
    return {
        "rows": result.rows,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 6),
        "rowsPerSecond": round(result.rows / seconds, 1),
        "mbPerSecond": round(result.bytes / 1e6 / seconds, 3),
        "peakRssBytes": _peak_rss_bytes(),
        "lane": result.lane,
        **({"verify": result.verify.as_json()} if result.verify is not None else {}),
    }


def _fail(message: str, code: int, *urls: str) -> NoReturn:
    raise CommandFailed(redact_text(message, *urls), code, prefix="headrace copy: error")


@click.command("copy", epilog=examples(
    'headrace copy orders.csv s3://bucket/orders/ --output json',
    "headrace copy 'postgresql://app@db:5432/shop?table=orders' orders.tsv",
    "headrace copy s3://bucket/in.csv 'mysql://app@db/shop?table=t' --create",
    "headrace copy dynamodb://orders export.jsonl      # DynamoDB's typed export lines",
    "headrace copy 'postgresql://app@db/shop?table=t' s3://bucket/t/ --format parquet",
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
@click.option("--verify", is_flag=True,
              help="Compare the rows and a content checksum of both ends before the "
                   "destination commits; a mismatch fails the copy and leaves no output.")
@output_option
def copy(source: str, dest: str, fmt: str | None, from_fmt: str | None, to_fmt: str | None,
         header: bool, parquet_compression: str | None, query: str | None, parallel: int,
         create: bool, verify: bool, output: str) -> None:
    """Copy SOURCE to DEST (paths, file://, s3://, postgresql://, mysql://, dynamodb://).

    - is stdin as SOURCE and stdout as DEST (then the summary goes to stderr). A FIFO, a
    device or a symlink as DEST is written through, as cat would; only a regular file is
    written to a temp and renamed over, so nothing but DEST is ever replaced."""
    source_format, dest_format = end_formats(source, dest, both=fmt, source_format=from_fmt,
                                             dest_format=to_fmt, header=header)
    if parquet_compression is not None:
        dest_format = with_parquet_compression(dest, dest_format, parquet_compression)
    if from_fmt is None and to_fmt is None:
        for warning in contradicted_extensions(source, dest, fmt):
            click.echo(f"headrace copy: warning: {warning}", err=True)
    options = EndpointOptions(format=source_format, query=query,
                              parallel=parallel, create=create)
    sink_options = EndpointOptions(format=dest_format, parallel=parallel, create=create)
    live = sys.stderr.isatty() and output == "text"
    configure_command_log("headrace copy")  # e.g. a call that could not reach S3, retried
    # as written and decoded, in the user part or a JDBC-style ``password=``: what redact_text
    # masks in messages is what telemetry scrubs
    add_secrets(p for url in (source, dest) for p in url_passwords(url))
    try:
        with command_telemetry():
            result = anyio.run(_run, source, dest, options, sink_options, live, verify)
    except KeyboardInterrupt:
        _fail("interrupted", 130, source, dest)
    except ConfigError as exc:
        _fail(str(exc), 2, source, dest)
    except (ConnectorError, HeadraceError) as exc:
        _fail(str(exc), 1, source, dest)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}", 1, source, dest)
    data = summary(result)
    to_stderr = dest == STDIO  # stdout carries the data
    if output == "json":
        click.echo(json.dumps(data), err=to_stderr)
    elif result.lane in ("direct", "server-side"):  # bytes as they are: no records counted
        click.echo(
            f"copied {data['bytes']:,} bytes from {redact_url(source)} to {redact_url(dest)} "
            f"in {result.seconds:.2f} s ({data['mbPerSecond']:,.2f} MB/s, {result.lane} "
            "copy, byte for byte)", err=to_stderr)
    else:
        if result.verify is not None:
            v = result.verify
            click.echo(f"verified: {v.source.rows:,} rows, checksum {v.source.checksum} at "
                       "both ends", err=to_stderr)
        click.echo(
            f"copied {data['rows']:,} rows, {data['bytes']:,} bytes from {redact_url(source)} "
            f"to {redact_url(dest)} in {result.seconds:.2f} s "
            f"({data['rowsPerSecond']:,.0f} rows/s, {data['mbPerSecond']:,.2f} MB/s, "
            f"{result.lane} lane)", err=to_stderr)


COMMANDS = [copy]
