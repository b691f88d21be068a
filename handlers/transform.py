"""Transform: normalise staged rows and write curated Parquet by booking date, plus daily totals."""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile

from handlers import jobflow
from handlers.config import get_settings
from handlers.dal import objects
from handlers.errors import ReconciliationError
from handlers.logic.curated import PartitionedWriter, write_daily_totals
from handlers.logic.normalize import DailyTotals, normalize_staged_row
from handlers.logic.streams import CountingReader, open_text
from handlers.logic.totals import CurrencyTotals
from handlers.logic.validation import STAGING_COLUMNS
from handlers.observability import bind_job, logger

STAGE = "transform"


def curated_prefix(job_id: str) -> str:
    return f"curated/{job_id}"


def index_key(job_id: str) -> str:
    return f"{curated_prefix(job_id)}/_index.json"


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lambda_handler(event: dict, context: object) -> dict:
    bind_job(job_id=event.get("jobId"), stage=STAGE)
    job, previous = jobflow.begin_stage(event=event, stage=STAGE, from_statuses=(jobflow.VALIDATED,))
    if previous is not None:
        logger.info("transform already completed for this run; returning the stored result")
        return previous
    settings = get_settings()
    bucket = settings.data_bucket
    job_id = job["jobId"]

    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:
        body = objects.open_object(bucket=bucket, key=job["outputs"]["staging"])
        files, daily_rows, totals = transform_staging(
            text=open_text(CountingReader(body)), job_id=job_id, directory=work
        )
        _check_against_validate(job=job, totals=totals)
        index = {"jobId": job_id, "runId": job["runId"], "transactions": [], "dailyTotals": None}
        for booking_date, (path, rows) in files.items():
            key = f"{curated_prefix(job_id)}/transactions/booking_date={booking_date}/part-0.parquet"
            objects.upload_file(
                bucket=bucket, key=key, path=path, content_type="application/vnd.apache.parquet"
            )
            index["transactions"].append(
                {
                    "key": key,
                    "bookingDate": booking_date,
                    "rows": rows,
                    "bytes": os.path.getsize(path),
                    "sha256": _file_digest(path),
                }
            )
        daily_path = os.path.join(work, "daily_totals.parquet")
        write_daily_totals(path=daily_path, rows=daily_rows)
        daily_key = f"{curated_prefix(job_id)}/daily_totals/part-0.parquet"
        objects.upload_file(
            bucket=bucket, key=daily_key, path=daily_path, content_type="application/vnd.apache.parquet"
        )
        index["dailyTotals"] = {
            "key": daily_key,
            "rows": len(daily_rows),
            "bytes": os.path.getsize(daily_path),
            "sha256": _file_digest(daily_path),
        }
    # The index is written last: load trusts only files it lists (S3 listing is not granted).
    objects.put_json(bucket=bucket, key=index_key(job_id), document=index)

    rows = sum(entry["rows"] for entry in index["transactions"])
    output = {
        "jobId": job_id,
        "runId": job["runId"],
        "status": jobflow.TRANSFORMED,
        "rows": rows,
        "partitions": len(index["transactions"]),
        "curatedIndex": index_key(job_id),
        **jobflow.forwarded(event),
    }
    logger.info("transform finished", extra={"rows": rows, "partitions": output["partitions"]})
    return jobflow.complete_stage(
        job=job,
        stage=STAGE,
        from_statuses=(jobflow.VALIDATED,),
        status=jobflow.TRANSFORMED,
        output=output,
        attributes={
            "outputs.curatedIndex": index_key(job_id),
            "outputs.dailyTotals": daily_key,
            "counts.transformed": rows,
        },
    )


def transform_staging(*, text, job_id: str, directory: str) -> tuple[dict, list[dict], CurrencyTotals]:
    """Normalise a staging CSV stream into Parquet files under ``directory``.

    Returns booking date (ISO text) -> (path, rows), the daily totals rows and control totals.
    """
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None or tuple(header) != STAGING_COLUMNS:
        raise ReconciliationError(
            f"job {job_id}: staging file has header {header}, expected {STAGING_COLUMNS}"
        )
    writer = PartitionedWriter(directory=directory, job_id=job_id)
    daily = DailyTotals()
    totals = CurrencyTotals()
    for row in reader:
        normalized = normalize_staged_row(row)
        writer.add(normalized)
        daily.add(normalized)
        totals.add_minor(currency=normalized.currency, minor_units=abs(normalized.signed_minor_units))
    paths = writer.close()
    files = {d.isoformat(): (path, writer.rows_per_date[d]) for d, path in paths.items()}
    return files, daily.rows(), totals


def _check_against_validate(*, job: dict, totals: CurrencyTotals) -> None:
    expected = (job.get("totals") or {}).get("valid", {})
    if totals.amounts() != dict(expected):
        raise ReconciliationError(
            f"job {job['jobId']}: transformed totals {totals.amounts()} "
            f"differ from validated totals {expected}"
        )
