"""The columns of the published tables, written once.

Transform builds its Parquet schema from these (handlers/logic/curated.py) and the storage
layer builds the Glue tables from them (pipeline_constructs/catalog.py), so the files and the catalog
cannot disagree. The partition key is not a column of the files: it is the `booking_date=`
part of their keys (Hive layout), which the tables' partition projection reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from lake.layout import DAILY_TOTALS_TABLE, PARTITION_KEY, TRANSACTIONS_TABLE

# Logical types, each with its Glue (Hive) name; the handlers map them to Arrow types.
STRING, INT64, INT8, TIMESTAMP, DATE = "string", "int64", "int8", "timestamp", "date"
GLUE_TYPES = {STRING: "string", INT64: "bigint", INT8: "tinyint", TIMESTAMP: "timestamp", DATE: "date"}


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

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


BOOKING_DATE = Column(PARTITION_KEY, DATE, "UTC calendar date of booked_at")

TRANSACTIONS = Table(
    TRANSACTIONS_TABLE,
    "Validated transactions, one row per source row, amounts as exact decimal text",
    (
        Column("job_id", STRING, "job that loaded the row"),
        Column("source_line", INT64, "physical line of the row in its source file"),
        Column("transaction_id", STRING, "unique within its job"),
        Column("account_id", STRING, "account the transaction books to"),
        Column("booked_at", TIMESTAMP, "instant of booking, UTC"),
        Column("amount", STRING, "unsigned, quantized to the currency's minor units"),
        Column("signed_amount", STRING, "DEBIT negative, CREDIT positive"),
        Column("currency", STRING, "ISO 4217 code"),
        Column("minor_units", INT8, "ISO 4217 minor units of the currency"),
        Column("direction", STRING, "DEBIT or CREDIT"),
        Column("description", STRING, "free text, at most 500 characters"),
        Column("extra", STRING, "JSON object of the source's columns outside the contract"),
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
        Column("debit_total", STRING, "sum of DEBIT amounts, exact decimal text"),
        Column("credit_total", STRING, "sum of CREDIT amounts, exact decimal text"),
        Column("net_total", STRING, "credit_total - debit_total, exact decimal text"),
    ),
)

TABLES = (TRANSACTIONS, DAILY_TOTALS)
