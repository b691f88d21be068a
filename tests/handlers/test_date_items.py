"""One booking date written by several transform items (TRANSFORM_ITEM_ROWS): the same rows, files'
contents and daily totals as one item; a failed item is retried alone, and the date's daily totals
are merged once every item is written."""

from __future__ import annotations

import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from handlers import load, transform
from handlers.config import get_settings
from handlers.errors import ReconciliationError
from handlers.logic import curated
from handlers.logic.chunkwork import _ValidRows
from handlers.logic.recorder import staging_table
from lake import layout
from tests.handlers.conftest import (
    WORK_BUCKET,
    csv_text,
    get_job,
    invoke,
    map_items,
    put_incoming,
    read_object,
    run_job,
)

DAY = "2024-03-01"
CURRENCIES = {"USD": "2", "JPY": "0", "KWD": "3", "EUR": "2"}


def _rows(count: int, *, seed: int = 7) -> list[str]:
    """Rows all booked on one date, over a few accounts (repeated groups) and many (distinct ones)."""
    rng = random.Random(seed)  # noqa: S311 - test data
    rows = []
    for n in range(count):
        currency = rng.choice(sorted(CURRENCIES))
        digits = int(CURRENCIES[currency])
        amount = f"{rng.randrange(10**7)}" + (f".{rng.randrange(10**digits):0{digits}d}" if digits else "")
        account = rng.choice([f"ACC{rng.randrange(5)}", f"X{n:05d}"])
        direction = rng.choice(["DEBIT", "CREDIT"])
        rows.append(f"T{n:05d},{account},{DAY}T{n % 24:02d}:00:00Z,{amount},{currency},{direction},row {n}")
    return rows


def _settings(monkeypatch, **values: int) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, str(value))
    get_settings.cache_clear()


def _table(s3, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(read_object(s3, key)))


def _published(s3, job_id: str) -> tuple[pa.Table, list[pa.Table], list[dict], dict]:
    """The job's transactions files in the manifest's order, without the job's id, and its daily totals."""
    manifest = json.loads(read_object(s3, layout.manifest_key(job_id)))
    files = [_table(s3, entry["key"]).drop_columns(["job_id"]) for entry in manifest["files"]]
    daily = [_table(s3, entry["key"]).drop_columns(["job_id"]).to_pylist() for entry in manifest["dailyTotals"]]
    return pa.concat_tables(files), files, daily, manifest


