"""PostgreSQL 15 on 127.0.0.1:55432, durability off, trust auth, TCP only."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

from tests.services import process
from tests.services.base import Service, ServiceError
from tests.services.config import HOST, PG_PORT, find_tool

OS_USER = "postgres"  # PostgreSQL refuses to run as root


def bin_dir() -> Path:
    """The server binaries: Debian's versioned dir (15 preferred), else wherever initdb is."""
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").exists():
        return preferred
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if versions:
        return versions[0].parent
    initdb = find_tool("initdb")
    if initdb is None:
        raise ServiceError("PostgreSQL is not installed (no initdb); run scripts/install-test-deps")
    return Path(initdb).resolve().parent


def _reachable_by(path: Path, user: str) -> bool:
    """True if ``user`` can traverse every existing ancestor of ``path``."""
    uid = pwd.getpwnam(user).pw_uid
    for folder in [path, *path.parents]:
        if not folder.exists():
            continue
        info = folder.stat()
        owner_may = info.st_uid == uid and info.st_mode & stat.S_IXUSR
        if not (info.st_mode & stat.S_IXOTH or owner_may):
            return False
    return True


class Postgres(Service):
    key = "pg"
    title = "PostgreSQL"
    port = PG_PORT
    marker = "postgres"
    start_timeout = 30.0
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, then exit
    user = OS_USER

    def __init__(self) -> None:
        super().__init__()
        if os.geteuid() == 0 and not _reachable_by(self.dir, OS_USER):
            # The postgres user cannot reach a checkout under e.g. /root: keep the data in /tmp.
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:10]
            self.dir = Path(tempfile.gettempdir()) / f"headrace-pg-{digest}"
            self.log = self.dir / "log"
            self.pidfile = self.dir / "pid"
        self.data = self.dir / "data"

    def env(self) -> dict[str, str]:
        return {"HEADRACE_TEST_PG_DSN": f"postgresql://postgres@{HOST}:{PG_PORT}/postgres"}

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, OS_USER, OS_USER)
        self.dir.chmod(0o700)
        if (self.data / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [str(bin_dir() / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-locale"],
            capture_output=True, text=True, check=False, **process.as_user(OS_USER),
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def command(self) -> tuple[list[str], dict[str, str], Path | None]:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "512MB",
            "max_wal_size": "4GB",
            "max_connections": "200",
        }
        if (bin_dir().parent / "lib" / "pg_stat_statements.so").exists():
            # statement counts for benchmarks/workers.py (its overhead is a hash per statement)
            settings["shared_preload_libraries"] = "pg_stat_statements"
        argv = [str(bin_dir() / "postgres"), "-D", str(self.data), "-p", str(PG_PORT)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        return argv, {}, self.dir

    def ready(self) -> bool:
        psql = bin_dir() / "psql"
        try:
            result = subprocess.run(
                [str(psql), "-X", "-A", "-t", "-q", "-h", HOST, "-p", str(PG_PORT),
                 "-U", "postgres", "-d", "postgres", "-c", "select 1"],
                capture_output=True, text=True, timeout=5, check=False,
                env={**os.environ, "PGCONNECT_TIMEOUT": "2"},
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0 and result.stdout.strip() == "1"
