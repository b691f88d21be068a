"""The Parquet a job publishes, written with memory bounded independently of the input size.

Two steps, on local files:

1. Per chunk (validate): ``DateSpill`` groups the chunk's normalised valid rows by booking date in
   one Arrow IPC file (only batch numbers per date stay in memory); each date's rows, in line
   order, become one staging part of the chunk (``write_date_parts``).
2. Per booking date (transform): ``write_date`` reads that date's parts of every chunk, in chunk
   order (so in line order), and writes the transactions as Parquet with row groups of a fixed
   number of rows (a new file every ``FILE_ROWS`` rows), and the date's daily totals per
   (account, currency), summed exactly (int64 halves, put together as decimal128).

Memory holds one batch, one row group and the (account, currency) groups of one date. The bytes
depend only on the rows, not on how they were split into chunks or batches.
"""

from __future__ import annotations

import bisect
import os
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from handlers.logic.contract import CURRENCY_EXPONENTS
from handlers.logic.normalize import (
    AMOUNT_TYPE,
    DEBIT,
    MINOR_TYPE,
    SPLIT,
    currency_exponents,
    decimal_halves,
    minor_to_amount,
)
from lake import schema

_ARROW_TYPES = {
    schema.STRING: pa.string(),
    schema.INT64: pa.int64(),
    schema.INT32: pa.int32(),
    schema.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    schema.DATE: pa.date32(),
    schema.AMOUNT: AMOUNT_TYPE,
}


def arrow_schema(table: schema.Table) -> pa.Schema:
    """The Parquet schema of a published table, from its one definition (lake/schema.py); every
    column required, as in the Iceberg table (lake/iceberg.py)."""
    return pa.schema([pa.field(column.name, _ARROW_TYPES[column.type], nullable=False) for column in table.columns])


TRANSACTION_SCHEMA = arrow_schema(schema.TRANSACTIONS)
DAILY_TOTALS_SCHEMA = arrow_schema(schema.DAILY_TOTALS)


# A chunk's valid rows, normalised: the published columns but the job's id (the booking date among
# them, which they are grouped by), and exact unsigned minor units for the totals.
SPILL_SCHEMA = pa.schema(
    [field.with_nullable(True) for field in TRANSACTION_SCHEMA if field.name != "job_id"]
    + [pa.field("minor", MINOR_TYPE)]
)
SPILL_ROWS = 64 * 1024  # rows sorted by date at a time in pass 1
PART_BATCH_ROWS = 32 * 1024  # rows of a staging part written or read at a time (row groups are regrouped)
ROW_GROUP_ROWS = 128 * 1024
DAILY_ROW_GROUP_ROWS = 64 * 1024
AGGREGATE_ROWS = 256 * 1024  # rows of one date aggregated at a time (partial sums merged exactly)
# (account, currency) groups of one date held in memory at most: on the 2 GB benchmark file's date
# 256 Ki peaked at 328 MB, 128 Ki at 285 MB, 64 Ki no lower (the Parquet writing is the rest).
MERGE_ROWS = 128 * 1024
RUN_BATCH_ROWS = 16 * 1024  # groups per batch of a run on disk: the merge reads a batch at a time
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

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

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


# Daily totals are summed as int64 halves (normalize.SPLIT), exactly for up to MAX_GROUP_ROWS rows
# a group; carries move to the high half after every reduction.
MAX_GROUP_ROWS = 900_000_000
_SUM_COLUMNS = ("rows", "debit_high", "debit_low", "credit_high", "credit_low")
_GROUPS_SCHEMA = pa.schema(
    [pa.field("account_id", pa.string()), pa.field("currency", pa.string())]
    + [pa.field(name, pa.int64()) for name in _SUM_COLUMNS]
)
_GROUP_KEYS = [("account_id", "ascending"), ("currency", "ascending")]


