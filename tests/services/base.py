"""The shape every loopback test server shares: where it lives, how it starts, when it is ready."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from tests.services import process
from tests.services.config import services_dir


class ServiceError(RuntimeError):
    """A server could not be installed, started or reached."""


class Service:
    """One server. Subclasses set the class attributes and implement the three hooks."""

    key: str  # the name used by --only
    title: str  # human name for messages
    port: int  # the port that must be free before start and open once running
    marker: str  # a word of its command line, to recognise our own process by pid
    start_timeout: float = 30.0
    stop_signal: signal.Signals = signal.SIGTERM
    user: str | None = None  # OS user to run as when we are root

    def __init__(self) -> None:
        self.dir = services_dir() / self.key
        self.log = self.dir / "log"
        self.pidfile = self.dir / "pid"

    # -- hooks ------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The HEADRACE_TEST_* / AWS_ENDPOINT_URL_* variables that point at this server."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Create the data directory and config (idempotent; cheap when already there)."""

    def command(self) -> tuple[list[str], dict[str, str], Path | None]:
        """argv, extra environment and working directory of the server process."""
        raise NotImplementedError

    def ready(self) -> bool:
        """A real request succeeded (not just an open port)."""
        raise NotImplementedError

    def inherited_env(self) -> dict[str, str]:
        """The part of our environment the server process inherits."""
        return dict(os.environ)

    # -- shared behaviour -------------------------------------------------------------------

    def running_pid(self) -> int | None:
        """Our server's pid if our pidfile names a live process of this kind."""
        return process.owned_pid(self.pidfile, self.marker)

    def launch(self) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv, extra_env, cwd = self.command()
        self.log.touch()
        if self.user is not None and os.geteuid() == 0:
            shutil.chown(self.log, self.user, self.user)
        with self.log.open("a") as handle:
            handle.write(f"--- starting {self.title}: {' '.join(argv)}\n")
        pid = process.spawn(argv, log=self.log, env={**self.inherited_env(), **extra_env}, cwd=cwd,
                            user=self.user)
        self.pidfile.write_text(f"{pid}\n")
        return pid

    def describe_failure(self, reason: str) -> str:
        return (f"{self.title} ({self.key}, port {self.port}): {reason}\n"
                f"--- last lines of {self.log}:\n{process.log_tail(self.log)}")
