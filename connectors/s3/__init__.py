"""S3 objects and prefixes as copy sources and sinks.

``s3://bucket/key`` is one object; ``s3://bucket/prefix/`` (trailing slash) is every object below
the prefix, in key order (a key URL whose object does not exist but which has objects below
``key/`` reads as that prefix). Listing is lazy and paginated, so a prefix of any size streams.

Reading: objects are fetched as ranges of ``chunk_size`` bytes, ``parallel`` at a time, and
delivered strictly in order; at most ``parallel + 1`` ranges are held in memory. Each range GET
carries ``If-Match`` (the ETag from the listing), so an object that changes mid-read fails the
read instead of mixing versions. A range whose body breaks off (truncated response, reset
connection) is resumed from the first missing byte with a new Range request; a short object is
never delivered. ``.gz`` keys (or ``compression="gzip"``) are decompressed.

Writing: bytes are cut into ``part_size`` parts and uploaded ``parallel`` at a time with a
multipart upload, created on the first full part and completed only at end-of-stream; input
smaller than one part becomes a single PutObject at the end. On any failure or cancellation the
multipart upload is aborted in shielded cleanup, so no object and no pending upload is left.
A process killed mid-upload cannot clean up: the next write to the same key (or prefix) aborts
the pending uploads it left before it starts (so two writers must not target one key at once).
A prefix destination receives ``part-00000.<ext>``, ... (a new object once one holds
``file_bytes``, cut at a record boundary), all completed together at the end; older
``part-NNNNN.*`` objects under the prefix that this write did not produce are then deleted.

``manifest_url`` reads the objects a Redshift-style manifest lists, in its order.

S3 -> S3 on the same endpoint with the same format and compression is copied server-side
(CopyObject; UploadPartCopy in parallel above ``copy_threshold``); nothing passes through here.
A single object <-> a single local file goes by parallel positioned I/O (``direct_copy``,
``download_into``): ranged GETs written at their offsets, file parts read at theirs.

Inside: ``_url`` (the URL, the object record, sizes), ``_listing``, ``_download`` (ranged
reads), ``_upload`` (the one multipart upload, the streaming writer, file parts, cleanup of
killed writes), ``_server_copy``, ``_parallel`` (bounded fan-out), ``_source``, ``_sink``,
``_transfer`` (the helpers the engine calls: checks, staging, listing and deleting the
objects of a prefix).
"""

from ._sink import S3Sink, sink_from_url
from ._source import S3Source, source_from_url
from ._transfer import (
    delete_names,
    download_prefix,
    key_exists,
    list_names,
    prefix_not_empty,
    upload_directory,
    upload_file,
)
from ._url import MIN_PART, S3Url, parse_s3_url

__all__ = [
    "MIN_PART",
    "S3Sink",
    "S3Source",
    "S3Url",
    "delete_names",
    "download_prefix",
    "key_exists",
    "list_names",
    "parse_s3_url",
    "prefix_not_empty",
    "sink_from_url",
    "source_from_url",
    "upload_directory",
    "upload_file",
]