class DailyAggregator:
    """Per (account_id, currency) of one booking date: rows, debit, credit and net minor units,
    summed exactly. Batches are reduced a few hundred thousand rows at a time (sorted by the group
    keys, summed between group boundaries). Partial results stay in memory while they shrink when
    summed together (accounts that repeat); once they hold more than MERGE_ROWS distinct groups,
    they go to ``directory`` as sorted runs, and the end merges the runs one range of accounts at a
    time: memory holds about MERGE_ROWS groups, whatever the number of accounts of the date."""

    def __init__(self, directory: str | None = None) -> None:
        self._directory = directory  # None: partial results are kept in memory
        self.partials: list[pa.Table] = []
        self._partial_rows = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self._runs: list[_Run] = []

    def add(self, batch: pa.Table) -> None:
        high, low = decimal_halves(batch.column("minor"))
        debit = pc.equal(batch.column("direction"), DEBIT).to_numpy(zero_copy_only=False)
        self.pending.append(
            pa.table(
                {
                    "account_id": batch.column("account_id"),
                    "currency": batch.column("currency"),
                    "rows": np.ones(batch.num_rows, dtype=np.int64),
                    "debit_high": np.where(debit, high, 0),
                    "debit_low": np.where(debit, low, 0),
                    "credit_high": np.where(debit, 0, high),
                    "credit_low": np.where(debit, 0, low),
                }
            )
        )
        self.pending_rows += batch.num_rows
        if self.pending_rows >= AGGREGATE_ROWS:
            self._reduce_pending()

    def _reduce_pending(self) -> None:
        if self.pending:
            partial = _sum_groups(pa.concat_tables(self.pending))
            self.pending, self.pending_rows = [], 0
            self.partials.append(partial)
            self._partial_rows += partial.num_rows
            if self._directory is not None and self._partial_rows > MERGE_ROWS:
                self._compact()
            pa.default_memory_pool().release_unused()  # the pages a reduction freed, back now

    def _compact(self) -> None:
        merged = self._take_partials()
        if merged.num_rows <= MERGE_ROWS // 2:
            self.partials, self._partial_rows = [merged], merged.num_rows
        else:
            self._spill(merged)

    def _take_partials(self) -> pa.Table:
        merged = self.partials[0] if len(self.partials) == 1 else _sum_groups(pa.concat_tables(self.partials))
        self.partials, self._partial_rows = [], 0
        return merged

    def _spill(self, groups: pa.Table) -> None:
        self._runs.append(_Run.write(os.path.join(self._directory, f"daily-run-{len(self._runs):05d}.arrow"), groups))

    def results(self, job_id: str, booking_date: date, *, rows: int):
        """The date's rows of DAILY_TOTALS_SCHEMA, sorted by account_id then currency, as tables
        of exactly ``rows`` rows (the last one shorter; one empty table for a date without rows):
        the amounts of one slice at a time, not of every group at once."""
        yield from daily_tables(self.groups(), job_id, booking_date, rows=rows)

    def groups(self) -> Iterator[pa.Table]:
        """The date's summed groups, sorted by (account_id, currency), a range of accounts at a time
        (nothing for a date without rows); the runs are removed once read."""
        self._reduce_pending()
        if not self.partials and not self._runs:
            return
        if self._runs:
            if self.partials:
                self._spill(self._take_partials())
            yield from _merge_runs(self._runs)
        else:
            yield self._take_partials()
        for run in self._runs:
            os.remove(run.path)
        self._runs = []

    def write_partial(self, path: str) -> _Run:
        """The groups summed so far as one sorted run: an item's partial daily totals, which the
        date's merge (``merge_partials``) adds up exactly with the other items'."""
        return _Run.write_stream(path, self.groups())


def daily_tables(groups: Iterator[pa.Table], job_id: str, booking_date: date, *, rows: int) -> Iterator[pa.Table]:
    """Sorted groups as rows of DAILY_TOTALS_SCHEMA in tables of exactly ``rows`` rows (the last one
    shorter; one empty table when there are none): the amounts of one slice at a time."""
    empty = True
    for table in _rebatch(groups, rows):
        empty = False
        yield _daily_rows(table, job_id, booking_date)
    if empty:
        yield DAILY_TOTALS_SCHEMA.empty_table()


