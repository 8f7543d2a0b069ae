"""What every command prints: ``--output text|json``, and failures in the form asked for.

Under ``--output json`` everything a command prints on stdout is one JSON document, failures
included: a refusal or an error is ``{"error": {"message", "exitCode", "kind"}}`` on stdout
(``kind`` is ``usage`` for a bad flag or argument, exit 2, else ``failed``), so a script never
has to parse text. Under ``--output text`` a failure is ``error: ...`` lines on stderr.
The command group renders every failure here (:func:`render_failure`); commands raise
:class:`CommandFailed` rather than printing and exiting themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

OUTPUT_FORMATS = ("text", "json")


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--output text|json`` (default text)."""
    return click.option("--output", type=click.Choice(OUTPUT_FORMATS), default="text",
                        show_default=True,
                        help="text for people; json for scripts (errors too: "
                             "{\"error\": {...}} on stdout).")(func)


class CommandFailed(Exception):
    """A command refused or failed: a message (secrets already masked) and an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED, *, prefix: str = "error",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.prefix = prefix
        #: extra keys of the JSON form (``{"error": {..., **details}}``)
        self.details = details or {}

    def show(self) -> None:
        for line in self.message.splitlines() or [""]:
            click.echo(f"{self.prefix}: {line}", err=True)


def wants_json(args: Sequence[str]) -> bool:
    """Whether a command line asks for ``--output json`` (read before click parses it, so a
    usage error can be reported in the form asked for)."""
    for index, arg in enumerate(args):
        if arg == "--":
            return False
        if arg == "--output" and index + 1 < len(args):
            if args[index + 1] == "json":
                return True
        elif arg == "--output=json":
            return True
    return False


def failure_json(exc: click.ClickException | CommandFailed) -> dict[str, Any]:
    # exit 2 is a refusal of the command line itself, whichever layer noticed it
    kind = "usage" if isinstance(exc, click.UsageError) or exc.exit_code == EXIT_USAGE \
        else "failed"
    message = exc.message if isinstance(exc, CommandFailed) else exc.format_message()
    body: dict[str, Any] = {"message": message, "exitCode": exc.exit_code, "kind": kind}
    if isinstance(exc, CommandFailed):
        body.update(exc.details)
    return {"error": body}


def render_failure(exc: click.ClickException | CommandFailed, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(failure_json(exc), indent=2))
    else:
        exc.show()


def emit(output: str, data: Any, text: str) -> None:
    """Print ``data`` as JSON, or ``text``, as ``--output`` asks."""
    click.echo(json.dumps(data, indent=2, default=str) if output == "json" else text)
