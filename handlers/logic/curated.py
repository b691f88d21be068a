"""Curated Parquet files: schema and a writer that keeps memory bounded per booking date."""

from __future__ import annotations

import os
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from handlers.logic.normalize import NormalizedRow

TRANSACTION_SCHEMA = pa.schema(
    [
        ("job_id", pa.string()),
        ("source_line", pa.int64()),
        ("transaction_id", pa.string()),
        ("account_id", pa.string()),
        ("booked_at", pa.timestamp("us", tz="UTC")),
        ("booking_date", pa.date32()),
        ("amount", pa.string()),
        ("signed_amount", pa.string()),
        ("currency", pa.string()),
        ("minor_units", pa.int8()),
        ("direction", pa.string()),
        ("description", pa.string()),
        ("extra", pa.string()),
    ]
)

DAILY_TOTALS_SCHEMA = pa.schema(
    [
        ("booking_date", pa.date32()),
        ("account_id", pa.string()),
        ("currency", pa.string()),
        ("row_count", pa.int64()),
        ("debit_total", pa.string()),
        ("credit_total", pa.string()),
        ("net_total", pa.string()),
    ]
)


class PartitionedWriter:
    """Buffers rows per booking date and flushes them as row groups of one file per date."""

    def __init__(self, *, directory: str, job_id: str, flush_rows: int = 20_000) -> None:
        self.directory = directory
        self.job_id = job_id
        self.flush_rows = flush_rows
        self._buffers: dict[date, list[NormalizedRow]] = {}
        self._buffered = 0
        self._writers: dict[date, pq.ParquetWriter] = {}
        self.rows_per_date: dict[date, int] = {}

    def path_for(self, booking_date: date) -> str:
        return os.path.join(self.directory, f"booking_date={booking_date.isoformat()}.parquet")

    def add(self, row: NormalizedRow) -> None:
        buffer = self._buffers.get(row.booking_date)
        if buffer is None:
            buffer = self._buffers[row.booking_date] = []
        buffer.append(row)
        self._buffered += 1
        if self._buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        for booking_date, rows in self._buffers.items():
            if rows:
                self._write(booking_date, rows)
        self._buffers = {}
        self._buffered = 0

    def _write(self, booking_date: date, rows: list[NormalizedRow]) -> None:
        writer = self._writers.get(booking_date)
        if writer is None:
            writer = pq.ParquetWriter(self.path_for(booking_date), TRANSACTION_SCHEMA, compression="zstd")
            self._writers[booking_date] = writer
        columns = {
            "job_id": [self.job_id] * len(rows),
            "source_line": [r.source_line for r in rows],
            "transaction_id": [r.transaction_id for r in rows],
            "account_id": [r.account_id for r in rows],
            "booked_at": [r.booked_at for r in rows],
            "booking_date": [r.booking_date for r in rows],
            "amount": [r.amount for r in rows],
            "signed_amount": [r.signed_amount for r in rows],
            "currency": [r.currency for r in rows],
            "minor_units": [r.minor_units for r in rows],
            "direction": [r.direction for r in rows],
            "description": [r.description for r in rows],
            "extra": [r.extra for r in rows],
        }
        writer.write_table(pa.table(columns, schema=TRANSACTION_SCHEMA))
        self.rows_per_date[booking_date] = self.rows_per_date.get(booking_date, 0) + len(rows)

    def close(self) -> dict[date, str]:
        """Flush and close; returns booking date -> local file path."""
        self.flush()
        for writer in self._writers.values():
            writer.close()
        return {booking_date: self.path_for(booking_date) for booking_date in sorted(self._writers)}


def write_daily_totals(*, path: str, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=DAILY_TOTALS_SCHEMA), path, compression="zstd")


def sum_by_currency(path: str) -> tuple[int, dict[str, int], dict[str, int]]:
    """Rows, rows per currency and unsigned amount sums in minor units, read back from a file."""
    rows_by_currency: dict[str, int] = {}
    minor_by_currency: dict[str, int] = {}
    total = 0
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(columns=["currency", "amount"], batch_size=65_536):
        for currency, amount in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            rows_by_currency[currency] = rows_by_currency.get(currency, 0) + 1
            minor_by_currency[currency] = minor_by_currency.get(currency, 0) + int(amount.replace(".", ""))
            total += 1
    return total, rows_by_currency, minor_by_currency