def _rebatch(tables, rows: int) -> Iterator[pa.Table]:
    """The tables' rows in order as tables of exactly ``rows`` rows, the last one shorter."""
    pending: list[pa.Table] = []
    pending_rows = 0
    for table in tables:
        if not table.num_rows:
            continue
        pending.append(table)
        pending_rows += table.num_rows
        while pending_rows >= rows:
            joined = pa.concat_tables(pending)
            yield joined.slice(0, rows).combine_chunks()
            rest = joined.slice(rows)
            pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
    if pending_rows:
        yield pa.concat_tables(pending).combine_chunks()


_RUN_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")  # fast; runs of a big date then take less /tmp


@dataclass(frozen=True)
class _Run:
    """Partial sums of a date on disk, sorted by (account_id, currency), in batches of RUN_BATCH_ROWS;
    the first account of each batch is kept to find a range of accounts without reading the rest."""

    path: str
    firsts: list[str]

    @classmethod
    def write(cls, path: str, groups: pa.Table) -> _Run:
        return cls.write_stream(path, [groups])

    @classmethod
    def write_stream(cls, path: str, tables: Iterator[pa.Table] | list[pa.Table]) -> _Run:
        """Sorted groups, in order, as batches of exactly RUN_BATCH_ROWS (the last one shorter)."""
        firsts: list[str] = []
        writer = None
        with pa.OSFile(path, "wb") as sink:
            for table in _rebatch(tables, RUN_BATCH_ROWS):
                if writer is None:
                    writer = pa.ipc.new_file(sink, table.schema, options=_RUN_OPTIONS)
                writer.write_table(table)  # one chunk: one batch
                firsts.append(table.column("account_id")[0].as_py())
            if writer is None:
                writer = pa.ipc.new_file(sink, _GROUPS_SCHEMA, options=_RUN_OPTIONS)
            writer.close()
        return cls(path, firsts)

    def between(self, reader: pa.ipc.RecordBatchFileReader, low: str | None, high: str | None) -> Iterator[pa.Table]:
        """Its rows with low <= account_id < high (None: unbounded)."""
        # From the last batch that starts below low: it may end with low's first currencies.
        first = 0 if low is None else max(0, bisect.bisect_left(self.firsts, low) - 1)
        end = len(self.firsts) if high is None else bisect.bisect_left(self.firsts, high)
        for number in range(first, end):
            batch = pa.Table.from_batches([reader.get_batch(number)])
            accounts = batch.column("account_id")
            if low is not None and number == first:
                batch = batch.filter(pc.greater_equal(accounts, low))
                accounts = batch.column("account_id")
            if high is not None and number == end - 1:
                batch = batch.filter(pc.less(accounts, high))
            if batch.num_rows:
                yield batch


