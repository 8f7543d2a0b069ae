"""Streaming codecs between bytes and :class:`~connectors.base.RowBatch`.

``decoder_for(fmt, location=...)`` gives an object with ``feed(chunk) -> list[RowBatch]`` and
``finish() -> list[RowBatch]``: chunks may be cut anywhere (inside a record, a quoted newline or
a multi-byte character). Malformed input raises :class:`~connectors.errors.BadDataError` with
location, line, column and a snippet, or goes to ``on_bad`` when the caller routes bad rows.
``encoder_for(fmt)`` gives ``encode(batch) -> bytes`` and ``finish() -> bytes``.

The bytes lane of a copy never touches these: they run only where a conversion is needed.

Also here, because they are about how records lie in bytes: formats by name (``_names``:
from a file name, ``--format``, a definition's data format object), record framing and
counting, gzip, what the file-like ends share (``_files``: a format from the name, files joined
into one record stream, directories written as parts cut at record boundaries) and DynamoDB's
typed attribute values (``dynamodb_items``: the dynamodb-jsonl format and the DynamoDB
connector read and write them the same way), and the item lines, manifest and layout names of
the EMR DynamoDB tools' backups (``emr_dynamodb``, its names prefixed ``emr_`` here).
``parquet``: the Parquet encoder, types and the row reader the file-like ends use (pyarrow,
imported only when a Parquet end runs); ``parquet_csv``: Parquet straight from a database's
CSV bytes (the bytes lane into Parquet).
"""

from ._codecs import Decoder, Encoder, WantsSchema, decoder_for, encoder_for
from ._decoder import DEFAULT_BATCH_ROWS, BadRowHandler, generic_schema
from ._files import (
    PART_RE,
    FileJoiner,
    NamedFormat,
    NamedFormatSink,
    NamedFormatSource,
    consume_rows_as_bytes,
    is_gzip,
    part_name,
    write_parts,
)
from ._framing import Framer
from ._names import (
    format_for_path,
    format_from_definition,
    format_named,
    parse_columns,
    same_layout,
)
from .checksums import RowChecksum
from .compression import Gunzip, Gzip
from .counting import RecordCounter, RecordTally, count_records, record_tally
from .dynamodb_items import (
    ITEM_COLUMN,
    ITEM_SCHEMA,
    ConversionError,
    Item,
    attribute_type,
    coerce_key,
    dict_to_item,
    from_attribute,
    item_json,
    item_key,
    item_plain_json,
    item_to_dict,
    item_to_row,
    oversized_attribute,
    parse_number,
    row_to_item,
    to_attribute,
)
from .emr_dynamodb import ITEMS_PER_FILE as EMR_ITEMS_PER_FILE
from .emr_dynamodb import MANIFEST_NAME as EMR_MANIFEST_NAME
from .emr_dynamodb import SUCCESS_NAME as EMR_SUCCESS_NAME
from .emr_dynamodb import NullKey as EmrNullKey
from .emr_dynamodb import hive_line as emr_hive_line
from .emr_dynamodb import manifest_entries as emr_manifest_entries
from .emr_dynamodb import manifest_text as emr_manifest_text
from .emr_dynamodb import parse_line as parse_emr_line
from .emr_dynamodb import tools_line as emr_tools_line
from .parquet import (
    ParquetEncoder,
    ParquetInput,
    RangeFile,
    parquet_row_count,
    produce_parquet_rows,
    read_parquet_schema,
)
from .parquet_csv import CsvToParquet, transcodable
from .values import parse_datetime

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "EMR_ITEMS_PER_FILE",
    "EMR_MANIFEST_NAME",
    "EMR_SUCCESS_NAME",
    "ITEM_COLUMN",
    "ITEM_SCHEMA",
    "PART_RE",
    "BadRowHandler",
    "ConversionError",
    "CsvToParquet",
    "Decoder",
    "EmrNullKey",
    "Encoder",
    "FileJoiner",
    "Framer",
    "Gunzip",
    "Gzip",
    "Item",
    "NamedFormat",
    "NamedFormatSink",
    "NamedFormatSource",
    "ParquetEncoder",
    "ParquetInput",
    "RangeFile",
    "RecordCounter",
    "RecordTally",
    "RowChecksum",
    "WantsSchema",
    "attribute_type",
    "coerce_key",
    "consume_rows_as_bytes",
    "count_records",
    "decoder_for",
    "dict_to_item",
    "emr_hive_line",
    "emr_manifest_entries",
    "emr_manifest_text",
    "emr_tools_line",
    "encoder_for",
    "format_for_path",
    "format_from_definition",
    "format_named",
    "from_attribute",
    "generic_schema",
    "is_gzip",
    "item_json",
    "item_key",
    "item_plain_json",
    "item_to_dict",
    "item_to_row",
    "oversized_attribute",
    "parquet_row_count",
    "parse_columns",
    "parse_datetime",
    "parse_emr_line",
    "parse_number",
    "part_name",
    "produce_parquet_rows",
    "read_parquet_schema",
    "record_tally",
    "row_to_item",
    "same_layout",
    "to_attribute",
    "transcodable",
    "write_parts",
]
