"""MariaDB on 127.0.0.1:53306: root without password over TCP, LOCAL INFILE on, durability off."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from tests.services.base import Service, ServiceError
from tests.services.config import HOST, MYSQL_PORT, find_tool

_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes


def _tool(name: str, fallback: str) -> str:
    path = find_tool(name) or find_tool(fallback)
    if path is None:
        raise ServiceError(f"MariaDB is not installed (no {name}); run scripts/install-test-deps")
    return path


class MariaDB(Service):
    key = "mysql"
    title = "MariaDB"
    port = MYSQL_PORT
    marker = "mariadbd"
    start_timeout = 30.0

    def __init__(self) -> None:
        super().__init__()
        self.data = self.dir / "data"
        socket = self.dir / "mysqld.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(socket).encode()).hexdigest()[:10]
            socket = Path(tempfile.gettempdir()) / f"headrace-mysqld-{digest}.sock"
        self.socket = socket

    def env(self) -> dict[str, str]:
        return {"HEADRACE_TEST_MYSQL_DSN": f"mysql://root@{HOST}:{MYSQL_PORT}/mysql"}

    def _user_args(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if (self.data / "mysql").is_dir():
            return
        result = subprocess.run(
            [_tool("mariadb-install-db", "mysql_install_db"), "--no-defaults", *self._user_args(),
             f"--datadir={self.data}", "--auth-root-authentication-method=normal",
             "--skip-test-db"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"mariadb-install-db failed:\n{result.stdout}{result.stderr}")

    def command(self) -> tuple[list[str], dict[str, str], Path | None]:
        argv = [
            _tool("mariadbd", "mysqld"), "--no-defaults", *self._user_args(),
            f"--datadir={self.data}", f"--port={MYSQL_PORT}", f"--bind-address={HOST}",
            f"--socket={self.socket}", f"--pid-file={self.dir / 'mariadbd.pid'}",
            "--local-infile=1", "--skip-name-resolve", "--max-connections=300",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
            "--innodb-buffer-pool-size=1G", "--innodb-log-file-size=512M",
            "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
        ]
        return argv, {}, self.dir

    def ready(self) -> bool:
        try:
            result = subprocess.run(
                [_tool("mariadb", "mysql"), "--no-defaults", f"-h{HOST}", f"-P{MYSQL_PORT}",
                 "-uroot", "--connect-timeout=2", "-N", "-B", "-e", "select 1"],
                capture_output=True, text=True, timeout=5, check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0 and result.stdout.strip() == "1"