def _merge_runs(runs: list[_Run]) -> Iterator[pa.Table]:
    """The runs summed together, one range of accounts at a time, in account order. The ranges are
    cut at batch-first accounts, about MERGE_ROWS // RUN_BATCH_ROWS batches of all runs apart."""
    firsts = sorted({account for run in runs for account in run.firsts[1:]})
    step = max(1, MERGE_ROWS // RUN_BATCH_ROWS)
    bounds: list[str | None] = [None, *firsts[step::step], None]
    sources = [pa.OSFile(run.path, "rb") for run in runs]
    try:
        readers = [pa.ipc.open_file(source) for source in sources]
        for low, high in zip(bounds[:-1], bounds[1:], strict=True):
            pieces = [
                piece for run, reader in zip(runs, readers, strict=True) for piece in run.between(reader, low, high)
            ]
            if pieces:
                yield _sum_groups(pa.concat_tables(pieces))
    finally:
        for source in sources:
            source.close()


def _daily_rows(groups: pa.Table, job_id: str, booking_date: date) -> pa.Table:
    currency = groups.column("currency").combine_chunks()
    exponent = currency_exponents(currency)
    debit, credit = _minor(groups, "debit"), _minor(groups, "credit")
    net = pc.cast(pc.subtract(credit, debit), MINOR_TYPE)
    debit, credit = pc.cast(debit, MINOR_TYPE), pc.cast(credit, MINOR_TYPE)
    return pa.table(
        {
            "job_id": constant_strings(job_id, groups.num_rows),
            "account_id": groups.column("account_id"),
            "currency": currency,
            "row_count": groups.column("rows"),
            "debit_total": minor_to_amount(debit, exponent),
            "credit_total": minor_to_amount(credit, exponent),
            "net_total": minor_to_amount(net, exponent),
            schema.BOOKING_DATE.name: pa.nulls(groups.num_rows, pa.date32()).fill_null(booking_date),
        },
        schema=DAILY_TOTALS_SCHEMA,
    )


def _sum_groups(table: pa.Table) -> pa.Table:
    """One row per (account_id, currency), sorted by them, with the sums' carries moved up."""
    order = pc.sort_indices(table, sort_keys=_GROUP_KEYS)
    account = table.column("account_id").take(order).combine_chunks()
    currency = table.column("currency").take(order).combine_chunks()
    boundary = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        changed = pc.or_(
            pc.not_equal(account.slice(1), account.slice(0, len(order) - 1)),
            pc.not_equal(currency.slice(1), currency.slice(0, len(order) - 1)),
        )
        boundary[1:] = changed.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(boundary)
    indices = order.to_numpy()
    sums = {name: np.add.reduceat(table.column(name).to_numpy()[indices], starts) for name in _SUM_COLUMNS}
    if int(sums["rows"].max()) > MAX_GROUP_ROWS:
        raise OverflowError(f"more than {MAX_GROUP_ROWS} rows of one account and currency on one booking date")
    for side in ("debit", "credit"):
        carry, sums[f"{side}_low"] = np.divmod(sums[f"{side}_low"], SPLIT)
        sums[f"{side}_high"] = sums[f"{side}_high"] + carry
    first = pa.array(starts)
    return pa.table({"account_id": account.take(first), "currency": currency.take(first), **sums})


_SPLIT_DECIMAL = pa.scalar(Decimal(SPLIT), pa.decimal128(11, 0))


def _minor(groups: pa.Table, side: str) -> pa.Array:
    """high * SPLIT + low of one side's sums, as exact decimal minor units (precision 32)."""
    high = pc.cast(groups.column(f"{side}_high").combine_chunks(), pa.decimal128(19, 0))
    low = pc.cast(groups.column(f"{side}_low").combine_chunks(), pa.decimal128(19, 0))
    return pc.add(pc.multiply(high, _SPLIT_DECIMAL), low)


def constant_strings(value: str, length: int) -> pa.Array:
    return pa.nulls(length, pa.string()).fill_null(value)


def iso_date(day: int) -> str:
    return pa.scalar(day, pa.int32()).cast(pa.date32()).as_py().isoformat()


# ------------------------------------------------------------------ step 1: a chunk's parts
_PART_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def write_date_parts(spill: DateSpill, directory: str) -> dict[str, tuple[str, int, dict[str, tuple[int, int]]]]:
    """One Arrow IPC file (zstd) per booking date of the chunk: date -> (path, rows, totals), the
    totals per currency as (rows, unsigned minor units)."""
    parts = {}
    for day in spill.days():
        iso = iso_date(day)
        path = os.path.join(directory, f"{schema.BOOKING_DATE.name}={iso}.arrow")
        totals: dict[str, tuple[int, int]] = {}
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, SPILL_SCHEMA, options=_PART_OPTIONS) as writer:
            for table in spill.chunks(day, PART_BATCH_ROWS):
                writer.write_table(table)
                for currency, (rows, minor) in currency_sums(table).items():
                    before = totals.get(currency, (0, 0))
                    totals[currency] = (before[0] + rows, before[1] + minor)
        parts[iso] = (path, spill.rows_per_date[day], totals)
    return parts


def currency_sums(table: pa.Table) -> dict[str, tuple[int, int]]:
    """Per currency (rows, unsigned minor units) of normalised rows, exact."""
    grouped = table.select(["currency", "minor"]).group_by("currency", use_threads=False)
    grouped = grouped.aggregate([("minor", "sum"), ("minor", "count")])
    return {
        currency: (count, int(minor))
        for currency, minor, count in zip(*(column.to_pylist() for column in grouped.columns), strict=True)
    }


