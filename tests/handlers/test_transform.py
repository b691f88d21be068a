"""Transform: vectorized normalisation, partitions and daily totals against the per-row reference."""

import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq

from handlers.logic import curated
from handlers.logic.amounts import format_minor_units
from handlers.logic.contract import CURRENCY_EXPONENTS
from handlers.logic.normalize import normalize_batch, normalize_staged_row
from handlers.logic.validation import STAGING_COLUMNS, StagingWriter
from handlers.transform import transform_staging
from tests.handlers.conftest import csv_text, get_job, good_row, put_incoming, read_object, run_chain

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


def _staging_bytes(rows) -> bytes:
    out = io.StringIO(newline="")
    writer = StagingWriter(out)
    writer.writerow(STAGING_COLUMNS)
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


def test_normalize_batch_matches_per_row_reference():
    rows = _staging_rows(3000)
    batch = pa.table({name: [r[i] for r in rows] for i, name in enumerate(STAGING_COLUMNS)})
    table = normalize_batch(batch).to_pylist()
    for got, row in zip(table, rows, strict=True):
        want = normalize_staged_row(list(row))
        assert got["source_line"] == want.source_line
        assert got["booked_at"] == want.booked_at, row
        assert got["booking_date"] == want.booking_date, row
        assert got["amount"] == want.amount, row
        assert got["signed_amount"] == want.signed_amount, row
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
    assert table.column("amount").to_pylist() == ["0.00", "999999999999999.9999", "0"]
    assert table.column("signed_amount").to_pylist() == ["0.00", "-999999999999999.9999", "0"]


def _reference(rows):
    files, daily, totals = {}, {}, {}
    for row in rows:
        n = normalize_staged_row(list(row))
        files.setdefault(n.booking_date.isoformat(), []).append(n)
        bucket = daily.setdefault((n.booking_date, n.account_id, n.currency), [0, 0, 0])
        bucket[0] += 1
        bucket[1 if n.signed_minor_units < 0 else 2] += abs(n.signed_minor_units)
        totals[n.currency] = totals.get(n.currency, 0) + abs(n.signed_minor_units)
    daily_rows = []
    for (day, account, currency), (count, debit, credit) in sorted(daily.items()):
        e = CURRENCY_EXPONENTS[currency]
        daily_rows.append(
            {
                "booking_date": day,
                "account_id": account,
                "currency": currency,
                "row_count": count,
                "debit_total": format_minor_units(minor_units=debit, exponent=e),
                "credit_total": format_minor_units(minor_units=credit, exponent=e),
                "net_total": format_minor_units(minor_units=credit - debit, exponent=e),
            }
        )
    return files, daily_rows, totals


def _run(tmp_path, name, data, **kwargs):
    directory = tmp_path / name
    directory.mkdir()
    return transform_staging(source=io.BytesIO(data), job_id="j1", directory=str(directory), **kwargs)


def test_partitions_and_daily_totals_match_reference_whatever_the_batching(tmp_path, monkeypatch):
    rows = _staging_rows(5000, days=3)
    data = _staging_bytes(rows)
    files, daily_rows, totals = _reference(rows)

    big = _run(tmp_path, "big", data)
    # tiny CSV blocks and many spill flushes: the very same bytes (idempotent outputs)
    monkeypatch.setattr(curated, "SPILL_ROWS", 700)
    split = _run(tmp_path, "split", data, block_size=4096)
    # small row groups and partial aggregates merged: the same rows
    monkeypatch.setattr(curated, "ROW_GROUP_ROWS", 300)
    monkeypatch.setattr(curated, "AGGREGATE_ROWS", 250)
    small = _run(tmp_path, "small", data, block_size=4096)

    assert sorted(big.files) == sorted(files)
    for day, expected in files.items():
        table = pq.read_table(big.files[day][0])
        assert table.schema == curated.TRANSACTION_SCHEMA
        assert big.files[day][1] == len(expected) == table.num_rows
        assert table.column("source_line").to_pylist() == [n.source_line for n in expected]  # source order
        assert table.column("signed_amount").to_pylist() == [n.signed_amount for n in expected]
        assert table.column("description").to_pylist() == [n.description for n in expected]
        assert set(table.column("job_id").to_pylist()) == {"j1"}
    assert pq.read_table(big.daily_path).to_pylist() == daily_rows
    assert big.daily_rows == len(daily_rows)
    assert big.totals.minor_units == totals

    def contents(result):
        paths = [path for path, _ in result.files.values()] + [result.daily_path]
        return [(tmp_path / path).read_bytes() for path in paths]

    assert contents(split) == contents(big)
    assert pq.read_table(small.daily_path).to_pylist() == daily_rows
    for day, (path, _) in small.files.items():
        assert pq.read_table(path).equals(pq.read_table(big.files[day][0]))
    assert pq.ParquetFile(small.files[min(files)][0]).metadata.num_row_groups > 1


def test_empty_staging_writes_no_partitions(tmp_path):
    result = _run(tmp_path, "empty", _staging_bytes([]))
    assert result.files == {} and result.daily_rows == 0 and result.totals.amounts() == {}
    assert pq.read_table(result.daily_path).num_rows == 0


def test_line_breaks_and_carriage_returns_in_descriptions_survive_the_chain(aws, tmp_path):
    text = 'a "quoted", \r\n multi\rline\ntext'
    body = csv_text(good_row(1), good_row(2).replace(",row 2", ',"' + text.replace('"', '""') + '"'), good_row(3))
    outputs = run_chain(put_incoming(aws, job_id="cr", body=body))
    assert outputs[-1]["status"] == "LOADED" and get_job("cr")["counts"]["loaded"] == 3
    manifest = json.loads(read_object(aws, "manifests/cr.json"))
    local = tmp_path / "cr.parquet"
    local.write_bytes(read_object(aws, manifest["files"][0]["key"]))
    assert pq.read_table(local).column("description").to_pylist() == ["row 1", text, "row 3"]
