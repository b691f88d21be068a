"""Load: reconcile the whole job, put its files under the tables, commit each table once, then
write the manifest.

Nothing is published unless rows received = loaded + rejected and the per-currency rows and
sums of the files equal what validation counted. The curated files are in the work bucket; each
is copied server-side into its Iceberg table's location in the data bucket (the record) and checked
against the SHA-256 transform recorded. Then one commit per table (handlers/dal/ledger.py) makes the
job's rows visible all at once, removing in the same commit the rows of the job it replaces (a
correction) and of an earlier run of its own. The job's quality figures are committed to the
job_quality table; the manifest, written last, names the snapshots.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import corrections, ledger, objects
from handlers.errors import ReconciliationError
from handlers.logic.curated import arrow_schema
from handlers.logic.quality import quality_rows
from handlers.logic.totals import CurrencyTotals
from handlers.observability import BYTES_PROCESSED, JOB_DURATION, JOBS_LOADED, ROWS_LOADED, MetricUnit, count, logger
from lake import layout, schema


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
    replaces = job.get("replaces")
    if replaces:
        corrections.check_replaceable(replaces, by=job_id)

    copies = []
    for index in indexes:
        booking_date = index["bookingDate"]
        for number, entry in enumerate(index["files"]):
            key = layout.processed_rows_key(job_id, plan_id, booking_date, number)
            copies.append((entry, key, booking_date, schema.TRANSACTIONS.name))
        key = layout.processed_daily_key(job_id, plan_id, booking_date)
        copies.append((index["dailyTotals"], key, booking_date, schema.DAILY_TOTALS.name))
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
    marks = ledger.summary(job_id=job_id, run_id=job["runId"], plan_id=plan_id)
    properties = {
        **marks,
        **ledger.summary(
            source_sha256=job["source"].get("sha256"), code_version=settings.code_version, replaces=replaces
        ),
    }
    remove = [job_id, *([replaces] if replaces else [])]
    snapshots = {
        table.name: ledger.commit_job(
            database=settings.glue_database,
            table=table.name,
            files=[f"s3://{settings.data_bucket}/{key}" for _, key, _, name in copies if name == table.name],
            marks=marks,
            properties=properties,
            remove_jobs=remove,
        )
        for table in schema.PUBLISHED
    }
    committed_at = datetime.now(UTC)
    snapshots[schema.JOB_QUALITY.name] = ledger.commit_job(
        database=settings.glue_database,
        table=schema.JOB_QUALITY.name,
        files=[],
        marks=marks,
        properties=properties,
        remove_jobs=[job_id],
        rows=pa.Table.from_pylist(
            quality_rows(
                job=job,
                verdict=jobflow.LOADED,
                loaded=loaded,
                committed_at=committed_at,
                code_version=settings.code_version,
            ),
            schema=arrow_schema(schema.JOB_QUALITY),
        ),
    )

    published = [
        {"key": target, "bookingDate": day, "rows": entry["rows"], "bytes": entry["bytes"], "sha256": entry["sha256"]}
        for entry, target, day, name in copies
        if name == schema.TRANSACTIONS.name
    ]
    daily = [
        {"key": target, "bookingDate": day, "rows": entry["rows"], "bytes": entry["bytes"], "sha256": entry["sha256"]}
        for entry, target, day, name in copies
        if name == schema.DAILY_TOTALS.name
    ]
    chunks = int((job.get("plan") or {}).get("chunks") or 0)
    manifest = {
        "jobId": job_id,
        "runId": job["runId"],
        "planId": plan_id,
        "codeVersion": settings.code_version,
        "source": {k: job["source"].get(k) for k in ("bucket", "key", "versionId", "sha256", "bytes")},
        "replaces": replaces,
        "snapshots": snapshots,
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
    if replaces:
        corrections.supersede(replaces, by=job_id, timestamp=jobflow.utc_now())

    count(ROWS_LOADED, reconciliation["loaded"])
    count(BYTES_PROCESSED, int(job["source"].get("bytes") or 0), MetricUnit.Bytes)
    count(JOBS_LOADED, 1)
    count(JOB_DURATION, _seconds_since(job["createdAt"]), MetricUnit.Seconds)
    logger.info(
        "load committed", extra={"reconciliation": reconciliation, "files": len(published), "snapshots": snapshots}
    )
    return jobflow.Outcome(
        status=jobflow.LOADED,
        output={"jobId": job_id, "runId": job["runId"], "status": jobflow.LOADED, "rows": reconciliation["loaded"]},
        attributes={
            "counts.loaded": reconciliation["loaded"],
            "totals.loaded": loaded.amounts(),
            "outputs.manifest": layout.manifest_key(job_id),
            "outputs.snapshots": snapshots,
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
