"""``headrace serve``: the AWS Data Pipeline API (and the scheduler, unless told not to)."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import click

import engine.activities
import engine.preconditions  # noqa: F401  (registers the precondition checks)
from engine.cli.help import examples
from engine.cli.output import EXIT_USAGE, CommandFailed, output_option
from engine.cli.run_cmds import worker_group_option
from engine.cli.spark_options import spark_options
from engine.cli.store_option import store_option
from engine.errors import HeadraceError
from engine.runtime.runner import EXIT_INTERRUPTED
from engine.telemetry import command_telemetry


@click.command("serve", epilog=examples(
    'HEADRACE_API_CREDENTIALS=AKIDEXAMPLE:secret headrace serve --store sqlite:///store.db',
    'headrace serve --no-auth --port 8065                 # loopback only, no credentials',
    'headrace serve --store postgresql://headrace@db/headrace --no-scheduler --credentials keys',
))
@store_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback unless told otherwise).")
@click.option("--port", default=8065, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port, printed at start).")
@click.option("--credentials", "credentials_file", metavar="FILE",
              help="ACCESS_KEY_ID SECRET_ACCESS_KEY a line; requests must be signed (SigV4) "
                   "with one of them. Default: $HEADRACE_API_CREDENTIALS=ID:SECRET,...")
@click.option("--no-auth", is_flag=True,
              help="Serve without authentication (only on a loopback address).")
@click.option("--no-scheduler", is_flag=True,
              help="Serve the API only; another process (headrace engine) runs the pipelines.")
@click.option("--scheduler-only", is_flag=True,
              help="Run no attempt here: the work of every group (default included) waits "
                   "for `headrace worker` processes or task runners (PollForTask).")
@click.option("--task-poll-seconds", default=5.0, show_default=True,
              type=click.FloatRange(0, 60),
              help="How long PollForTask waits for work before answering that there is none.")
@click.option("--tls-cert", metavar="FILE", help="PEM certificate: serve HTTPS.")
@click.option("--tls-key", metavar="FILE", help="PEM private key of --tls-cert.")
@click.option("--max-concurrency", default=32, show_default=True)
@click.option("--poll-interval", default=2.0, show_default=True,
              help="Seconds between the scheduler's looks at the store.")
@click.option("--trace-url", "trace_url_template", metavar="TEMPLATE",
              envvar="HEADRACE_CONSOLE_TRACE_URL",
              help="The console links each attempt's trace id here; {trace_id} is replaced, "
                   "e.g. http://127.0.0.1:16686/trace/{trace_id} (Jaeger). "
                   "Default: $HEADRACE_CONSOLE_TRACE_URL.")
@click.option("--no-console", is_flag=True, help="Do not serve the web console at /console/.")
@worker_group_option
@spark_options
@output_option
def serve(store_url: str | None, host: str, port: int, credentials_file: str | None,
          no_auth: bool, no_scheduler: bool, scheduler_only: bool, task_poll_seconds: float,
          tls_cert: str | None, tls_key: str | None, max_concurrency: int,
          poll_interval: float, trace_url_template: str | None, no_console: bool,
          worker_groups: dict[str, int], output: str, **_: Any) -> None:
    """Serve the AWS Data Pipeline API (JSON 1.1, SigV4) on HOST:PORT and run the store's
    activated pipelines here, as `headrace engine` does (unless --no-scheduler).

    boto3, the aws CLI and Terraform work against it with the endpoint URL changed. SIGTERM
    or SIGINT stops gracefully (exit 130)."""
    from engine.server.serve import ServeOptions, configure_logging
    from engine.server.serve import serve as run_serve
    from engine.server.sigv4 import configured_credentials

    try:
        options = ServeOptions(store_url, host, port,
                               credentials=configured_credentials(credentials_file),
                               no_auth=no_auth, scheduler=not no_scheduler, tls_cert=tls_cert,
                               tls_key=tls_key, max_concurrency=max_concurrency,
                               poll_interval=poll_interval, worker_groups=worker_groups,
                               scheduler_only=scheduler_only,
                               task_poll_seconds=task_poll_seconds,
                               console=not no_console, trace_url_template=trace_url_template)
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None

    def ready(url: str) -> None:
        auth = "off (--no-auth)" if no_auth else f"SigV4, {len(options.credentials or ())} key(s)"
        role = "API only" if no_scheduler else "API and scheduler"
        if output == "json":
            click.echo(json.dumps({"event": "listening", "url": url,
                                   "scheduler": not no_scheduler, "auth": not no_auth,
                                   "console": None if no_console else f"{url}/console/"}),
                       nl=True)
        else:
            click.echo(f"headrace serve listening on {url} ({role}; auth {auth})", err=True)
            if not no_console:
                click.echo(f"console: {url}/console/", err=True)

    configure_logging()
    try:
        with command_telemetry():
            anyio.run(lambda: run_serve(options, on_ready=ready))
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    sys.exit(EXIT_INTERRUPTED)


COMMANDS = [serve]
