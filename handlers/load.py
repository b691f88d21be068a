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
    dates = _dates_read(job=job, plan_id=plan_id, work=work, items=items)
    loaded = CurrencyTotals()
    for date in dates:
        loaded.merge(date["loaded"])
    reconciliation = reconcile(job=job, loaded=loaded)
    replaces = job.get("replaces")
    if replaces:
        corrections.check_replaceable(replaces, by=job_id)

    copies = []
    for date in dates:
        booking_date = date["bookingDate"]
        # Numbered across the date's items in their order: the files' names keep the source order.
        files = [entry for index in date["indexes"] for entry in index["files"]]
        for number, entry in enumerate(files):
            key = layout.processed_rows_key(job_id, plan_id, booking_date, number)
            copies.append((entry, key, booking_date, schema.TRANSACTIONS.name))
        key = layout.processed_daily_key(job_id, plan_id, booking_date)
        copies.append((date["dailyTotals"], key, booking_date, schema.DAILY_TOTALS.name))
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
        # Per booking date, as reconciled: kept with the record (the work files that held them expire).
        "dates": [
            {
                "bookingDate": date["bookingDate"],
                "rows": date["loaded"].row_count,
                "totals": date["loaded"].amounts(),
                "rowsByCurrency": dict(sorted(date["loaded"].rows.items())),
            }
            for date in sorted(dates, key=lambda date: date["bookingDate"])
        ],
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


def _dates_read(*, job: dict, plan_id: str, work: str, items: list[dict]) -> list[dict]:
    """Every booking date of the job with its items' indexes (in item order), its daily totals
    file and its loaded totals, which must equal what validation counted for the date: the rows
    and per-currency sums of all its items (a missing or foreign index, or a missing merge, is an
    error naming the date)."""
    job_id = job["jobId"]
    entries = [entry for item in items for entry in item["dates"]]
    indexes = objects.parallel(
        lambda entry: objects.get_json_or_none(
            bucket=work, key=layout.curated_index_key(job_id, entry["bookingDate"], int(entry.get("item", 0)))
        ),
        entries,
    )
    dates: dict[str, dict] = {}
    for entry, index in zip(entries, indexes, strict=True):
        booking_date = entry["bookingDate"]
        label = f"job {job_id}: booking date {booking_date} item {entry.get('item', 0)}"
        if index is None:
            raise ReconciliationError(f"{label} has no index: it was not transformed")
        if (index["runId"], index["planId"]) != (job["runId"], plan_id):
            raise ReconciliationError(f"{label}: its index belongs to another run")
        date = dates.setdefault(
            booking_date,
            {
                "bookingDate": booking_date,
                "items": int(entry.get("items", 1)),
                "indexes": [],
                "validated": CurrencyTotals(),
                "loaded": CurrencyTotals(),
            },
        )
        date["indexes"].append(index)
        date["validated"].merge(CurrencyTotals.from_dict(entry["totals"]))
        date["loaded"].merge(CurrencyTotals.from_dict(index["totals"]))
    merged = [date for date in dates.values() if date["items"] > 1]
    daily = objects.parallel(
        lambda date: objects.get_json_or_none(
            bucket=work, key=layout.curated_daily_index_key(job_id, date["bookingDate"])
        ),
        merged,
    )
    for date, index in zip(merged, daily, strict=True):
        if index is None or (index["runId"], index["planId"]) != (job["runId"], plan_id):
            raise ReconciliationError(
                f"job {job_id}: booking date {date['bookingDate']}: its {date['items']} items' daily totals "
                "were not merged by this run"
            )
        date["dailyTotals"] = index["dailyTotals"]
    for date in dates.values():
        date["indexes"].sort(key=lambda index: int(index.get("item", 0)))
        if [int(index.get("item", 0)) for index in date["indexes"]] != list(range(date["items"])):
            raise ReconciliationError(f"job {job_id}: booking date {date['bookingDate']}: items missing or repeated")
        if date["items"] == 1:
            date["dailyTotals"] = date["indexes"][0]["dailyTotals"]
        if date["loaded"].to_dict() != date["validated"].to_dict():
            raise ReconciliationError(
                f"job {job_id}: booking date {date['bookingDate']} does not reconcile: its {date['items']} items "
                f"hold {date['loaded'].to_dict()}, validation counted {date['validated'].to_dict()}"
            )
    return list(dates.values())


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
