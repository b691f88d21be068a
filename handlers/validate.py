"""Validate: stream the source, write valid rows to staging and rejects to quarantine, with totals."""

from __future__ import annotations

import os
import tempfile
from decimal import Decimal

from handlers import jobflow
from handlers.config import get_settings, parse_threshold
from handlers.dal import objects
from handlers.errors import ReconciliationError
from handlers.logic.duplicates import DuplicateTracker
from handlers.logic.streams import CountingReader, open_text
from handlers.logic.validation import (
    STAGING_COLUMNS,
    StagingWriter,
    ValidationSummary,
    exceeds_threshold,
    json_text,
    validate_text,
)
from handlers.observability import bind_job, logger

STAGE = "validate"


def staging_key(job_id: str) -> str:
    return f"staging/{job_id}/valid.csv"


def quarantine_key(job_id: str) -> str:
    return f"quarantine/{job_id}/rejected.jsonl"


def lambda_handler(event: dict, context: object) -> dict:
    bind_job(job_id=event.get("jobId"), stage=STAGE)
    job, previous = jobflow.begin_stage(event=event, stage=STAGE, from_statuses=(jobflow.RECEIVED,))
    if previous is not None:
        logger.info("validate already completed for this run; returning the stored result")
        return previous
    settings = get_settings()
    job_id = job["jobId"]
    threshold = _threshold(event=event, job=job, default=settings.reject_threshold)
    source = job["source"]

    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:
        valid_path = os.path.join(work, "valid.csv")
        rejected_path = os.path.join(work, "rejected.jsonl")
        summary = _validate_to_files(
            source=source,
            valid_path=valid_path,
            rejected_path=rejected_path,
            work=work,
            memory_entries=settings.dedup_memory_entries,
        )
        received = int(job["counts"]["received"])
        if summary.records != received:
            raise ReconciliationError(
                f"job {job_id}: validate read {summary.records} records but ingest counted {received}"
            )
        rejected_job = exceeds_threshold(rejected=summary.rejected, records=summary.records, threshold=threshold)
        bucket = settings.data_bucket
        objects.upload_file(
            bucket=bucket, key=quarantine_key(job_id), path=rejected_path, content_type="application/x-ndjson"
        )
        outputs = {"quarantine": quarantine_key(job_id)}
        if not rejected_job:
            objects.upload_file(bucket=bucket, key=staging_key(job_id), path=valid_path, content_type="text/csv")
            outputs["staging"] = staging_key(job_id)

    report = summary.to_dict()
    status = jobflow.REJECTED if rejected_job else jobflow.VALIDATED
    output = {
        "jobId": job_id,
        "runId": job["runId"],
        "status": status,
        "records": summary.records,
        "valid": summary.valid,
        "rejected": summary.rejected,
        **jobflow.forwarded(event),
    }
    if rejected_job:
        output["reason"] = f"{summary.rejected} of {summary.records} rows rejected, above the threshold {threshold}"
    logger.info("validation finished", extra={"summary": report, "status": status})
    return jobflow.complete_stage(
        job=job,
        stage=STAGE,
        from_statuses=(jobflow.RECEIVED,),
        status=status,
        output=output,
        attributes={
            "counts": {
                "received": received,
                "records": summary.records,
                "valid": summary.valid,
                "rejected": summary.rejected,
                "reasons": report["reasons"],
            },
            "totals": {**report["totals"], "rowsByCurrency": report["rowsByCurrency"]},
            "unknownColumns": report["unknownColumns"],
            "rejectThreshold": str(threshold),
            "outputs.quarantine": outputs["quarantine"],
            **({"outputs.staging": outputs["staging"]} if "staging" in outputs else {}),
            **({"rejection": output["reason"]} if rejected_job else {}),
        },
    )


def _threshold(*, event: dict, job: dict, default: Decimal) -> Decimal:
    if event.get("rejectThreshold") is not None:
        return parse_threshold(event["rejectThreshold"], setting="rejectThreshold")
    stored = (job.get("params") or {}).get("rejectThreshold")
    return parse_threshold(stored, setting="rejectThreshold") if stored is not None else default


def _validate_to_files(
    *, source: dict, valid_path: str, rejected_path: str, work: str, memory_entries: int
) -> ValidationSummary:
    body = objects.open_object(bucket=source["bucket"], key=source["key"], etag=source.get("etag"))
    with (
        open(valid_path, "w", newline="", encoding="utf-8") as valid_file,
        open(rejected_path, "w", encoding="utf-8") as rejected_file,
        DuplicateTracker(memory_entries=memory_entries, spill_dir=work) as duplicates,
    ):
        writer = StagingWriter(valid_file)
        writer.writerow(STAGING_COLUMNS)

        def write_reject(entry: dict) -> None:
            rejected_file.write(json_text(entry) + "\n")

        return validate_text(
            text=open_text(CountingReader(body)),
            fmt=source["format"],
            duplicates=duplicates,
            on_valid=writer.writerow,
            on_reject=write_reject,
            on_valid_csv=valid_file.write,
        )
