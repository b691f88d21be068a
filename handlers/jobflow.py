"""The job life cycle shared by the stages: ownership checks, replayed results, completion."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.dal import jobs
from handlers.errors import InvalidInputError, JobConflictError, JobNotFoundError, JobStateError

RECEIVED = "RECEIVED"
VALIDATED = "VALIDATED"
TRANSFORMED = "TRANSFORMED"
LOADED = "LOADED"
REJECTED = "REJECTED"
FAILED = "FAILED"
TERMINAL_STATUSES = (LOADED, REJECTED)
IN_PROGRESS_STATUSES = (RECEIVED, VALIDATED, TRANSFORMED)

# Execution-input options that every stage copies into its output for the stages after it.
FORWARDED_FIELDS = ("force", "rejectThreshold")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_id_from(event: dict) -> str:
    job_id = event.get("jobId") if isinstance(event, dict) else None
    if not isinstance(job_id, str) or not job_id or len(job_id) > 200 or "/" in job_id:
        raise InvalidInputError(f"jobId must be a non-empty string without '/', got {job_id!r}")
    return job_id


def forwarded(event: dict) -> dict:
    return {name: event[name] for name in FORWARDED_FIELDS if name in event}


def begin_stage(*, event: dict, stage: str, from_statuses: tuple[str, ...]) -> tuple[dict, dict | None]:
    """The job record, and this stage's earlier result if it already completed for this run."""
    job_id = job_id_from(event)
    run_id = event.get("runId")
    job = jobs.get_job(job_id)
    if job is None:
        raise JobNotFoundError(f"job {job_id} is not registered; ingest must run first")
    if job.get("runId") != run_id:
        raise JobConflictError(
            f"job {job_id} is owned by run {job.get('runId')}, not by this run {run_id}; this run stops"
        )
    previous = jobs.stored_result(job, stage)
    if previous is not None:
        return job, previous
    if job.get("status") not in from_statuses:
        raise JobStateError(f"job {job_id} is {job.get('status')}; {stage} runs only from {' or '.join(from_statuses)}")
    return job, None


def complete_stage(
    *,
    job: dict,
    stage: str,
    from_statuses: tuple[str, ...],
    status: str,
    output: dict,
    attributes: dict[str, object],
) -> dict:
    """Persist the stage's outcome once and return the output the state machine passes on."""
    job_id = job["jobId"]
    done = jobs.complete_stage(
        job_id=job_id,
        run_id=job["runId"],
        stage=stage,
        from_statuses=from_statuses,
        status=status,
        output=output,
        attributes=attributes,
        timestamp=utc_now(),
    )
    if done:
        return output
    current = jobs.get_job(job_id) or {}
    previous = jobs.stored_result(current, stage)
    if current.get("runId") == job["runId"] and previous is not None:
        return previous  # a concurrent retry of this very stage finished first
    raise JobConflictError(
        f"job {job_id} changed while {stage} ran (now {current.get('status')}, run {current.get('runId')})"
    )
