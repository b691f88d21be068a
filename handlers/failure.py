"""Failure: the state machine's Catch path. Marks the job FAILED with the error and cause."""

from __future__ import annotations

from handlers import jobflow
from handlers.dal import jobs
from handlers.observability import bind_job, logger

MAX_CAUSE_CHARACTERS = 20_000  # keeps the item well below DynamoDB's 400 KB


def lambda_handler(event: dict, context: object) -> dict:
    event = event if isinstance(event, dict) else {}
    job_id = event.get("jobId")
    if not isinstance(job_id, str) or not job_id:
        job_id = "unknown-job"  # the input was unusable; still record the failure somewhere
    bind_job(job_id=job_id, stage="failure")
    raw_error = event.get("error") if isinstance(event.get("error"), dict) else {}
    error = {
        "Error": str(raw_error.get("Error") or "UnknownError"),
        "Cause": str(raw_error.get("Cause") or "")[:MAX_CAUSE_CHARACTERS],
    }
    timestamp = jobflow.utc_now()
    outcome = jobs.mark_failed(job_id=job_id, run_id=event.get("runId"), error=error, timestamp=timestamp)
    if outcome == "not-owner":
        # Another execution owns the job (e.g. this start was refused as a concurrent duplicate):
        # its status stays as it is, the refusal is noted on the record.
        jobs.note_refused_start(job_id=job_id, error=error, timestamp=timestamp)
    logger.error("job failed", extra={"error": error, "recorded": outcome})
    return {
        "jobId": job_id,
        "status": jobflow.FAILED,
        "error": error,
        "recorded": outcome,
        **jobflow.forwarded(event),
    }
