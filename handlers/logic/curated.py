"""Curated Parquet files, written with memory bounded independently of the input size.

Transform runs in two passes over local files:

1. ``DateSpill``: each normalised record batch is sorted by booking date (stable, so source order
   is kept within a date) and every date's slice is appended as one record batch to a single Arrow
   IPC file in the work directory. Only a list of batch numbers per date stays in memory.
2. ``write_partitions``: date by date (ascending), that date's batches are read back in order and
   written as one Parquet file with row groups of a fixed number of rows, and the date's daily
   totals per (account, currency) are aggregated with exact decimal sums and appended to the one
   daily totals file, so it comes out sorted by date, account and currency.

Memory holds one input batch, one row group and the (account, currency) groups of one date.
Outputs depend only on the rows, not on how the input was split into batches.
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from handlers.logic.normalize import DEBIT, MINOR_TYPE, currency_exponents, format_minor

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


# The spill keeps the curated columns (no job_id) plus exact unsigned minor units for the totals.
SPILL_SCHEMA = pa.schema(
    [field for field in TRANSACTION_SCHEMA if field.name != "job_id"] + [pa.field("minor", MINOR_TYPE)]
)
SPILL_ROWS = 128 * 1024  # rows sorted by date at a time in pass 1
ROW_GROUP_ROWS = 128 * 1024
DAILY_ROW_GROUP_ROWS = 64 * 1024
AGGREGATE_ROWS = 256 * 1024  # rows of one date aggregated at a time (partial sums merged exactly)
# Dictionary pages only for columns that repeat; ids and descriptions are mostly distinct.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["job_id", "account_id", "currency", "minor_units", "direction", "extra"],
}


class DateSpill:
    """Rows grouped by booking date in one Arrow IPC file: append in any order, read back per date."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sink = pa.OSFile(path, "wb")
        self._writer = pa.ipc.new_file(self._sink, SPILL_SCHEMA, options=pa.ipc.IpcWriteOptions(compression=None))
        self._batches = 0
        self.batches_per_date: dict[int, array] = {}  # date32 day number -> batch numbers
        self.rows_per_date: dict[int, int] = {}
        self._reader: pa.ipc.RecordBatchFileReader | None = None
        self._source = None
        self._pending: dict[int, list[pa.Table]] = {}
        self._pending_rows = 0

    def add(self, table: pa.Table) -> None:
        """Sort rows by date (stable, so source order is kept within a date) and queue each date's
        slice; the queue is written, one record batch per date, once SPILL_ROWS rows are queued."""
        if table.num_rows == 0:
            return
        table = table.select(SPILL_SCHEMA.names)
        days = table.column("booking_date").cast(pa.int32()).combine_chunks()
        bounds = pc.min_max(days).as_py()
        if bounds["min"] != bounds["max"]:
            order = pc.array_sort_indices(days)
            table, days = table.take(order), days.take(order)
        encoded = pc.run_end_encode(days)
        start = 0
        for end, day in zip(encoded.run_ends.to_pylist(), encoded.values.to_pylist(), strict=True):
            self._pending.setdefault(day, []).append(table.slice(start, end - start))
            start = end
        self._pending_rows += table.num_rows
        if self._pending_rows >= SPILL_ROWS:
            self._flush()

    def _flush(self) -> None:
        for day in sorted(self._pending):
            rows = 0
            for batch in pa.concat_tables(self._pending[day]).combine_chunks().to_batches():
                self._writer.write_batch(batch)
                self.batches_per_date.setdefault(day, array("I")).append(self._batches)
                self._batches += 1
                rows += batch.num_rows
            self.rows_per_date[day] = self.rows_per_date.get(day, 0) + rows
        self._pending, self._pending_rows = {}, 0

    def finish(self) -> None:
        self._flush()
        self._writer.close()
        self._sink.close()
        self._source = pa.OSFile(self.path, "rb")
        self._reader = pa.ipc.open_file(self._source)

    def days(self) -> list[int]:
        return sorted(self.batches_per_date)

    def chunks(self, day: int, rows: int):
        """The date's rows in source order, as tables of about ``rows`` rows or more (whole batches)."""
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for number in self.batches_per_date[day]:
            batch = self._reader.get_batch(number)
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= rows:
                yield pa.Table.from_batches(pending).combine_chunks()
                pending, pending_rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending).combine_chunks()

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = self._reader = None
        if os.path.exists(self.path):
            os.remove(self.path)


class RowGroupWriter:
    """A Parquet file written from a stream of tables as row groups of exactly ``rows`` rows (the
    last one shorter), so the bytes do not depend on how the stream was split."""

    def __init__(self, path: str, schema: pa.Schema, *, rows: int) -> None:
        self._writer = pq.ParquetWriter(path, schema, **PARQUET_OPTIONS)
        self._rows = rows
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows_written = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= self._rows:
            pending = pa.concat_tables(self._pending)
            self._write(pending.slice(0, self._rows))
            rest = pending.slice(self._rows)
            self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def _write(self, table: pa.Table) -> None:
        # One contiguous chunk per row group: page boundaries then do not depend on batch sizes.
        self._writer.write_table(table.combine_chunks(), row_group_size=self._rows)
        self.rows_written += table.num_rows

    def close(self) -> None:
        if self._pending_rows:
            self._write(pa.concat_tables(self._pending))
        self._pending, self._pending_rows = [], 0
        self._writer.close()


