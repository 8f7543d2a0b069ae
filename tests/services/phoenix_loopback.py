"""Run `phoenix serve` with its OTLP gRPC receiver bound to 127.0.0.1 only.

Phoenix binds gRPC to "[::]:<port>" whatever PHOENIX_HOST says. This launcher (run by the Phoenix
venv's python, never imported by the project) rewrites that address to loopback before Phoenix
starts its server; everything else is Phoenix's own `main`.
"""

import sys

import grpc.aio

_make_server = grpc.aio.server


def _loopback_server(*args, **kwargs):  # type: ignore[no-untyped-def]
    server = _make_server(*args, **kwargs)
    bind = server.add_insecure_port

    def add_insecure_port(address: str) -> int:
        port = address.rpartition(":")[2]
        return bind(f"127.0.0.1:{port}")

    server.add_insecure_port = add_insecure_port
    return server


grpc.aio.server = _loopback_server

from phoenix.server.main import main  # noqa: E402  (after the patch above, by design)

sys.argv = ["phoenix", *sys.argv[1:]]
sys.exit(main())