def _items(s3, job_id: str) -> list[dict]:
    plan_id = get_job(job_id)["plan"]["planId"]
    return map_items(s3, layout.dates_key(job_id, plan_id))


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 2 KiB (about 30 rows) and Parquet files of 40 rows: a file of a few hundred rows
    is many chunks and files."""
    _settings(monkeypatch, CHUNK_BYTES=2048)
    monkeypatch.setattr(curated, "ROW_GROUP_ROWS", 20)
    monkeypatch.setattr(curated, "FILE_ROWS", 40)


def test_a_date_split_into_items_loads_what_one_item_loads(aws, monkeypatch, small_chunks):
    rows = _rows(400)
    _settings(monkeypatch, TRANSFORM_ITEM_ROWS=10**6)
    whole = run_job(put_incoming(aws, job_id="whole", body=csv_text(*rows)))
    # The same records with other line ends: the same rows, a file of other bytes (not a re-send).
    _settings(monkeypatch, TRANSFORM_ITEM_ROWS=90)
    split = run_job(put_incoming(aws, job_id="split", body=csv_text(*rows).replace("\r\n", "\n")))
    assert whole[-1]["status"] == split[-1]["status"] == "LOADED"

    (one,) = _items(aws, "whole")
    assert [entry["bookingDate"] for entry in one["dates"]] == [DAY] and "items" not in one["dates"][0]
    items = _items(aws, "split")
    assert len(items) >= 4 and all(item["rows"] <= 90 for item in items)
    assert [item["dates"][0]["item"] for item in items] == list(range(len(items)))
    chunks = [chunk for item in items for chunk in item["dates"][0]["chunks"]]
    assert chunks == sorted(chunks) == list(range(len(chunks)))  # runs of consecutive chunks, in order

    rows_whole, _, daily_whole, manifest_whole = _published(aws, "whole")
    rows_split, files_split, daily_split, manifest_split = _published(aws, "split")
    assert rows_split.equals(rows_whole)  # every row, every column, in source order
    assert rows_split.column("source_line").to_pylist() == list(range(2, 402))
    assert len(files_split) > len(items)  # each item writes files of its own...
    keys = [entry["key"] for entry in manifest_split["files"]]
    assert keys == sorted(keys)  # ...numbered across the items in source order
    assert daily_split == daily_whole and len(daily_split) == 1  # one file, one row per account and currency
    accounts = [(row["account_id"], row["currency"]) for row in daily_split[0]]
    assert accounts == sorted(set(accounts))
    for field in ("rows", "totals", "rowsByCurrency", "reconciliation"):
        assert manifest_split[field] == manifest_whole[field]


def test_a_failed_item_is_retried_alone_and_the_last_item_merges_the_date(aws, monkeypatch, small_chunks):
    rows = _rows(300)
    _settings(monkeypatch, TRANSFORM_ITEM_ROWS=90)
    written = []
    write_date = transform.write_date

    def flaky(**kwargs):
        written.append(kwargs["parts"])
        if len(written) == 2:  # the second item, the first time
            raise OSError("disk gone")
        return write_date(**kwargs)

    monkeypatch.setattr(transform, "write_date", flaky)
    with pytest.raises(OSError, match="disk gone"):
        run_job(put_incoming(aws, job_id="retry", body=csv_text(*rows)))
    plan_id = get_job("retry")["plan"]["planId"]
    ids = {"jobId": "retry", "runId": get_job("retry")["runId"], "planId": plan_id}
    items = map_items(aws, layout.dates_key("retry", plan_id))
    assert len(items) >= 3
    # run_job stopped at the failure: the Map runs the other items all the same.
    for item in items[2:]:
        assert invoke(transform, {**ids, "item": item})["rows"] == item["rows"]
    daily_index = layout.curated_daily_index_key("retry", DAY)
    assert aws.list_objects_v2(Bucket=WORK_BUCKET, Prefix=daily_index)["KeyCount"] == 0  # an item is missing
    with pytest.raises(ReconciliationError, match="item 1 has no index"):
        invoke(load, ids)

    before = len(written)
    assert invoke(transform, {**ids, "item": items[1]})["rows"] == items[1]["rows"]  # the retry, alone
    assert len(written) == before + 1  # only its own chunks written again
    merged = json.loads(read_object(aws, daily_index))
    assert merged["items"] == len(items) and merged["runId"] == ids["runId"]
    again = invoke(transform, {**ids, "item": items[0]})  # a repeated item: nothing written again
    assert again["rows"] == items[0]["rows"] and len(written) == before + 1
    assert invoke(load, ids)["status"] == "LOADED"
    assert get_job("retry")["counts"]["loaded"] == 300
    published, _, daily, _ = _published(aws, "retry")
    assert published.column("source_line").to_pylist() == list(range(2, 302))
    assert sum(row["row_count"] for row in daily[0]) == 300


def test_a_date_whose_items_do_not_add_up_is_not_loaded(aws, monkeypatch, small_chunks):
    _settings(monkeypatch, TRANSFORM_ITEM_ROWS=90)
    outputs = run_job(put_incoming(aws, job_id="short", body=csv_text(*_rows(200))))
    assert outputs[-1]["status"] == "LOADED"
    ids = {"jobId": "short", "runId": get_job("short")["runId"], "planId": get_job("short")["plan"]["planId"]}
    key = layout.curated_index_key("short", DAY, 1)
    index = json.loads(read_object(aws, key))
    index["totals"] = {currency: [rows - 1, minor] for currency, (rows, minor) in index["totals"].items()}
    aws.put_object(Bucket=WORK_BUCKET, Key=key, Body=json.dumps(index).encode())
    with pytest.raises(ReconciliationError, match=f"booking date {DAY} does not reconcile"):
        load._dates_read(job=get_job("short"), plan_id=ids["planId"], work=WORK_BUCKET, items=_items(aws, "short"))


def test_partial_daily_totals_merged_are_the_bytes_of_one_item(tmp_path, monkeypatch):
    """Items' partial runs (each spilled to sorted runs of its own) merged: the daily totals file of
    one item, byte for byte, and the per-currency sums validation counts."""
    monkeypatch.setattr(curated, "AGGREGATE_ROWS", 50)
    monkeypatch.setattr(curated, "MERGE_ROWS", 40)
    monkeypatch.setattr(curated, "RUN_BATCH_ROWS", 7)
    monkeypatch.setattr(curated, "DAILY_ROW_GROUP_ROWS", 30)
    parts = []
    for number, start in enumerate(range(0, 600, 150)):
        directory = tmp_path / f"chunk{number}"
        directory.mkdir()
        staged = [
            (n + 2, *line.split(",")[:7], "")
            for n, line in enumerate(_rows(600, seed=3)[start : start + 150], start=start)
        ]
        valid = _ValidRows(str(directory / "valid.spill"))
        valid.add(staging_table(staged))
        try:
            parts.append(curated.write_date_parts(valid.finish(), str(directory))[DAY][0])
        finally:
            valid.spill.close()
    whole_dir, merge_dir = tmp_path / "whole", tmp_path / "merge"
    whole_dir.mkdir()
    merge_dir.mkdir()
    whole = curated.write_date(parts=parts, job_id="j1", booking_date=DAY, directory=str(whole_dir))
    runs = []
    for number, item_parts in enumerate((parts[:1], parts[1:3], parts[3:])):
        directory = tmp_path / f"item{number}"
        directory.mkdir()
        out = curated.write_date(
            parts=item_parts, job_id="j1", booking_date=DAY, directory=str(directory), partial=True
        )
        runs.append((out.daily_path, out.firsts))
    rows, checked = curated.merge_partials(
        runs, job_id="j1", booking_date=DAY, path=str(merge_dir / "daily_totals.parquet")
    )
    assert (merge_dir / "daily_totals.parquet").read_bytes() == (whole_dir / "daily_totals.parquet").read_bytes()
    assert rows == whole.daily_rows and checked == whole.totals
