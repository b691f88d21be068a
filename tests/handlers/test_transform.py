"""Transform: vectorized normalisation, partitions and daily totals against the per-row reference."""

import json
import os
import random
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from handlers.logic import curated
from handlers.logic.amounts import format_minor_units
from handlers.logic.chunkwork import _ValidRows
from handlers.logic.contract import CURRENCY_EXPONENTS
from handlers.logic.normalize import normalize_batch
from handlers.logic.recorder import STAGING_COLUMNS, staging_table
from lake.layout import manifest_key
from tests.handlers.conftest import csv_text, get_job, good_row, put_incoming, read_object, run_chain
from tests.handlers.reference import normalize_staged_row

CURRENCIES = ["JPY", "USD", "KWD", "CLF", "EUR", "BHD"]
OFFSETS = ["Z", "+00:00", "-00:00", "+05:30", "-02:00", "+14:00", "-12:00", "+23:59"]


def _amount(rng: random.Random, exponent: int) -> str:
    integer = rng.choice(["0", "000", "7", "007", "999999999999999", str(rng.randrange(10**6))])
    digits = rng.randrange(exponent + 1)
    return integer + ("." + "".join(rng.choice("0123456789") for _ in range(digits)) if digits else "")


def _staging_rows(count: int, *, seed: int = 3, days: int = 4) -> list[tuple]:
    rng = random.Random(seed)  # noqa: S311 - test data
    rows = []
    for n in range(count):
        currency = rng.choice(CURRENCIES)
        fraction = rng.choice(["", "." + "5", "." + "123456", "." + "000001"])
        booked_at = (
            f"2024-02-{28 + rng.randrange(days):02d}".replace("-30", "-29").replace("-31", "-29")
            + f"T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}{fraction}"
            + rng.choice(OFFSETS)
        )
        rows.append(
            (
                str(n + 2),
                f"T{n}",
                rng.choice(["ACC1", "ACC2", "ACC3"]),
                booked_at,
                _amount(rng, CURRENCY_EXPONENTS[currency]),
                currency,
                rng.choice(["DEBIT", "CREDIT"]),
                rng.choice(["", "plain", 'with "quotes", commas', "line\nbreak", "carriage\rreturn", "é ✓"]),
                rng.choice(["", '{"x":"1"}']),
            )
        )
    return rows


def currency_text(amount: Decimal, minor_units: int) -> str:
    """A published amount (DECIMAL(38, 4)) as the contract's text at its currency's minor units,
    which it must hold exactly (nothing finer)."""
    quantized = amount.quantize(Decimal(1).scaleb(-minor_units))
    assert quantized == amount, f"{amount} is finer than {minor_units} minor units"
    return f"{quantized:f}"


def test_normalize_batch_matches_per_row_reference():
    rows = _staging_rows(3000)
    batch = pa.table({name: [r[i] for r in rows] for i, name in enumerate(STAGING_COLUMNS)})
    table = normalize_batch(batch).to_pylist()
    for got, row in zip(table, rows, strict=True):
        want = normalize_staged_row(list(row))
        assert got["source_line"] == want.source_line
        assert got["booked_at"] == want.booked_at, row
        assert got["booking_date"] == want.booking_date, row
        assert currency_text(got["amount"], got["minor_units"]) == want.amount, row
        assert currency_text(got["signed_amount"], got["minor_units"]) == want.signed_amount, row
        assert int(got["signed_minor"]) == want.signed_minor_units
        assert got["minor_units"] == want.minor_units
        assert (got["transaction_id"], got["description"], got["extra"]) == (
            want.transaction_id,
            want.description,
            want.extra,
        )


def test_zero_debit_is_not_negative_and_large_amounts_stay_exact():
    batch = pa.table(
        {
            name: values
            for name, values in zip(
                STAGING_COLUMNS,
                [
                    ["2", "3", "4"],
                    ["a", "b", "c"],
                    ["A", "A", "A"],
                    ["2024-01-01T00:00:00Z"] * 3,
                    ["0.00", "999999999999999.9999", "000"],
                    ["USD", "CLF", "JPY"],
                    ["DEBIT", "DEBIT", "CREDIT"],
                    ["", "", ""],
                    ["", "", ""],
                ],
                strict=True,
            )
        }
    )
    table = normalize_batch(batch)
    assert table.schema.field("amount").type == pa.decimal128(38, 4)
    amounts = table.column("amount").to_pylist()
    signed = table.column("signed_amount").to_pylist()
    assert amounts == [Decimal("0"), Decimal("999999999999999.9999"), Decimal("0")]
    assert signed == [Decimal("0"), Decimal("-999999999999999.9999"), Decimal("0")]
    assert [str(d) for d in signed] == ["0.0000", "-999999999999999.9999", "0.0000"]  # no "-0"


