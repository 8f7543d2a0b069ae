"""A ``headrace serve`` on loopback for the API tests, and the clients that talk to it: boto3's
``datapipeline`` client, the AWS CLI v1 (``aws datapipeline ...``), and raw signed HTTP for
requests no SDK would send."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

HEADRACE = str(Path(sys.executable).with_name("headrace"))
AWS = str(Path(sys.executable).with_name("aws"))
KEY_ID, SECRET = "AKIDHEADRACETEST", "s3cr3t/Value+With/Signs"
OTHER_KEY_ID, OTHER_SECRET = "AKIDSECONDUSER", "another-secret-value"
REGION = "us-east-1"
_READY = re.compile(r"listening on (\S+)")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    store: str
    log: Path
    root: Path

    def client(self, key: str = KEY_ID, secret: str = SECRET,
               verify: str | bool | None = None) -> Any:
        return boto3.client("datapipeline", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            verify=verify, config=Config(retries={"max_attempts": 1}))

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def aws(self, *args: str, check: int | None = 0,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``aws datapipeline ARGS --endpoint-url URL`` with this server's credentials."""
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                    "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_PAGER": ""})
        env.pop("AWS_ENDPOINT_URL", None)
        result = subprocess.run([AWS, "datapipeline", *args, "--endpoint-url", self.url],
                                capture_output=True, text=True, timeout=timeout, env=env,
                                cwd=self.root, check=False)
        if check is not None and result.returncode != check:
            raise AssertionError(f"aws datapipeline {' '.join(args)} exited "
                                 f"{result.returncode}, expected {check}\nstdout:\n"
                                 f"{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def aws_json(self, *args: str) -> Any:
        out = self.aws(*args, "--output", "json").stdout
        return json.loads(out) if out.strip() else {}

    def raw(self, body: bytes | str, target: str | None = "DataPipeline.ListPipelines", *,
            sign: bool = True, key: str = KEY_ID, secret: str = SECRET,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], bytes]:
        """POST ``body`` to ``/``, SigV4-signed unless ``sign`` is false. Returns status, the
        parsed JSON body (or {}), and the raw body."""
        data = body.encode() if isinstance(body, str) else body
        sent = {"Content-Type": "application/x-amz-json-1.1", **(headers or {})}
        if target is not None:
            sent["X-Amz-Target"] = target
        if sign:
            request = AWSRequest(method="POST", url=f"{self.url}/", data=data, headers=sent)
            SigV4Auth(Credentials(key, secret), "datapipeline", REGION).add_auth(request)
            sent = dict(request.headers.items())
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            # the server may answer and close before the whole body is sent (a 10 MB body)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request("POST", "/", body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {}
        return response.status, parsed, raw

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def server_env(root: Path, store: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HEADRACE_STORE": store, "HEADRACE_NOTIFIER": "log",
                "XDG_DATA_HOME": str(root / "xdg"), "PYTHONUNBUFFERED": "1",
                "HEADRACE_API_CREDENTIALS": f"{KEY_ID}:{SECRET},{OTHER_KEY_ID}:{OTHER_SECRET}"})
    env.pop("AWS_ENDPOINT_URL_SNS", None)
    return env


def start_server(root: Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 60, store: str | None = None) -> Server:
    """``headrace serve --port 0 ARGS`` on ``store`` (default: a fresh SQLite store under
    ``root``); waits for the line that names the URL."""
    root.mkdir(parents=True, exist_ok=True)
    store = store or f"sqlite:///{root}/store.db"
    log = root / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([HEADRACE, "serve", "--store", store, "--port", "0", *args],
                                stdout=sink, stderr=subprocess.STDOUT,
                                env=env or server_env(root, store), cwd=root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _READY.search(log.read_text(errors="replace"))
        if match:
            return Server(match.group(1), proc, store, log, root)
        if proc.poll() is not None:
            raise AssertionError(f"headrace serve exited {proc.returncode}:\n"
                                 f"{log.read_text(errors='replace')}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"headrace serve did not start:\n{log.read_text(errors='replace')}")


@contextmanager
def running(root: Path, *args: str) -> Iterator[Server]:
    server = start_server(root, *args)
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate: Any, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.1)


def fields(obj: dict[str, Any], *, refs: bool = False) -> dict[str, Any]:
    """A described object's fields as {key: value} (a repeated key: a list; with ``refs``,
    a reference as ``{"ref": id}``, as in a definition file)."""
    out: dict[str, Any] = {}
    for f in obj["fields"]:
        value: Any = f.get("stringValue", f.get("refValue"))
        if refs and "refValue" in f:
            value = {"ref": f["refValue"]}
        if f["key"] in out:
            prior = out[f["key"]]
            out[f["key"]] = [*prior, value] if isinstance(prior, list) else [prior, value]
        else:
            out[f["key"]] = value
    return out


def wire_objects(*objects: dict[str, Any]) -> list[dict[str, Any]]:
    """File-format objects as the API's pipelineObjects."""
    out = []
    for obj in objects:
        items = []
        for key, value in obj.items():
            if key in ("id", "name"):
                continue
            for v in value if isinstance(value, list) else [value]:
                items.append({"key": key, "refValue": v["ref"]} if isinstance(v, dict)
                             else {"key": key, "stringValue": v})
        out.append({"id": obj["id"], "name": obj.get("name", obj["id"]), "fields": items})
    return out
