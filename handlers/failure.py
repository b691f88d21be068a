"""Failure: the state machine's Catch path. Marks the job FAILED with the error and cause."""

from __future__ import annotations

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import jobs
from handlers.errors import InvalidInputError, ReconciliationError
from handlers.logic.requests import S3_TRIGGER, job_id_for_object, uploaded_object
from handlers.observability import JOBS_FAILED, RECONCILIATION_FAILURES, count, logger

MAX_CAUSE_CHARACTERS = 20_000  # keeps the item well below DynamoDB's 400 KB
UNKNOWN_JOB = "unknown-job"  # the input named no job at all; the failure is still recorded


@jobflow.entry("failure")
def lambda_handler(event: dict, settings: Settings) -> dict:
    if event.get("drain"):  # the admission sweep belongs to no job: alert only
        logger.error("admission sweep failed", extra={"error": event.get("error")})
        return {"jobId": None, "status": jobflow.FAILED, "recorded": "none"}
    job_id = _job_id(event)
    logger.append_keys(jobId=job_id)
    raw_error = event.get("error") if isinstance(event.get("error"), dict) else {}
    error = {
        "Error": str(raw_error.get("Error") or "UnknownError"),
        "Cause": str(raw_error.get("Cause") or "")[:MAX_CAUSE_CHARACTERS],
    }
    timestamp = jobflow.utc_now()
    outcome = jobs.mark_failed(
        job_id=job_id,
        run_id=event.get("runId"),
        error=error,
        timestamp=timestamp,
        finished=jobflow.FINISHED_STATUSES,
    )
    if outcome == jobs.NOT_OWNER:
        # Another execution owns the job (e.g. this start was refused as a concurrent duplicate):
        # its status stays as it is, the refusal is noted on the record.
        jobs.note_refused_start(job_id=job_id, error=error, timestamp=timestamp)
    elif outcome != "kept":
        count(JOBS_FAILED, 1)
        if error["Error"] == ReconciliationError.__name__:
            count(RECONCILIATION_FAILURES, 1)
    logger.error("job failed", extra={"error": error, "recorded": outcome})
    return {"jobId": job_id, "status": jobflow.FAILED, "error": error, "recorded": outcome}


def _job_id(event: dict) -> str:
    if isinstance(event.get("jobId"), str) and event["jobId"]:
        return event["jobId"]
    if event.get("trigger") == S3_TRIGGER:  # an upload that failed before ingest named its job
        try:
            source = uploaded_object(event)
            return job_id_for_object(key=source.key, version_id=source.version_id)
        except InvalidInputError:
            pass
    return UNKNOWN_JOB
