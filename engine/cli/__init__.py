"""The ``headrace`` command line. Each module of this package contributes a list of commands.

Exit codes shared by every command: 0 success, 1 the thing asked for failed (invalid definition,
failed run), 2 usage or definition error, 130 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib

import click

#: Modules of this package that export ``COMMANDS``; a missing module is skipped so the CLI
#: grows command by command.
_COMMAND_MODULES = (
    "engine.cli.definition_cmds",
    "engine.cli.run_cmds",
    "engine.cli.pipeline_cmds",
    "engine.cli.copy_cmd",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="headrace")
def main() -> None:
    """Run AWS Data Pipeline definitions on your own machines."""


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        for command in module.COMMANDS:
            main.add_command(command)


_register()
