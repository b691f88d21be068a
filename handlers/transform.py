"""Transform: normalise staged rows and write curated Parquet by booking date, plus daily totals."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

from handlers import jobflow
from handlers.config import get_settings
from handlers.dal import objects
from handlers.errors import ReconciliationError
from handlers.logic.curated import DateSpill, write_partitions
from handlers.logic.normalize import normalize_batch
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
        # Read from local disk: pyarrow's CSV reader reads ahead, and over a Python stream the
        # read-ahead buffers are Python bytes that grew with the file (measured); over a native
        # file they come from Arrow's pool and stay bounded.
        staging = os.path.join(work, "staging.csv")
        objects.download_file(bucket=bucket, key=job["outputs"]["staging"], path=staging)
        with pa.OSFile(staging) as source:
            result = transform_staging(source=source, job_id=job_id, directory=work)
        os.remove(staging)
        _check_against_validate(job=job, totals=result.totals)
        index = {"jobId": job_id, "runId": job["runId"], "transactions": [], "dailyTotals": None}
        for booking_date, (path, rows) in result.files.items():
            key = f"{curated_prefix(job_id)}/transactions/booking_date={booking_date}/part-0.parquet"
            objects.upload_file(bucket=bucket, key=key, path=path, content_type="application/vnd.apache.parquet")
            index["transactions"].append(
                {
                    "key": key,
                    "bookingDate": booking_date,
                    "rows": rows,
                    "bytes": os.path.getsize(path),
                    "sha256": _file_digest(path),
                }
            )
        daily_path = result.daily_path
        daily_key = f"{curated_prefix(job_id)}/daily_totals/part-0.parquet"
        objects.upload_file(
            bucket=bucket, key=daily_key, path=daily_path, content_type="application/vnd.apache.parquet"
        )
        index["dailyTotals"] = {
            "key": daily_key,
            "rows": result.daily_rows,
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


STAGING_BLOCK_BYTES = 1 << 20


@dataclass
class TransformResult:
    files: dict[str, tuple[str, int]]  # booking date (ISO text) -> (local Parquet path, rows)
    daily_path: str
    daily_rows: int
    totals: CurrencyTotals


def open_staging(source, *, job_id: str, block_size: int = STAGING_BLOCK_BYTES):
    """A streaming pyarrow CSV reader over the staging file, every column read as text."""
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False),
            # validate quotes fields holding separators, quotes or line breaks
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in STAGING_COLUMNS},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ReconciliationError(f"job {job_id}: staging file is not readable CSV: {exc}") from exc
    if tuple(reader.schema.names) != STAGING_COLUMNS:
        raise ReconciliationError(
            f"job {job_id}: staging file has header {reader.schema.names}, expected {STAGING_COLUMNS}"
        )
    return reader


def transform_staging(*, source, job_id: str, directory: str, block_size: int = STAGING_BLOCK_BYTES) -> TransformResult:
    """Normalise a staging CSV byte stream into Parquet files under ``directory``.

    Pass 1 normalises record batches (pyarrow) and spills them by booking date to one local Arrow
    file; pass 2 writes one Parquet file per date and the daily totals (see logic/curated.py).
    Peak memory does not depend on the file size."""
    reader = open_staging(source, job_id=job_id, block_size=block_size)
    totals = CurrencyTotals()
    spill = DateSpill(os.path.join(directory, "spill.arrow"))
    try:
        for batch in reader:
            table = normalize_batch(batch)
            add_currency_totals(totals, table)
            spill.add(table)
        spill.finish()
        daily_path = os.path.join(directory, "daily_totals.parquet")
        files, daily_rows = write_partitions(spill=spill, job_id=job_id, directory=directory, daily_path=daily_path)
    finally:
        spill.close()
    return TransformResult(files=files, daily_path=daily_path, daily_rows=daily_rows, totals=totals)


def add_currency_totals(totals: CurrencyTotals, table: pa.Table) -> None:
    grouped = table.select(["currency", "minor"]).group_by("currency", use_threads=False)
    grouped = grouped.aggregate([("minor", "sum"), ("minor", "count")])
    for currency, minor, count in zip(*(c.to_pylist() for c in grouped.columns), strict=True):
        totals.rows[currency] = totals.rows.get(currency, 0) + count
        totals.minor_units[currency] = totals.minor_units.get(currency, 0) + int(minor)


def _check_against_validate(*, job: dict, totals: CurrencyTotals) -> None:
    expected = (job.get("totals") or {}).get("valid", {})
    if totals.amounts() != dict(expected):
        raise ReconciliationError(
            f"job {job['jobId']}: transformed totals {totals.amounts()} differ from validated totals {expected}"
        )