# ------------------------------------------------------------------ step 2: one booking date
FILE_ROWS = 8 * ROW_GROUP_ROWS  # about 100 MB of Parquet: large enough for Athena, small enough to copy


@dataclass
class DateOutput:
    files: list[tuple[str, int]]  # (local Parquet path, rows), in order
    daily_path: str  # the daily totals' Parquet, or with ``partial`` the item's sorted run (Arrow IPC)
    daily_rows: int  # rows of the daily totals, or (account, currency) groups of the partial run
    totals: dict[str, tuple[int, int]]  # currency -> (rows, unsigned minor units)
    firsts: list[str] | None = None  # a partial run's batch-first accounts (what the merge seeks by)


def write_date(
    *,
    parts: list[str],
    job_id: str,
    booking_date: str,
    directory: str,
    on_file: Callable[[str, int], None] | None = None,
    partial: bool = False,
) -> DateOutput:
    """The date's transactions (from the chunks' parts, in order) and its daily totals. Each
    transactions file is handed to ``on_file`` (path, rows) as soon as it is complete, so that it
    can leave the disk before the next one is written. With ``partial`` (one of several items of a
    date) the daily totals are left as one sorted run of exact sums, for ``merge_partials``."""
    files: list[tuple[str, int]] = []
    aggregator = DailyAggregator(directory)
    totals: dict[str, tuple[int, int]] = {}
    writer: RowGroupWriter | None = None

    def next_file() -> RowGroupWriter:
        path = os.path.join(directory, f"part-{len(files):05d}.parquet")
        files.append((path, 0))
        return RowGroupWriter(path, TRANSACTION_SCHEMA, rows=ROW_GROUP_ROWS)

    def close_file(done: RowGroupWriter) -> None:
        done.close()
        files[-1] = (files[-1][0], done.rows_written)
        if on_file is not None:
            on_file(*files[-1])

    try:
        for batch in _part_batches(parts):
            aggregator.add(batch)
            for currency, (rows, minor) in currency_sums(batch).items():
                before = totals.get(currency, (0, 0))
                totals[currency] = (before[0] + rows, before[1] + minor)
            offset = 0
            while offset < batch.num_rows:
                if writer is None:
                    writer = next_file()
                room = FILE_ROWS - writer.rows_written - writer.pending_rows
                piece = batch.slice(offset, room)
                writer.write(transaction_rows(piece, job_id))
                offset += piece.num_rows
                if writer.rows_written + writer.pending_rows >= FILE_ROWS:
                    done, writer = writer, None
                    close_file(done)
        if writer is not None:
            done, writer = writer, None
            close_file(done)
    finally:
        if writer is not None:  # after an error: the file is closed, not handed on
            writer.close()
    pa.default_memory_pool().release_unused()  # the transactions' buffers, before the totals' texts
    if partial:
        run = aggregator.write_partial(os.path.join(directory, "daily_partial.arrow"))
        return DateOutput(
            files=files, daily_path=run.path, daily_rows=_run_rows(run.path), totals=totals, firsts=run.firsts
        )
    daily_path = os.path.join(directory, "daily_totals.parquet")
    daily_rows = write_daily(aggregator.groups(), job_id=job_id, booking_date=booking_date, path=daily_path)
    return DateOutput(files=files, daily_path=daily_path, daily_rows=daily_rows, totals=totals)


def write_daily(groups: Iterator[pa.Table], *, job_id: str, booking_date: str, path: str) -> int:
    """Sorted, summed groups as the date's daily totals Parquet; its rows. The bytes depend only on
    the groups, not on how they were cut into ranges."""
    daily_rows = 0
    with pq.ParquetWriter(path, DAILY_TOTALS_SCHEMA, **PARQUET_OPTIONS) as daily:
        for table in daily_tables(groups, job_id, date.fromisoformat(booking_date), rows=DAILY_ROW_GROUP_ROWS):
            daily.write_table(table, row_group_size=DAILY_ROW_GROUP_ROWS)
            daily_rows += table.num_rows
    return daily_rows


