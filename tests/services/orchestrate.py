"""Bring the loopback test servers up (in parallel, until really ready) and down again."""

from __future__ import annotations

import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.services import process
from tests.services.base import Service, ServiceError
from tests.services.config import common_env, services_dir
from tests.services.dynalite import Dynalite
from tests.services.mariadb import MariaDB
from tests.services.moto import Moto
from tests.services.phoenix import Phoenix
from tests.services.postgres import Postgres
from tests.services.seaweedfs import SeaweedFS

# Slowest first, so its start overlaps the others' data-directory setup.
_ALL: tuple[type[Service], ...] = (Phoenix, SeaweedFS, Moto, Dynalite, Postgres, MariaDB)
KEYS: tuple[str, ...] = tuple(kind.key for kind in _ALL)

_POLL_SECONDS = 0.2
_STOP_SECONDS = 20.0

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def select(only: Iterable[str] | None = None) -> list[Service]:
    """Service objects for the given keys (all when None), in start order."""
    wanted = set(KEYS if only is None else only)
    unknown = wanted - set(KEYS)
    if unknown:
        raise ServiceError(f"unknown service {', '.join(sorted(unknown))}; "
                           f"choose from {','.join(KEYS)}")
    return [kind() for kind in _ALL if kind.key in wanted]


def environment(only: Iterable[str] | None = None) -> dict[str, str]:
    """Every variable tests use to reach the selected servers (all when None)."""
    env = common_env()
    for service in select(only):
        env.update(service.env())
    return env


def render(env: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items()))


@dataclass
class UpResult:
    env: dict[str, str]
    launched: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


def up(only: Iterable[str] | None = None, *, log: Log = _stderr) -> UpResult:
    """Start what is not already running and healthy; wait until every selected server is ready.

    Raises ServiceError with each failed server's log tail. Writes `.services/env.sh`.
    """
    services = select(only)
    result = UpResult(env={})
    deadlines: dict[str, float] = {}
    pending: list[Service] = []
    for service in services:
        if service.ready():
            result.reused.append(service.key)
            continue
        if service.running_pid() is None:
            if process.port_open(service.port):
                raise ServiceError(service.describe_failure(
                    f"port {service.port} is taken by a process that does not answer as "
                    f"{service.title}; stop it or free the port"))
            service.prepare()
            pid = service.launch()
            log(f"started {service.title} (pid {pid})")
            result.launched.append(service.key)
        else:
            log(f"{service.title} is starting; waiting for it")
        deadlines[service.key] = time.monotonic() + service.start_timeout
        pending.append(service)

    failures: list[str] = []
    while pending:
        for service in list(pending):
            if service.ready():
                pending.remove(service)
                log(f"{service.title} ready on 127.0.0.1:{service.port}")
            elif service.running_pid() is None:
                pending.remove(service)
                failures.append(service.describe_failure("the server exited during start"))
            elif time.monotonic() > deadlines[service.key]:
                pending.remove(service)
                failures.append(service.describe_failure(
                    f"not ready after {service.start_timeout:.0f} s"))
        if pending:
            time.sleep(_POLL_SECONDS)
    if failures:
        raise ServiceError("\n\n".join(failures))

    result.env = environment(service.key for service in services)
    write_env_file({service.key for service in services})
    return result


def _running_keys() -> set[str]:
    return {service.key for service in select() if service.running_pid() is not None}


def write_env_file(extra_keys: set[str] | None = None) -> None:
    """`.services/env.sh`: the env of the servers we run (by pidfile) plus ``extra_keys``."""
    keys = _running_keys() | (extra_keys or set())
    folder = services_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "env.sh").write_text(render(environment(keys)))


def down(only: Iterable[str] | None = None, *, log: Log = _stderr) -> list[str]:
    """Stop the selected servers that we started (by pidfile); return the keys stopped."""
    stopping: dict[str, tuple[Service, int]] = {}
    for service in select(only):
        pid = service.running_pid()
        if pid is None:
            if process.port_open(service.port):
                log(f"{service.title}: port {service.port} is served by a process we did not "
                    "start; leaving it alone")
            service.pidfile.unlink(missing_ok=True)
            continue
        process.send(pid, service.stop_signal)
        stopping[service.key] = (service, pid)

    deadline = time.monotonic() + _STOP_SECONDS
    while time.monotonic() < deadline and any(process.alive(p) for _, p in stopping.values()):
        time.sleep(0.1)
    for service, pid in stopping.values():
        if process.alive(pid):
            log(f"{service.title} did not stop in {_STOP_SECONDS:.0f} s; killing pid {pid}")
            process.send(pid, signal.SIGKILL)
        else:
            log(f"stopped {service.title}")
        service.pidfile.unlink(missing_ok=True)
    if services_dir().exists():
        write_env_file()
    return sorted(stopping)
