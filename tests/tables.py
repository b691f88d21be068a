"""The published Iceberg tables registered as the storage layer registers them (its first metadata
file in S3, a Glue table pointing at it), for tests that run without Terraform."""

from __future__ import annotations

from typing import Any

from lake import iceberg, layout, schema


def register_tables(
    *,
    s3: Any,
    glue: Any,
    bucket: str,
    database: str,
    environment: str,
    tables: tuple[schema.Table, ...] = schema.TABLES,
) -> None:
    for table in tables:
        location = f"s3://{bucket}/{layout.table_prefix(table.name)}"
        key = iceberg.first_metadata_key(table, environment=environment)
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=iceberg.first_metadata(table=table, location=location, environment=environment).encode(),
            ChecksumAlgorithm="SHA256",
        )
        glue.create_table(
            DatabaseName=database,
            TableInput={
                "Name": table.name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": iceberg.glue_parameters(f"s3://{bucket}/{key}"),
                "StorageDescriptor": {"Location": location},
            },
        )
