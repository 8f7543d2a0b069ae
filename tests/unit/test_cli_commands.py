"""The lazy command table of the CLI names every command its modules define, and help lists
them all with one line each."""

from __future__ import annotations

import importlib

import click
from click.testing import CliRunner

from engine.cli import _COMMANDS, cli

MODULES = ("engine.cli.definition_cmds", "engine.cli.run_cmds", "engine.cli.pipeline_cmds",
           "engine.cli.copy_cmd", "engine.cli.serve_cmd", "engine.cli.secret_cmds",
           "engine.cli.worker_cmds")


def test_every_command_of_every_module_is_in_the_table() -> None:
    defined = {}
    for name in MODULES:
        for command in importlib.import_module(name).COMMANDS:
            defined[command.name] = command
    assert sorted(defined) == sorted(_COMMANDS)
    ctx = click.Context(cli)
    for name, command in defined.items():
        assert cli.get_command(ctx, name) is command


def test_no_arguments_lists_the_commands_one_line_each() -> None:
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.strip()]
    assert listed == sorted(_COMMANDS)


def test_every_command_ends_its_help_with_examples_of_itself() -> None:
    for name in sorted(_COMMANDS):
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        examples = result.output.split("\n  Examples:\n")
        assert len(examples) == 2, f"{name} --help has no examples"
        lines = [line.strip() for line in examples[1].splitlines() if line.strip()]
        commands = [line for index, line in enumerate(lines)
                    if index == 0 or not lines[index - 1].endswith("\\")]  # not continued
        assert commands and all(f"headrace {name}" in line for line in commands), (name, lines)
