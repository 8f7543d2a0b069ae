"""CLI: python -m tests.services up|down|env [--only pg,mysql,s3,dynamodb,sns,otel]"""

from __future__ import annotations

import argparse
import os
import sys

from tests.services import KEYS, ServiceError, down, environment, render, up
from tests.services.config import aws_env


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.services", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of {','.join(KEYS)} (default: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    only = None if args.only is None else [k.strip() for k in args.only.split(",") if k.strip()]
    os.environ.update(aws_env())  # whatever this process starts or probes stays on loopback
    try:
        if args.action == "up":
            sys.stdout.write(render(up(only).env))
        elif args.action == "down":
            down(only)
        else:
            sys.stdout.write(render(environment(only)))
    except ServiceError as error:
        print(f"services: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