@dataclass
class DailyAggregator:
    """Per (account_id, currency) of one booking date: rows, debit, credit and net minor units,
    summed exactly as decimal128. Partial results of large dates are merged by summing again."""

    partials: list[pa.Table] = field(default_factory=list)
    pending: list[pa.Table] = field(default_factory=list)
    pending_rows: int = 0

    _SUMS = ("debit", "credit", "net")

    def add(self, batch: pa.Table) -> None:
        minor = batch.column("minor")
        debit = pc.equal(batch.column("direction"), DEBIT)
        zero = pa.scalar(Decimal(0), MINOR_TYPE)
        self.pending.append(
            pa.table(
                {
                    "account_id": batch.column("account_id"),
                    "currency": batch.column("currency"),
                    "rows": pa.nulls(batch.num_rows, pa.int64()).fill_null(1),
                    "debit": pc.if_else(debit, minor, zero),
                    "credit": pc.if_else(debit, zero, minor),
                    "net": pc.if_else(debit, pc.negate(minor), minor),
                }
            )
        )
        self.pending_rows += batch.num_rows
        if self.pending_rows >= AGGREGATE_ROWS:
            self._reduce_pending()

    def _reduce_pending(self) -> None:
        if self.pending:
            self.partials.append(_sum_groups(pa.concat_tables(self.pending)))
            self.pending, self.pending_rows = [], 0

    def result(self, booking_date: int) -> pa.Table:
        """The date's rows of DAILY_TOTALS_SCHEMA, sorted by account_id then currency."""
        self._reduce_pending()
        groups = self.partials[0] if len(self.partials) == 1 else _sum_groups(pa.concat_tables(self.partials))
        self.partials = []
        groups = groups.sort_by([("account_id", "ascending"), ("currency", "ascending")])
        currency = groups.column("currency").combine_chunks()
        exponent = currency_exponents(currency)
        text = {name: format_minor(groups.column(name).combine_chunks(), exponent) for name in self._SUMS}
        return pa.table(
            {
                "booking_date": pa.nulls(groups.num_rows, pa.int32()).fill_null(booking_date).cast(pa.date32()),
                "account_id": groups.column("account_id"),
                "currency": currency,
                "row_count": groups.column("rows"),
                "debit_total": text["debit"],
                "credit_total": text["credit"],
                "net_total": text["net"],
            },
            schema=DAILY_TOTALS_SCHEMA,
        )


def _sum_groups(table: pa.Table) -> pa.Table:
    summed = table.group_by(["account_id", "currency"], use_threads=False).aggregate(
        [(name, "sum") for name in ("rows", "debit", "credit", "net")]
    )
    return summed.rename_columns({f"{name}_sum": name for name in ("rows", "debit", "credit", "net")}).select(
        ["account_id", "currency", "rows", "debit", "credit", "net"]
    )


def _constant_strings(value: str, length: int) -> pa.Array:
    return pa.nulls(length, pa.string()).fill_null(value)


def partition_path(directory: str, booking_date: str) -> str:
    return os.path.join(directory, f"booking_date={booking_date}.parquet")


def write_partitions(
    *, spill: DateSpill, job_id: str, directory: str, daily_path: str
) -> tuple[dict[str, tuple[str, int]], int]:
    """Pass 2: one Parquet file per booking date, and the daily totals file.

    Returns booking date (ISO text) -> (path, rows), and the number of daily totals rows."""
    files: dict[str, tuple[str, int]] = {}
    daily = RowGroupWriter(daily_path, DAILY_TOTALS_SCHEMA, rows=DAILY_ROW_GROUP_ROWS)
    daily_rows = 0
    try:
        for day in spill.days():
            iso = pa.scalar(day, pa.int32()).cast(pa.date32()).as_py().isoformat()
            path = partition_path(directory, iso)
            writer = RowGroupWriter(path, TRANSACTION_SCHEMA, rows=ROW_GROUP_ROWS)
            aggregator = DailyAggregator()
            try:
                for batch in spill.chunks(day, ROW_GROUP_ROWS):
                    aggregator.add(batch)
                    columns = {"job_id": _constant_strings(job_id, batch.num_rows)}
                    columns.update((name, batch.column(name)) for name in TRANSACTION_SCHEMA.names[1:])
                    writer.write(pa.table(columns, schema=TRANSACTION_SCHEMA))
            finally:
                writer.close()
            files[iso] = (path, writer.rows_written)
            totals = aggregator.result(day)
            daily.write(totals)
            daily_rows += totals.num_rows
    finally:
        daily.close()
    return files, daily_rows


def sum_by_currency(path: str) -> tuple[int, dict[str, int], dict[str, int]]:
    """Rows, rows per currency and unsigned amount sums in minor units, read back from a file."""
    rows_by_currency: dict[str, int] = {}
    minor_by_currency: dict[str, int] = {}
    total = 0
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(columns=["currency", "amount"], batch_size=65_536):
        # Quantized texts: dropping the point gives the minor units (exact integer decimal cast).
        digits = pc.replace_substring(batch.column(1), ".", "")
        table = pa.table({"currency": batch.column(0), "minor": pc.cast(digits, MINOR_TYPE)})
        grouped = table.group_by("currency", use_threads=False).aggregate([("minor", "sum"), ("minor", "count")])
        for currency, minor, count in zip(*(c.to_pylist() for c in grouped.columns), strict=True):
            rows_by_currency[currency] = rows_by_currency.get(currency, 0) + count
            minor_by_currency[currency] = minor_by_currency.get(currency, 0) + int(minor)
        total += batch.num_rows
    return total, rows_by_currency, minor_by_currency