def _reference(rows):
    files, daily, totals = {}, {}, {}
    for row in rows:
        n = normalize_staged_row(list(row))
        files.setdefault(n.booking_date.isoformat(), []).append(n)
        bucket = daily.setdefault((n.booking_date, n.account_id, n.currency), [0, 0, 0])
        bucket[0] += 1
        bucket[1 if n.signed_minor_units < 0 else 2] += abs(n.signed_minor_units)
        totals[n.currency] = totals.get(n.currency, 0) + abs(n.signed_minor_units)
    daily_rows = {}
    for (day, account, currency), (count, debit, credit) in sorted(daily.items()):
        e = CURRENCY_EXPONENTS[currency]
        daily_rows.setdefault(day.isoformat(), []).append(
            {
                "job_id": "j1",
                "account_id": account,
                "currency": currency,
                "row_count": count,
                "debit_total": Decimal(format_minor_units(minor_units=debit, exponent=e)),
                "credit_total": Decimal(format_minor_units(minor_units=credit, exponent=e)),
                "net_total": Decimal(format_minor_units(minor_units=credit - debit, exponent=e)),
                "booking_date": day,
            }
        )
    return files, daily_rows, totals


def _chunk_parts(rows, directory):
    """One chunk's staging parts: its valid rows normalised and split by booking date."""
    directory.mkdir()
    valid = _ValidRows(str(directory / "valid.spill"))
    for start in range(0, len(rows), 1000):
        valid.add(staging_table([(int(r[0]), *r[1:]) for r in rows[start : start + 1000]]))
    try:
        return curated.write_date_parts(valid.finish(), str(directory))
    finally:
        valid.spill.close()


