"""Iceberg tables in the emulator for the local tests: pyiceberg's GlueCatalog against it, data
through pyarrow's S3 client pointed at it (unique module name: tests/ has no packages)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pyarrow as pa
from local_emu_helpers import REGION

LEDGER = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("amount", pa.decimal128(18, 4), nullable=False),
        pa.field("booking_date", pa.date32(), nullable=False),
    ]
)


def catalog_properties(url: str) -> dict[str, str]:
    return {
        "glue.endpoint": url,
        "glue.region": REGION,
        "glue.access-key-id": "test",
        "glue.secret-access-key": "test",
        "s3.endpoint": url,
        "s3.region": REGION,
        "s3.access-key-id": "test",
        "s3.secret-access-key": "test",
        "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
    }


def glue_catalog(url: str):
    from pyiceberg.catalog.glue import GlueCatalog

    return GlueCatalog("glue", **catalog_properties(url))


def new_lake(emulator, prefix: str) -> tuple[str, str]:
    """A fresh bucket and Glue database (names unique within the session's emulator)."""
    suffix = uuid.uuid4().hex[:8]
    bucket, database = f"{prefix}-{suffix}", f"{prefix.replace('-', '_')}_{suffix}"
    emulator.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    emulator.client("glue").create_database(DatabaseInput={"Name": database})
    return bucket, database


def rows(*records: tuple[str, str, str, str]) -> pa.Table:
    """(transaction_id, currency, amount, booking date) -> a ledger Arrow table."""
    return pa.table(
        {
            "transaction_id": [r[0] for r in records],
            "currency": [r[1] for r in records],
            "amount": [Decimal(r[2]) for r in records],
            "booking_date": [date.fromisoformat(r[3]) for r in records],
        },
        schema=LEDGER,
    )
