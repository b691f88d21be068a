"""Transform an item of the last Distributed Map: a run of booking dates, or a run of one large
date's chunks. Each date's (or run's) valid rows from its chunks, in line order, as the Parquet files
load publishes, and the daily totals.

The rows and per-currency totals read must be those the chunks reported, and the files written
are read back and summed again before their index (written last: the item's marker) says so.
A date of several items: each item leaves its daily totals as a partial run of exact sums, and the
item that finds every other item's index written merges them into the date's daily totals
(``merge_date``): the last to finish, or more than one, which write the same bytes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import objects
from handlers.errors import ReconciliationError
from handlers.logic.curated import merge_partials, sum_by_currency, write_date
from handlers.logic.totals import CurrencyTotals
from handlers.observability import logger
from lake import layout

PARQUET = "application/vnd.apache.parquet"
ARROW = "application/vnd.apache.arrow.file"


@jobflow.task("transform", statuses=(jobflow.VALIDATED,))
def lambda_handler(job: dict, event: dict, settings: Settings) -> dict:
    results = [
        transform_date(job=job, plan_id=event["planId"], item=date, settings=settings)
        for date in event["item"]["dates"]
    ]
    return {"dates": len(results), "rows": sum(r["rows"] for r in results), "reused": all(r["reused"] for r in results)}


def transform_date(*, job: dict, plan_id: str, item: dict, settings: Settings) -> dict:
    job_id, bucket = job["jobId"], settings.work_bucket
    booking_date = item["bookingDate"]
    number, items = int(item.get("item", 0)), int(item.get("items", 1))
    index_key = layout.curated_index_key(job_id, booking_date, number)
    done = objects.get_json_or_none(bucket=bucket, key=index_key)
    if _this_run(done, job, plan_id):
        logger.info(
            "booking date already transformed for this run", extra={"bookingDate": booking_date, "item": number}
        )
        rows, reused = done["rows"], True
    else:
        rows, reused = _write_item(job=job, plan_id=plan_id, item=item, settings=settings), False
    if items > 1:
        merge_date(job=job, plan_id=plan_id, item=item, settings=settings)
    return {"bookingDate": booking_date, "item": number, "rows": rows, "reused": reused}


def _this_run(index: dict | None, job: dict, plan_id: str) -> bool:
    return index is not None and index.get("planId") == plan_id and index.get("runId") == job["runId"]


def _write_item(*, job: dict, plan_id: str, item: dict, settings: Settings) -> int:
    job_id, bucket = job["jobId"], settings.work_bucket
    booking_date = item["bookingDate"]
    number, partial = int(item.get("item", 0)), int(item.get("items", 1)) > 1
    expected = CurrencyTotals.from_dict(item["totals"])
    written = CurrencyTotals()
    files: list[dict] = []

    def upload(path: str, rows: int) -> None:
        """Summed again from the file, then uploaded and deleted: /tmp holds one file at a time."""
        _, rows_by_currency, minor_by_currency = sum_by_currency(path)
        for currency, count in rows_by_currency.items():
            written.add(currency=currency, rows=count, minor_units=minor_by_currency[currency])
        key = layout.curated_rows_key(job_id, booking_date, len(files), number)
        files.append({**objects.put_file(bucket=bucket, key=key, path=path, content_type=PARQUET), "rows": rows})
        os.remove(path)

    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:
        parts = _parts(bucket=bucket, job_id=job_id, plan_id=plan_id, item=item, directory=work)
        output = write_date(
            parts=parts, job_id=job_id, booking_date=booking_date, directory=work, on_file=upload, partial=partial
        )
        read = CurrencyTotals.from_dict({c: [rows, str(minor)] for c, (rows, minor) in output.totals.items()})
        # Files already uploaded stay unpublished: only the index (written last) names them to load.
        for label, totals in (("read from the chunks", read), ("written", written)):
            if totals.to_dict() != expected.to_dict():
                raise ReconciliationError(
                    f"job {job_id}, booking date {booking_date} (item {number}): rows {label} {totals.to_dict()} "
                    f"differ from what validation reported {expected.to_dict()}"
                )
        if partial:
            key, content_type = layout.curated_partial_key(job_id, booking_date, number), ARROW
        else:
            key, content_type = layout.curated_daily_key(job_id, booking_date), PARQUET
        daily = objects.put_file(bucket=bucket, key=key, path=output.daily_path, content_type=content_type)
    index = {
        "jobId": job_id,
        "runId": job["runId"],
        "planId": plan_id,
        "bookingDate": booking_date,
        "item": number,
        "files": files,
        "rows": written.row_count,
        "totals": written.to_dict(),
    }
    if partial:
        index["dailyPartial"] = {**daily, "rows": output.daily_rows, "firsts": output.firsts}
    else:
        index["dailyTotals"] = {**daily, "rows": output.daily_rows}
    objects.put_json(bucket=bucket, key=layout.curated_index_key(job_id, booking_date, number), document=index)
    logger.info(
        "booking date transformed",
        extra={"bookingDate": booking_date, "item": number, "rows": index["rows"], "files": len(files)},
    )
    return index["rows"]


def merge_date(*, job: dict, plan_id: str, item: dict, settings: Settings) -> bool:
    """The daily totals of a date of several items, once every item's index is written: the partial
    runs summed exactly into one file, checked against what validation counted for the date. Run by
    each item after its own index; an item that still misses one leaves the merge to that one. S3 is
    strongly consistent (https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel):
    of two items finishing together, the later index write is seen by the other's reads or it sees
    the other's, so at least one merges; two merges write the same bytes. Returns whether it merged."""
    job_id, bucket = job["jobId"], settings.work_bucket
    booking_date, items = item["bookingDate"], int(item["items"])
    daily_index_key = layout.curated_daily_index_key(job_id, booking_date)
    if _this_run(objects.get_json_or_none(bucket=bucket, key=daily_index_key), job, plan_id):
        return False
    indexes = objects.parallel(
        lambda n: objects.get_json_or_none(bucket=bucket, key=layout.curated_index_key(job_id, booking_date, n)),
        range(items),
    )
    if not all(_this_run(index, job, plan_id) for index in indexes):
        return False
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:
        runs = []
        for index in indexes:
            path = os.path.join(work, f"partial-{index['item']:05d}.arrow")
            partial = index["dailyPartial"]
            if objects.download_file(bucket=bucket, key=partial["key"], path=path)[0] != partial["sha256"]:
                raise ReconciliationError(f"job {job_id}, booking date {booking_date}: {partial['key']} has changed")
            runs.append((path, partial["firsts"]))
        path = os.path.join(work, "daily_totals.parquet")
        rows, checked = merge_partials(runs, job_id=job_id, booking_date=booking_date, path=path)
        merged = CurrencyTotals.from_dict({c: [n, str(minor)] for c, (n, minor) in checked.items()})
        expected = CurrencyTotals.from_dict(item["dateTotals"])
        if merged.to_dict() != expected.to_dict():
            raise ReconciliationError(
                f"job {job_id}, booking date {booking_date}: the daily totals merged from {items} items hold "
                f"{merged.to_dict()}, validation counted {expected.to_dict()}"
            )
        daily = objects.put_file(
            bucket=bucket, key=layout.curated_daily_key(job_id, booking_date), path=path, content_type=PARQUET
        )
    objects.put_json(
        bucket=bucket,
        key=daily_index_key,
        document={
            "jobId": job_id,
            "runId": job["runId"],
            "planId": plan_id,
            "bookingDate": booking_date,
            "items": items,
            "dailyTotals": {**daily, "rows": rows},
        },
    )
    logger.info("booking date's daily totals merged", extra={"bookingDate": booking_date, "items": items, "rows": rows})
    return True


def _parts(*, bucket: str, job_id: str, plan_id: str, item: dict, directory: str) -> Iterator[str]:
    """The date's part of each chunk, downloaded one at a time (each deleted once read)."""
    for chunk in item["chunks"]:
        path = os.path.join(directory, f"chunk-{chunk}.arrow")
        objects.download_file(
            bucket=bucket, key=layout.chunk_rows_key(job_id, plan_id, chunk, item["bookingDate"]), path=path
        )
        yield path
        os.remove(path)
