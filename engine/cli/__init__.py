"""The ``headrace`` command line. Each module of this package contributes a list of commands.

Exit codes shared by every command: 0 success, 1 the thing asked for failed (invalid definition,
failed run), 2 usage or definition error, 130 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib
import sys

import click

#: Modules of this package that export ``COMMANDS``; a missing module is skipped so the CLI
#: grows command by command.
_COMMAND_MODULES = (
    "engine.cli.definition_cmds",
    "engine.cli.run_cmds",
    "engine.cli.pipeline_cmds",
    "engine.cli.copy_cmd",
)

#: Options that take several values after one flag, as the AWS CLI's do
#: (``--parameter-values a=1 b=2``); click takes one value per flag, so argv is rewritten.
_GREEDY_OPTIONS = ("--parameter-values", "--object-ids")


@click.group(invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120,
                               "terminal_width": 120})
@click.version_option(package_name="headrace")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run AWS Data Pipeline definitions on your own machines."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def expand_greedy(argv: list[str]) -> list[str]:
    """``--opt a b --x`` -> ``--opt a --opt b --x`` for the options in ``_GREEDY_OPTIONS``."""
    out: list[str] = []
    current: str | None = None
    consumed = False
    for arg in argv:
        if arg in _GREEDY_OPTIONS:
            if current is not None and not consumed:
                out.append(current)
            current, consumed = arg, False
            continue
        if current is not None:
            if arg.startswith("-") or (current == "--parameter-values" and "=" not in arg):
                if not consumed:
                    out.append(current)  # no value: let click report it
                current = None
            else:
                out.extend([current, arg])
                consumed = True
                continue
        out.append(arg)
    if current is not None and not consumed:
        out.append(current)
    return out


def main(argv: list[str] | None = None) -> None:
    args = expand_greedy(list(sys.argv[1:] if argv is None else argv))
    cli.main(args=args, prog_name="headrace")


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
