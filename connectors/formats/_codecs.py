"""The streaming codec for each format kind: ``decoder_for`` and ``encoder_for``."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from connectors.base import RowBatch, Schema, TextFormat
from connectors.errors import ConfigError

from ._decoder import DEFAULT_BATCH_ROWS, BadRowHandler


class Decoder(Protocol):
    schema: Schema | None
    bad_rows: int

    def feed(self, chunk: bytes) -> list[RowBatch]: ...

    def finish(self) -> list[RowBatch]: ...


class Encoder(Protocol):
    def encode(self, batch: RowBatch) -> bytes: ...

    def finish(self) -> bytes: ...


@runtime_checkable
class WantsSchema(Protocol):
    """An encoder that writes the columns even when no row comes (Parquet): the copy gives
    it the source's schema before the first batch."""

    def expect_schema(self, schema: Schema | None) -> None: ...


def decoder_for(fmt: TextFormat, *, location: str, schema: Schema | None = None,
                batch_rows: int = DEFAULT_BATCH_ROWS,
                on_bad: BadRowHandler | None = None) -> Decoder:
    """A streaming decoder for ``fmt``; ``location`` (file or object name) goes in errors."""
    from .csv import CsvDecoder
    from .delimited import DelimitedDecoder
    from .dynamodb_json import DynamoDbJsonDecoder
    from .jsonl import JsonLinesDecoder
    from .regex import RegexDecoder

    if fmt.kind == "parquet":
        raise ConfigError(f"{location}: Parquet is read by the file and S3 ends themselves "
                          "(from the file's footer), not decoded from a stream")
    cls: Any = {"csv": CsvDecoder, "tsv": DelimitedDecoder, "custom": DelimitedDecoder,
                "regex": RegexDecoder, "jsonl": JsonLinesDecoder,
                "dynamodb-jsonl": DynamoDbJsonDecoder}[fmt.kind]
    decoder: Decoder = cls(fmt, location=location, schema=schema, batch_rows=batch_rows,
                           on_bad=on_bad)
    return decoder


def encoder_for(fmt: TextFormat) -> Encoder:
    """A streaming encoder for ``fmt`` (RegEx has none: it is a read-only format)."""
    from .csv import CsvEncoder
    from .delimited import DelimitedEncoder
    from .dynamodb_json import DynamoDbJsonEncoder
    from .jsonl import JsonLinesEncoder

    if fmt.kind == "regex":
        raise ConfigError("the RegEx format can be read but not written")
    if fmt.kind == "parquet":
        from .parquet import ParquetEncoder

        return ParquetEncoder(fmt)
    cls: Any = {"csv": CsvEncoder, "tsv": DelimitedEncoder, "custom": DelimitedEncoder,
                "jsonl": JsonLinesEncoder, "dynamodb-jsonl": DynamoDbJsonEncoder}[fmt.kind]
    encoder: Encoder = cls(fmt)
    return encoder
