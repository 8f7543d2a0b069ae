"""The dlt peer (run with the peers venv's Python): a SQL table to S3 CSV files.

``python peer_dlt.py pg|mysql TABLE S3_PREFIX [csv|parquet]`` loads ``TABLE`` with dlt's
``sql_table`` source on its pyarrow backend into the filesystem destination (SeaweedFS), CSV
files (or Parquet, which dlt writes through pyarrow), replace mode.
"""

from __future__ import annotations

import os
import sys


def main(kind: str, table: str, bucket_url: str, file_format: str = "csv") -> None:
    import dlt
    from dlt.sources.sql_database import sql_table

    host = "127.0.0.1"
    if kind == "pg":
        credentials = f"postgresql+psycopg2://postgres@{host}:55432/postgres"
    else:
        credentials = f"mysql+pymysql://root@{host}:53306/bench"
    source = sql_table(credentials=credentials, table=table, backend="pyarrow",
                       chunk_size=100_000, reflection_level="full_with_precision")
    destination = dlt.destinations.filesystem(
        bucket_url=bucket_url,
        credentials={"aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
                     "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
                     "endpoint_url": os.environ["AWS_ENDPOINT_URL_S3"],
                     "region_name": os.environ["AWS_DEFAULT_REGION"]})
    pipeline = dlt.pipeline(pipeline_name=f"bench_{kind}_{table}", destination=destination,
                            dataset_name=f"ds_{kind}",
                            pipelines_dir=os.environ.get("DLT_PIPELINES_DIR"))
    info = pipeline.run(source, loader_file_format=file_format, write_disposition="replace")
    info.raise_on_failed_jobs()


if __name__ == "__main__":
    main(*sys.argv[1:5])