def _run_rows(path: str) -> int:
    with pa.OSFile(path, "rb") as source:
        reader = pa.ipc.open_file(source)
        return sum(reader.get_batch(n).num_rows for n in range(reader.num_record_batches))


def merge_partials(
    runs: list[tuple[str, list[str]]], *, job_id: str, booking_date: str, path: str
) -> tuple[int, dict[str, tuple[int, int]]]:
    """The daily totals of a date written as several items: the items' partial runs (path, batch-first
    accounts) summed exactly, one range of accounts at a time (memory about MERGE_ROWS groups, as
    for one item's own runs), into the bytes one item writes. Returns the rows written and, per
    currency, the rows and unsigned minor units the totals hold (for the date's reconciliation)."""
    checked: dict[str, tuple[int, int]] = {}

    def counted(ranges: Iterator[pa.Table]) -> Iterator[pa.Table]:
        for groups in ranges:
            for currency, rows, minor in _currency_minor(groups):
                before = checked.get(currency, (0, 0))
                checked[currency] = (before[0] + rows, before[1] + minor)
            yield groups

    ranges = _merge_runs([_Run(run_path, firsts) for run_path, firsts in runs]) if runs else iter(())
    rows = write_daily(counted(ranges), job_id=job_id, booking_date=booking_date, path=path)
    return rows, checked


def _currency_minor(groups: pa.Table) -> Iterator[tuple[str, int, int]]:
    """Per currency of summed groups: rows and debit + credit minor units (Python integers: exact)."""
    for currency in pc.unique(groups.column("currency")).to_pylist():
        mine = groups.filter(pc.equal(groups.column("currency"), currency))
        halves = {name: int(pc.sum(mine.column(name)).as_py() or 0) for name in _SUM_COLUMNS}
        minor = (halves["debit_high"] + halves["credit_high"]) * SPLIT + halves["debit_low"] + halves["credit_low"]
        yield currency, halves["rows"], minor


def transaction_rows(normalised: pa.Table, job_id: str) -> pa.Table:
    """Normalised rows as the published transactions (TRANSACTION_SCHEMA: the job's id first)."""
    columns = {"job_id": constant_strings(job_id, normalised.num_rows)}
    columns.update((name, normalised.column(name)) for name in TRANSACTION_SCHEMA.names[1:])
    return pa.table(columns, schema=TRANSACTION_SCHEMA)


def _part_batches(parts: list[str]):
    """The rows of the parts in order, as tables of about PART_BATCH_ROWS rows."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for path in parts:
        with pa.OSFile(path, "rb") as source:
            reader = pa.ipc.open_file(source)
            for number in range(reader.num_record_batches):
                batch = reader.get_batch(number)
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows >= PART_BATCH_ROWS:
                    yield pa.Table.from_batches(pending).combine_chunks()
                    pending, pending_rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending).combine_chunks()


def sum_by_currency(path: str) -> tuple[int, dict[str, int], dict[str, int]]:
    """Rows, rows per currency and unsigned amount sums in minor units, read back from a file."""
    rows_by_currency: dict[str, int] = {}
    minor_by_currency: dict[str, int] = {}
    total = 0
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(columns=["currency", "amount"], batch_size=65_536):
        # The amounts' unscaled integers are units of 10**-4; a currency's minor units divide them exactly.
        table = pa.table({"currency": batch.column(0), "units": batch.column(1).view(MINOR_TYPE)})
        grouped = table.group_by("currency", use_threads=False).aggregate([("units", "sum"), ("units", "count")])
        for currency, units, count in zip(*(c.to_pylist() for c in grouped.columns), strict=True):
            minor, rest = divmod(int(units), 10 ** (schema.AMOUNT_SCALE - CURRENCY_EXPONENTS[currency]))
            if rest:
                raise ValueError(f"{path}: {currency} amounts finer than its minor units")
            rows_by_currency[currency] = rows_by_currency.get(currency, 0) + count
            minor_by_currency[currency] = minor_by_currency.get(currency, 0) + minor
        total += batch.num_rows
    return total, rows_by_currency, minor_by_currency
