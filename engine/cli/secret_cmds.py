"""``headrace encrypt-secrets``: every masked value in the store encrypted with the newest key
of ``$HEADRACE_SECRET_KEY_FILE`` (see :mod:`engine.store.sealing`)."""

from __future__ import annotations

import click

from engine.cli.help import examples
from engine.cli.output import emit, output_option
from engine.cli.pipeline_cmds import with_store
from engine.cli.store_option import store_option
from engine.store.sealing import KEY_FILE_VARIABLE


@click.command("encrypt-secrets", epilog=examples(
    "HEADRACE_SECRET_KEY_FILE=~/.config/headrace/secret.key headrace encrypt-secrets",
    "headrace encrypt-secrets --store postgresql://headrace@db/headrace --output json",
    "headrace encrypt-secrets   # after a new key went on the key file's first line: then "
    "the old keys below it can go",
))
@store_option
@output_option
def encrypt_secrets(store_url: str | None, output: str) -> None:
    """Encrypt the masked values (``*`` fields, values and defaults of ``*`` parameters) of
    every stored definition with the newest key of $HEADRACE_SECRET_KEY_FILE: those stored in
    clear before a key was set, and those encrypted with an older key (rotation). Values
    already encrypted with the newest key are left as they are."""
    changed, total = with_store(store_url, lambda s: s.reseal_definitions())
    emit(output, {"definitionsEncrypted": changed, "definitions": total},
         f"{changed} of {total} definition version(s) encrypted with the newest key of "
         f"${KEY_FILE_VARIABLE}")


COMMANDS = [encrypt_secrets]
