"""Load: reconcile the whole job, publish every file under processed/, then commit the manifest.

The curated files are in the work bucket; what is published is copied into the data bucket, the record.

Nothing is published unless rows received = loaded + rejected and the per-currency rows and
sums of the files equal what validation counted. Each file is copied server-side and checked
against the SHA-256 transform recorded (S3 keeps every object's checksum). The manifest is
written last: only it makes the files part of the data set, so a reader of manifests never sees
half a job.
"""

from __future__ import annotations

from datetime import datetime

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import objects
from handlers.errors import ReconciliationError
from handlers.logic.totals import CurrencyTotals
from handlers.observability import BYTES_PROCESSED, JOB_DURATION, JOBS_LOADED, ROWS_LOADED, MetricUnit, count, logger
from lake import layout


@jobflow.stage("load", from_statuses=(jobflow.VALIDATED,))
def lambda_handler(job: dict, event: dict, settings: Settings) -> jobflow.Outcome:
    job_id, plan_id, work = job["jobId"], event["planId"], settings.work_bucket
    items = objects.get_json(bucket=work, key=layout.dates_key(job_id, plan_id))
    dates = [date for item in items for date in item["dates"]]
    indexes = objects.parallel(
        lambda date: objects.get_json(bucket=work, key=layout.curated_index_key(job_id, date["bookingDate"])), dates
    )
    for index in indexes:
        if (index["runId"], index["planId"]) != (job["runId"], plan_id):
            raise ReconciliationError(f"job {job_id}: the index of {index['bookingDate']} belongs to another run")
    loaded = CurrencyTotals()
    for index in indexes:
        loaded.merge(CurrencyTotals.from_dict(index["totals"]))
    reconciliation = reconcile(job=job, loaded=loaded)

    copies = []
    for index in indexes:
        booking_date = index["bookingDate"]
        for number, entry in enumerate(index["files"]):
            copies.append(
                (entry, layout.processed_rows_key(job_id, booking_date, number), booking_date, "transactions")
            )
        copies.append((index["dailyTotals"], layout.processed_daily_key(job_id, booking_date), booking_date, "daily"))
    objects.parallel(
        lambda copy: objects.copy_verified(
            source_bucket=work,
            source_key=copy[0]["key"],
            target_bucket=settings.data_bucket,
            target_key=copy[1],
            sha256=copy[0]["sha256"],
        ),
        copies,
    )
    published = [
        {"key": target, "bookingDate": day, "rows": entry["rows"], "bytes": entry["bytes"], "sha256": entry["sha256"]}
        for entry, target, day, kind in copies
        if kind == "transactions"
    ]
    daily = [
        {"key": target, "bookingDate": day, "rows": entry["rows"], "bytes": entry["bytes"], "sha256": entry["sha256"]}
        for entry, target, day, kind in copies
        if kind == "daily"
    ]
    chunks = int((job.get("plan") or {}).get("chunks") or 0)
    manifest = {
        "jobId": job_id,
        "runId": job["runId"],
        "planId": plan_id,
        "codeVersion": settings.code_version,
        "source": {k: job["source"].get(k) for k in ("bucket", "key", "versionId", "sha256", "bytes")},
        "files": published,
        "dailyTotals": daily,
        "rows": reconciliation["loaded"],
        "totals": loaded.amounts(),
        "rowsByCurrency": dict(sorted(loaded.rows.items())),
        "reconciliation": reconciliation,
        "quarantine": layout.quarantine_keys(job_id, plan_id, chunks),
        "committedAt": jobflow.utc_now(),
    }
    objects.put_json(bucket=settings.data_bucket, key=layout.manifest_key(job_id), document=manifest)

    count(ROWS_LOADED, reconciliation["loaded"])
    count(BYTES_PROCESSED, int(job["source"].get("bytes") or 0), MetricUnit.Bytes)
    count(JOBS_LOADED, 1)
    count(JOB_DURATION, _seconds_since(job["createdAt"]), MetricUnit.Seconds)
    logger.info("load committed", extra={"reconciliation": reconciliation, "files": len(published)})
    return jobflow.Outcome(
        status=jobflow.LOADED,
        output={"jobId": job_id, "runId": job["runId"], "status": jobflow.LOADED, "rows": reconciliation["loaded"]},
        attributes={
            "counts.loaded": reconciliation["loaded"],
            "totals.loaded": loaded.amounts(),
            "outputs.manifest": layout.manifest_key(job_id),
            "outputs.processed": [entry["key"] for entry in published][:100],
        },
    )


def _seconds_since(timestamp: str) -> float:
    started = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.now(started.tzinfo) - started).total_seconds()


def reconcile(*, job: dict, loaded: CurrencyTotals) -> dict:
    """rows received = loaded + rejected, and loaded rows and sums per currency = validated ones."""
    counts = job["counts"]
    received, rejected, valid = int(counts["received"]), int(counts["rejected"]), int(counts["valid"])
    loaded_rows = loaded.row_count
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
