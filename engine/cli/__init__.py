"""The ``headrace`` command line. Each module of this package contributes a list of commands.

Exit codes shared by every command: 0 success, 1 the thing asked for failed (invalid definition,
failed run), 2 usage or definition error, 130 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from engine.cli.output import CommandFailed, render_failure, wants_json

#: Command name -> (module, attribute). Modules are imported only when their command runs
#: (or when help lists them all), so ``headrace run`` does not pay for ``copy``'s imports.
_COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("engine.cli.definition_cmds", "validate"),
    "plan": ("engine.cli.definition_cmds", "plan_cmd"),
    "eval": ("engine.cli.definition_cmds", "eval_cmd"),
    "run": ("engine.cli.run_cmds", "run"),
    "copy": ("engine.cli.copy_cmd", "copy"),
    "describe-copy": ("engine.cli.copy_cmd", "describe_copy"),
    "create-pipeline": ("engine.cli.pipeline_cmds", "create_pipeline"),
    "put-pipeline-definition": ("engine.cli.pipeline_cmds", "put_pipeline_definition"),
    "get-pipeline-definition": ("engine.cli.pipeline_cmds", "get_pipeline_definition"),
    "activate-pipeline": ("engine.cli.pipeline_cmds", "activate_pipeline"),
    "deactivate-pipeline": ("engine.cli.pipeline_cmds", "deactivate_pipeline"),
    "delete-pipeline": ("engine.cli.pipeline_cmds", "delete_pipeline"),
    "list-pipelines": ("engine.cli.pipeline_cmds", "list_pipelines"),
    "describe-pipelines": ("engine.cli.pipeline_cmds", "describe_pipelines"),
    "list-runs": ("engine.cli.pipeline_cmds", "list_runs"),
    "describe-objects": ("engine.cli.pipeline_cmds", "describe_objects"),
    "set-status": ("engine.cli.pipeline_cmds", "set_status"),
    "logs": ("engine.cli.pipeline_cmds", "logs"),
    "engine": ("engine.cli.pipeline_cmds", "engine_cmd"),
    "serve": ("engine.cli.serve_cmd", "serve"),
    "worker": ("engine.cli.worker_cmds", "worker_cmd"),
    "list-workers": ("engine.cli.worker_cmds", "list_workers_cmd"),
    "encrypt-secrets": ("engine.cli.secret_cmds", "encrypt_secrets"),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use, and which renders every
    failure (a usage error, a :class:`~engine.cli.output.CommandFailed`) in the form the
    command line's ``--output`` asks for."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                  **extra)
        except (click.ClickException, CommandFailed) as exc:
            render_failure(exc, wants_json(argv))
            code = exc.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        else:
            code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        command: click.Command = getattr(module, target[1])
        return command


#: Options that take several values after one flag, as the AWS CLI's do
#: (``--parameter-values a=1 b=2``); click takes one value per flag, so argv is rewritten.
_GREEDY_OPTIONS = ("--parameter-values", "--object-ids", "--template-parameters")


@click.group(cls=LazyGroup, invoke_without_command=True,
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
