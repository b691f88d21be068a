"""The columns of the published tables, written once.

The tables are Apache Iceberg tables (format v2) in the Glue Data Catalog. Transform builds its
Parquet schema from these (handlers/logic/curated.py), the storage layer builds each table's
Iceberg schema and its Glue columns from them (lake/iceberg.py, pipeline_constructs/catalog.py),
so the files, the table metadata and the catalog cannot disagree. Field ids are the columns'
positions here, so a column is only ever added at the end.

Amounts are DECIMAL(38, 4): exact, and scale 4 covers the largest minor units of ISO 4217
(CLF, UYW), so every currency's amounts are exact in one type that Athena sums.
"""

from __future__ import annotations

from dataclasses import dataclass

from lake.layout import DAILY_TOTALS_TABLE, JOB_QUALITY_TABLE, PARTITION_KEY, TRANSACTIONS_TABLE

# Logical types, each with its Glue (Athena) name; the handlers map them to Arrow types, lake/iceberg.py
# to Iceberg types.
STRING, INT64, INT32, TIMESTAMP, DATE, AMOUNT = "string", "int64", "int32", "timestamp", "date", "amount"
AMOUNT_PRECISION, AMOUNT_SCALE = 38, 4
GLUE_TYPES = {
    STRING: "string",
    INT64: "bigint",
    INT32: "int",
    TIMESTAMP: "timestamp",
    DATE: "date",
    AMOUNT: f"decimal({AMOUNT_PRECISION},{AMOUNT_SCALE})",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    partition_by: str | None = PARTITION_KEY  # identity partitioning (the day transform needs pyiceberg-core)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


BOOKING_DATE = Column(PARTITION_KEY, DATE, "UTC calendar date of booked_at")

TRANSACTIONS = Table(
    TRANSACTIONS_TABLE,
    "Validated transactions, one row per source row, amounts exact",
    (
        Column("job_id", STRING, "job that loaded the row"),
        Column("source_line", INT64, "physical line of the row in its source file"),
        Column("transaction_id", STRING, "unique within its job"),
        Column("account_id", STRING, "account the transaction books to"),
        Column("booked_at", TIMESTAMP, "instant of booking, UTC"),
        Column("amount", AMOUNT, "unsigned, quantized to the currency's minor units"),
        Column("signed_amount", AMOUNT, "DEBIT negative, CREDIT positive"),
        Column("currency", STRING, "ISO 4217 code"),
        Column("minor_units", INT32, "ISO 4217 minor units of the currency"),
        Column("direction", STRING, "DEBIT or CREDIT"),
        Column("description", STRING, "free text, at most 500 characters"),
        Column("extra", STRING, "JSON object of the source's columns outside the contract"),
        BOOKING_DATE,
    ),
)

DAILY_TOTALS = Table(
    DAILY_TOTALS_TABLE,
    "Per job, booking date, account and currency: row count and exact sums",
    (
        Column("job_id", STRING, "job whose rows are summed"),
        Column("account_id", STRING, "account"),
        Column("currency", STRING, "ISO 4217 code"),
        Column("row_count", INT64, "rows summed"),
        Column("debit_total", AMOUNT, "sum of DEBIT amounts, exact"),
        Column("credit_total", AMOUNT, "sum of CREDIT amounts, exact"),
        Column("net_total", AMOUNT, "credit_total - debit_total, exact"),
        BOOKING_DATE,
    ),
)

# Each job's quality figures, one row per figure, so data quality has a history that can be queried:
# measure rows_received | rows_loaded | rows_rejected (key empty), rejected (key: reason),
# rows_valid / total_valid (key: currency).
JOB_QUALITY = Table(
    JOB_QUALITY_TABLE,
    "Per job: its verdict and its quality figures, one row per figure",
    (
        Column("job_id", STRING, "the job"),
        Column("committed_at", TIMESTAMP, "when its figures were committed, UTC"),
        Column("verdict", STRING, "LOADED or REJECTED"),
        Column("source_key", STRING, "the source's S3 key"),
        Column("source_sha256", STRING, "the source's SHA-256"),
        Column("code_version", STRING, "the functions' code version"),
        Column("measure", STRING, "which figure"),
        Column("key", STRING, "the reason or currency the figure is for; empty for a job's counts"),
        Column("value", AMOUNT, "the figure: a count, or an exact total"),
    ),
    partition_by=None,
)

TABLES = (TRANSACTIONS, DAILY_TOTALS, JOB_QUALITY)
# The tables a job's rows are published to (one commit each); the quality table records every verdict.
PUBLISHED = (TRANSACTIONS, DAILY_TOTALS)
