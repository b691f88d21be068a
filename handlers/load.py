"""Load: reconcile, publish curated files to processed/, then commit the manifest last."""

from __future__ import annotations

import os
import tempfile

from handlers import jobflow
from handlers.config import get_settings
from handlers.dal import objects
from handlers.errors import ReconciliationError
from handlers.logic.curated import sum_by_currency
from handlers.logic.totals import CurrencyTotals
from handlers.observability import bind_job, logger

STAGE = "load"


def manifest_key(job_id: str) -> str:
    return f"manifests/{job_id}.json"


def processed_key(*, job_id: str, booking_date: str) -> str:
    return f"processed/transactions/booking_date={booking_date}/{job_id}-part-0.parquet"


def daily_totals_key(job_id: str) -> str:
    return f"processed/daily_totals/{job_id}.parquet"


def lambda_handler(event: dict, context: object) -> dict:
    bind_job(job_id=event.get("jobId"), stage=STAGE)
    job, previous = jobflow.begin_stage(event=event, stage=STAGE, from_statuses=(jobflow.TRANSFORMED,))
    if previous is not None:
        logger.info("load already completed for this run; returning the stored result")
        return previous
    settings = get_settings()
    bucket = settings.data_bucket
    job_id = job["jobId"]
    index = objects.get_json(bucket=bucket, key=job["outputs"]["curatedIndex"])
    if index.get("runId") != job["runId"]:
        raise ReconciliationError(f"job {job_id}: curated index belongs to run {index.get('runId')}")

    loaded = CurrencyTotals()
    files = []
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:
        for number, entry in enumerate(index["transactions"]):
            path = os.path.join(work, f"part-{number}.parquet")
            sha256, size = objects.download_file(bucket=bucket, key=entry["key"], path=path)
            if sha256 != entry["sha256"]:
                raise ReconciliationError(
                    f"job {job_id}: {entry['key']} has sha256 {sha256}, index says {entry['sha256']}"
                )
            rows, rows_by_currency, minor_by_currency = sum_by_currency(path)
            if rows != entry["rows"]:
                raise ReconciliationError(f"job {job_id}: {entry['key']} holds {rows} rows, index says {entry['rows']}")
            for currency, count in rows_by_currency.items():
                loaded.rows[currency] = loaded.rows.get(currency, 0) + count
                loaded.minor_units[currency] = loaded.minor_units.get(currency, 0) + minor_by_currency[currency]
            files.append(
                {
                    "key": processed_key(job_id=job_id, booking_date=entry["bookingDate"]),
                    "bookingDate": entry["bookingDate"],
                    "rows": rows,
                    "bytes": size,
                    "sha256": sha256,
                    "verifiedPath": path,
                }
            )
        reconciliation = reconcile(job=job, loaded=loaded)

        # Publish exactly the bytes just verified (the upload carries their SHA-256, which a bucket
        # with Object Lock requires), then commit: only the manifest makes them part of the data set.
        for entry in files:
            objects.upload_file(
                bucket=bucket,
                key=entry["key"],
                path=entry.pop("verifiedPath"),
                content_type="application/vnd.apache.parquet",
            )
        daily = dict(index["dailyTotals"])
        daily_path = os.path.join(work, "daily_totals.parquet")
        sha256, _ = objects.download_file(bucket=bucket, key=daily["key"], path=daily_path)
        if sha256 != daily["sha256"]:
            raise ReconciliationError(f"job {job_id}: {daily['key']} has sha256 {sha256}, index says {daily['sha256']}")
        objects.upload_file(
            bucket=bucket, key=daily_totals_key(job_id), path=daily_path, content_type="application/vnd.apache.parquet"
        )
        daily["key"] = daily_totals_key(job_id)
    manifest = {
        "jobId": job_id,
        "runId": job["runId"],
        "codeVersion": settings.code_version,
        "source": {k: job["source"][k] for k in ("bucket", "key", "sha256", "bytes")},
        "files": files,
        "dailyTotals": daily,
        "rows": reconciliation["loaded"],
        "totals": loaded.amounts(),
        "rowsByCurrency": dict(sorted(loaded.rows.items())),
        "reconciliation": reconciliation,
        "quarantine": job["outputs"].get("quarantine"),
        "committedAt": jobflow.utc_now(),
    }
    objects.put_json(bucket=bucket, key=manifest_key(job_id), document=manifest)

    output = {
        "jobId": job_id,
        "runId": job["runId"],
        "status": jobflow.LOADED,
        "rows": reconciliation["loaded"],
        "manifest": manifest_key(job_id),
        **jobflow.forwarded(event),
    }
    logger.info("load committed", extra={"reconciliation": reconciliation})
    return jobflow.complete_stage(
        job=job,
        stage=STAGE,
        from_statuses=(jobflow.TRANSFORMED,),
        status=jobflow.LOADED,
        output=output,
        attributes={
            "counts.loaded": reconciliation["loaded"],
            "totals.loaded": loaded.amounts(),
            "outputs.manifest": manifest_key(job_id),
            "outputs.processed": [entry["key"] for entry in files][:100],
        },
    )


def reconcile(*, job: dict, loaded: CurrencyTotals) -> dict:
    """rows received = loaded + rejected, and loaded totals per currency = validated totals."""
    counts = job["counts"]
    received, rejected, valid = int(counts["received"]), int(counts["rejected"]), int(counts["valid"])
    loaded_rows = sum(loaded.rows.values())
    validated = job["totals"]
    expected_amounts = dict(validated["valid"])
    expected_rows = {currency: int(n) for currency, n in validated["rowsByCurrency"]["valid"].items()}
    problems = []
    if received != loaded_rows + rejected:
        problems.append(f"received {received} != loaded {loaded_rows} + rejected {rejected}")
    if loaded_rows != valid:
        problems.append(f"loaded {loaded_rows} != validated {valid}")
    if loaded.amounts() != expected_amounts:
        problems.append(f"loaded totals {loaded.amounts()} != validated totals {expected_amounts}")
    if dict(loaded.rows) != expected_rows:
        problems.append(f"loaded rows per currency {dict(loaded.rows)} != validated {expected_rows}")
    if problems:
        raise ReconciliationError(f"job {job['jobId']} does not reconcile: " + "; ".join(problems))
    return {
        "received": received,
        "loaded": loaded_rows,
        "rejected": rejected,
        "balanced": True,
        "totals": expected_amounts,
    }
