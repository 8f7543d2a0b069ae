"""One copy through the Python API with every knob settable, for the sweeps.

``python -m benchmarks.copy_once SOURCE DEST [--parallel N] [--chunk-size BYTES]
[--stream-depth N] [--batch-rows N] [--copy-parallel N] [--copy-part-size BYTES]`` prints the
copy's summary as JSON. ``headrace copy`` exposes only ``--parallel``; this runs the same
:func:`connectors.copy.copy` with the rest.
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio

from connectors.base import EndpointOptions
from connectors.copy import CopyOptions, copy
from connectors.urls import open_sink, open_source


async def _main(args: argparse.Namespace) -> dict[str, object]:
    endpoint = EndpointOptions(parallel=args.parallel, chunk_size=args.chunk_size)
    source = open_source(args.source, endpoint)
    sink = open_sink(args.dest, endpoint)
    if args.copy_parallel and hasattr(sink, "copy_parallel"):
        sink.copy_parallel = args.copy_parallel  # server-side copy requests in flight
    if args.copy_part_size and hasattr(sink, "copy_part_size"):
        # objects above one part go by UploadPartCopy; a part >= the object: one CopyObject
        sink.copy_part_size = sink.copy_threshold = args.copy_part_size
    defaults = CopyOptions()
    options = CopyOptions(stream_depth=args.stream_depth or defaults.stream_depth,
                          batch_rows=args.batch_rows or defaults.batch_rows)
    result = await copy(source, sink, options)
    return {"rows": result.rows, "bytes": result.bytes, "seconds": result.seconds,
            "lane": result.lane, "peak_queue_depth": result.peak_queue_depth}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.copy_once")
    parser.add_argument("source")
    parser.add_argument("dest")
    defaults = EndpointOptions()
    parser.add_argument("--parallel", type=int, default=defaults.parallel)
    parser.add_argument("--chunk-size", type=int, default=defaults.chunk_size)
    parser.add_argument("--stream-depth", type=int, default=None)
    parser.add_argument("--batch-rows", type=int, default=None)
    parser.add_argument("--copy-parallel", type=int, default=None,
                        help="S3 server-side copy requests in flight")
    parser.add_argument("--copy-part-size", type=int, default=None,
                        help="S3 server-side copy part size (and multipart threshold)")
    args = parser.parse_args(argv)
    print(json.dumps(anyio.run(_main, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
