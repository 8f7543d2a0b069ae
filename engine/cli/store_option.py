"""``--store``: which store a command reads and writes, and the note when one is made."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

# Only for the hint: ``headrace copy`` takes --store, but needs the store (and sqlite) only
# when it runs --incremental.
if TYPE_CHECKING:
    from engine.store import Store

STORE_HELP = ("sqlite:///relative.db, sqlite:////absolute/path.db (SQLAlchemy's form), a "
              "path, or postgresql://... (default: $HEADRACE_STORE, else "
              "~/.local/share/headrace/headrace.db).")


def store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store_url", metavar="URL", help=STORE_HELP)(func)


def announce_new_store(store: Store) -> None:
    """A command that may make a store says so on stderr when it did, so a mistyped
    ``--store`` shows at once (the commands that only read refuse a missing store)."""
    if store.created:
        click.echo(f"headrace: a new store at {store.sqlite_path} ({store.url})", err=True)
