"""The SQLite store and the attempt logs are owner-only (issue 10, "Secrets at rest"): made
so whatever the umask, tightened when headrace finds its own files looser, through ``headrace
run`` in a subprocess and ``os.stat``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.e2e.cli_kit import Cli, shell, write_definition


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class LooseCli(Cli):
    """The CLI run under umask 000: without headrace's own modes, everything it makes would
    be readable and writable by everybody."""

    def __call__(self, *args: str, timeout: float = 60, check: int | None = 0):  # type: ignore[no-untyped-def,override]
        old = os.umask(0)
        try:
            return super().__call__(*args, timeout=timeout, check=check)
        finally:
            os.umask(old)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return LooseCli(tmp_path)


def definition(tmp_path: Path) -> Path:
    return write_definition(tmp_path / "p.json", shell("A", "echo hello; echo oops >&2"))


def test_a_new_store_and_its_logs_are_owner_only_under_a_permissive_umask(
        cli: Cli, tmp_path: Path) -> None:
    out = cli.run(definition(tmp_path))
    assert [i["status"] for i in out["instances"]] == ["FINISHED"]
    state = tmp_path / "state"
    store = state / "store.db"
    assert mode(state) == 0o700  # made by headrace for the store
    assert mode(store) == 0o600
    for companion in (state / "store.db-wal", state / "store.db-shm"):
        if companion.exists():
            assert mode(companion) == 0o600, companion
    logs = state / "logs"
    folders = [logs, *(p for p in logs.rglob("*") if p.is_dir())]
    assert len(folders) >= 5  # root, pipeline, component, instance, attempt (and work)
    loose = {str(p): oct(mode(p)) for p in folders if mode(p) != 0o700}
    assert loose == {}
    stdout = next(logs.rglob("stdout"))
    assert stdout.read_text() == "hello\n"


def test_an_existing_loose_store_and_log_folders_are_tightened(cli: Cli,
                                                                tmp_path: Path) -> None:
    path = definition(tmp_path)
    cli.run(path)
    state = tmp_path / "state"
    store = state / "store.db"
    logs = state / "logs"
    os.chmod(store, 0o666)
    os.chmod(logs, 0o755)
    os.chmod(state, 0o755)
    # a pipeline folder left readable by everybody (say, by an older headrace)
    (logs / "df-second").mkdir(mode=0o777)
    os.chmod(logs / "df-second", 0o777)
    result = cli("run", str(path), "--pipeline-id", "df-second")
    assert mode(store) == 0o600
    assert "store file" in result.stderr and "0666" in result.stderr  # said, not silent
    assert mode(logs / "df-second") == 0o700
    assert all(mode(p) == 0o700 for p in (logs / "df-second").rglob("*") if p.is_dir())
    # the store's folder and the log root were there already: theirs to keep
    assert mode(state) == 0o755
    assert mode(logs) == 0o755


def test_a_store_folder_given_by_the_user_is_not_changed(cli: Cli, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    url = f"sqlite:///{shared}/store.db"
    cli("run", str(definition(tmp_path)), "--store", url)
    assert mode(shared) == 0o755
    assert mode(shared / "store.db") == 0o600
    assert mode(shared / "logs") == 0o700  # made by headrace