def _transform(tmp_path, name, rows, *, chunks: int):
    """The rows cut into ``chunks`` chunks, then each date written from their parts."""
    size = -(-len(rows) // chunks)
    parts = [_chunk_parts(rows[i : i + size], tmp_path / f"{name}-chunk{i}") for i in range(0, len(rows), size)]
    outputs = {}
    for day in sorted({day for chunk in parts for day in chunk}):
        directory = tmp_path / f"{name}-{day}"
        directory.mkdir()
        paths = [chunk[day][0] for chunk in parts if day in chunk]
        outputs[day] = curated.write_date(parts=paths, job_id="j1", booking_date=day, directory=str(directory))
    return outputs


def test_dates_and_daily_totals_match_the_reference_whatever_the_chunking(tmp_path, monkeypatch):
    rows = _staging_rows(5000, days=3)
    files, daily_rows, totals = _reference(rows)

    whole = _transform(tmp_path, "whole", rows, chunks=1)
    # many chunks and many spill flushes: the very same bytes (idempotent outputs)
    monkeypatch.setattr(curated, "SPILL_ROWS", 700)
    split = _transform(tmp_path, "split", rows, chunks=7)
    # small row groups, several files per date, partial aggregates merged: the same rows
    monkeypatch.setattr(curated, "ROW_GROUP_ROWS", 300)
    monkeypatch.setattr(curated, "FILE_ROWS", 900)
    monkeypatch.setattr(curated, "AGGREGATE_ROWS", 250)
    monkeypatch.setattr(curated, "DAILY_ROW_GROUP_ROWS", 5)  # daily totals written in several slices
    small = _transform(tmp_path, "small", rows, chunks=3)

    assert sorted(whole) == sorted(files)
    found = {currency: 0 for currency in totals}
    for day, expected in files.items():
        table = pq.read_table(whole[day].files[0][0])
        assert len(whole[day].files) == 1 and table.schema == curated.TRANSACTION_SCHEMA
        assert whole[day].files[0][1] == len(expected) == table.num_rows
        assert table.column("source_line").to_pylist() == [n.source_line for n in expected]  # source order
        published = zip(table.column("signed_amount").to_pylist(), table.column("minor_units").to_pylist(), strict=True)
        assert [currency_text(amount, units) for amount, units in published] == [n.signed_amount for n in expected]
        assert table.column("description").to_pylist() == [n.description for n in expected]
        assert set(table.column("job_id").to_pylist()) == {"j1"}
        assert pq.read_table(whole[day].daily_path).to_pylist() == daily_rows[day]
        for currency, (_, minor) in whole[day].totals.items():
            found[currency] += minor
    assert found == totals

    def contents(outputs):
        return [(tmp_path / path).read_bytes() for out in outputs.values() for path, _ in out.files]

    assert contents(split) == contents(whole)
    for day, out in small.items():
        assert len(out.files) > 1 or out.files[0][1] <= 900
        rows_read = pa.concat_tables([pq.read_table(path) for path, _ in out.files])
        assert rows_read.equals(pq.read_table(whole[day].files[0][0]))
        assert pq.read_table(out.daily_path).to_pylist() == daily_rows[day]


def test_line_breaks_and_carriage_returns_in_descriptions_survive_the_chain(aws, tmp_path):
    text = 'a "quoted", \r\n multi\rline\ntext'
    body = csv_text(good_row(1), good_row(2).replace(",row 2", ',"' + text.replace('"', '""') + '"'), good_row(3))
    outputs = run_chain(put_incoming(aws, job_id="cr", body=body))
    assert outputs[-1]["status"] == "LOADED" and get_job("cr")["counts"]["loaded"] == 3
    manifest = json.loads(read_object(aws, manifest_key("cr")))
    local = tmp_path / "cr.parquet"
    local.write_bytes(read_object(aws, manifest["files"][0]["key"]))
    assert pq.read_table(local).column("description").to_pylist() == ["row 1", text, "row 3"]


def test_daily_totals_refuse_a_group_too_large_to_sum_exactly(monkeypatch):
    """int64 halves sum exactly up to MAX_GROUP_ROWS rows a group; beyond, an error, never a wrap."""
    monkeypatch.setattr(curated, "MAX_GROUP_ROWS", 2)
    batch = normalize_batch(
        staging_table([(n, f"T{n}", "ACC1", "2024-01-01T00:00:00Z", "9.99", "USD", "DEBIT", "", "") for n in range(3)])
    )
    aggregator = curated.DailyAggregator()
    aggregator.add(batch)
    with pytest.raises(OverflowError, match="rows of one account and currency"):
        list(aggregator.results("j1", date(2024, 3, 1), rows=10))


def test_each_transactions_file_is_handed_on_complete_before_the_next_is_written(tmp_path, monkeypatch):
    """transform uploads and deletes each file as it is done: /tmp never holds a date's files at once."""
    monkeypatch.setattr(curated, "ROW_GROUP_ROWS", 300)
    monkeypatch.setattr(curated, "FILE_ROWS", 900)
    parts = _chunk_parts(_staging_rows(6000, days=1), tmp_path / "chunk")
    day = max(parts, key=lambda d: parts[d][1])
    part, count, _ = parts[day]
    expected = [900] * (count // 900) + ([count % 900] if count % 900 else [])
    assert len(expected) > 2
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    handed: list[tuple[int, list[str]]] = []

    def on_file(path: str, rows_in_file: int) -> None:
        assert pq.read_table(path).num_rows == rows_in_file  # complete and closed
        handed.append((rows_in_file, sorted(p.name for p in out_dir.glob("part-*.parquet"))))
        os.remove(path)

    output = curated.write_date(parts=[part], job_id="j1", booking_date=day, directory=str(out_dir), on_file=on_file)
    assert [rows_in_file for rows_in_file, _ in handed] == expected
    assert [names for _, names in handed] == [[f"part-{n:05d}.parquet"] for n in range(len(expected))]  # one at a time
    assert [rows_in_file for _, rows_in_file in output.files] == expected


def test_a_date_of_several_files_is_loaded_whole_through_the_chain(aws, monkeypatch):
    monkeypatch.setattr(curated, "ROW_GROUP_ROWS", 2)
    monkeypatch.setattr(curated, "FILE_ROWS", 4)
    body = csv_text(*(good_row(n) for n in range(1, 11)))
    outputs = run_chain(put_incoming(aws, job_id="many", body=body))
    assert outputs[-1]["status"] == "LOADED" and get_job("many")["counts"]["loaded"] == 10
    manifest = json.loads(read_object(aws, manifest_key("many")))
    assert [f["rows"] for f in manifest["files"]] == [4, 4, 2]


@settings(max_examples=40, deadline=None)
@example(accounts=60, rows=900, seed=1)
@given(
    accounts=st.integers(min_value=1, max_value=60),
    rows=st.integers(min_value=1, max_value=900),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_daily_totals_spilled_to_sorted_runs_equal_those_summed_in_memory(tmp_path_factory, accounts, rows, seed):
    """A date with more accounts than MERGE_ROWS: runs on disk merged a range of accounts at a time
    (ranges cut between the currencies of one account too) give the in-memory result, row groups and all."""
    rng = random.Random(seed)  # noqa: S311 - test data
    names = [f"A{rng.randrange(10**6):06d}" for _ in range(accounts)]
    staged = [
        (
            n,
            f"T{n}",
            rng.choice(names),
            "2024-01-01T00:00:00Z",
            _amount(rng, 2),
            rng.choice(["USD", "EUR", "GBP"]),
            rng.choice(["DEBIT", "CREDIT"]),
            "",
            "",
        )
        for n in range(rows)
    ]
    batches = [normalize_batch(staging_table(staged[i : i + 37])) for i in range(0, rows, 37)]
    directory = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(curated, "AGGREGATE_ROWS", 20)
        patch.setattr(curated, "MERGE_ROWS", 16)
        patch.setattr(curated, "RUN_BATCH_ROWS", 3)
        in_memory, spilled = curated.DailyAggregator(), curated.DailyAggregator(str(directory))
        for batch in batches:
            in_memory.add(batch)
            spilled.add(batch)
        if len({(row[2], row[5]) for row in staged}) > 4 * curated.MERGE_ROWS:
            assert list(directory.iterdir())  # sorted runs were written
        expected = [t.to_pylist() for t in in_memory.results("j1", date(2024, 3, 1), rows=7)]
        got = [t.to_pylist() for t in spilled.results("j1", date(2024, 3, 1), rows=7)]
    assert got == expected
    assert list(directory.iterdir()) == []  # the runs are removed
