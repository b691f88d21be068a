"""Transform a run of booking dates (an item of the last Distributed Map): each date's valid rows
from every chunk, in line order, as the Parquet files load publishes, and the date's daily totals.

The rows and per-currency totals read must be those the chunks reported, and the files written
are read back and summed again before their index (written last: the date's marker) says so.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import objects
from handlers.errors import ReconciliationError
from handlers.logic.curated import sum_by_currency, write_date
from handlers.logic.totals import CurrencyTotals
from handlers.observability import logger
from lake import layout

PARQUET = "application/vnd.apache.parquet"


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
    index_key = layout.curated_index_key(job_id, booking_date)
    done = objects.get_json_or_none(bucket=bucket, key=index_key)
    if done is not None and done.get("planId") == plan_id and done.get("runId") == job["runId"]:
        logger.info("booking date already transformed for this run", extra={"bookingDate": booking_date})
        return {"bookingDate": booking_date, "rows": done["rows"], "reused": True}

    expected = CurrencyTotals.from_dict(item["totals"])
    written = CurrencyTotals()
    files: list[dict] = []

    def upload(path: str, rows: int) -> None:
        """Summed again from the file, then uploaded and deleted: /tmp holds one file at a time."""
        _, rows_by_currency, minor_by_currency = sum_by_currency(path)
        for currency, count in rows_by_currency.items():
            written.add(currency=currency, rows=count, minor_units=minor_by_currency[currency])
        key = layout.curated_rows_key(job_id, booking_date, len(files))
        files.append({**objects.put_file(bucket=bucket, key=key, path=path, content_type=PARQUET), "rows": rows})
        os.remove(path)

    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:
        parts = _parts(bucket=bucket, job_id=job_id, plan_id=plan_id, item=item, directory=work)
        output = write_date(parts=parts, job_id=job_id, booking_date=booking_date, directory=work, on_file=upload)
        read = CurrencyTotals.from_dict({c: [rows, str(minor)] for c, (rows, minor) in output.totals.items()})
        # Files already uploaded stay unpublished: only the index (written last) names them to load.
        for label, totals in (("read from the chunks", read), ("written", written)):
            if totals.to_dict() != expected.to_dict():
                raise ReconciliationError(
                    f"job {job_id}, booking date {booking_date}: rows {label} {totals.to_dict()} differ from "
                    f"what validation reported {expected.to_dict()}"
                )
        daily = objects.put_file(
            bucket=bucket,
            key=layout.curated_daily_key(job_id, booking_date),
            path=output.daily_path,
            content_type=PARQUET,
        )
    index = {
        "jobId": job_id,
        "runId": job["runId"],
        "planId": plan_id,
        "bookingDate": booking_date,
        "files": files,
        "dailyTotals": {**daily, "rows": output.daily_rows},
        "rows": written.row_count,
        "totals": written.to_dict(),
    }
    objects.put_json(bucket=bucket, key=index_key, document=index)
    logger.info(
        "booking date transformed", extra={"bookingDate": booking_date, "rows": index["rows"], "files": len(files)}
    )
    return {"bookingDate": booking_date, "rows": index["rows"], "reused": False}


def _parts(*, bucket: str, job_id: str, plan_id: str, item: dict, directory: str) -> Iterator[str]:
    """The date's part of each chunk, downloaded one at a time (each deleted once read)."""
    for chunk in item["chunks"]:
        path = os.path.join(directory, f"chunk-{chunk}.arrow")
        objects.download_file(
            bucket=bucket, key=layout.chunk_rows_key(job_id, plan_id, chunk, item["bookingDate"]), path=path
        )
        yield path
        os.remove(path)
