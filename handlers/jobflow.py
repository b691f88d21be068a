"""The job life cycle shared by the stages: ownership, replayed results, completion, and the
Powertools decorators every entry runs under.

A *stage* (plan, summarize, load) moves the job's status and stores its output on the job, so a
retried or replayed stage returns what it returned before. A *task* (one chunk, one id
partition, one booking date of a Distributed Map) only checks that its run still owns the job;
its completion marker is its own output in S3.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from handlers.config import Settings, get_settings
from handlers.dal import corrections, jobs
from handlers.errors import InvalidInputError, JobConflictError, JobNotFoundError, JobStateError
from handlers.observability import count, logger, metrics, tracer

QUEUED = "QUEUED"
ADMITTED = "ADMITTED"
RECEIVED = "RECEIVED"
VALIDATED = "VALIDATED"
LOADED = "LOADED"
REJECTED = "REJECTED"
# The file's bytes are those of another job's file (loaded or in progress): nothing to do, nobody
# paged. Not "DUPLICATE", which is ingest's answer to a second start of the *same* job, and not
# a row's DUPLICATE_ID: a job is RESENT, a start is a DUPLICATE.
RESENT = "RESENT"
FAILED = "FAILED"
# Replaced by a correction that names it (handlers/dal/corrections.py): its rows are gone from the
# tables. It still holds its file's content: the same bytes again are RESENT, naming it.
SUPERSEDED = corrections.SUPERSEDED
FINISHED_STATUSES = (LOADED, REJECTED, RESENT, SUPERSEDED)
RUNNING_STATUSES = (ADMITTED, RECEIVED, VALIDATED)
# A job that ended so no longer holds its file's content (handlers/dal/jobs.py's source markers):
# a new job with the same bytes takes the content over. A job loaded, queued or running holds it.
RELEASED_SOURCE_STATUSES = (REJECTED, FAILED)


def holds_source(owner_status: str | None) -> bool:
    """Whether the owner of a file's content, in this status, still holds it (None: no such job)."""
    return owner_status is not None and owner_status not in RELEASED_SOURCE_STATUSES


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_id_from(event: object) -> str:
    job_id = event.get("jobId") if isinstance(event, dict) else None
    if not isinstance(job_id, str) or not job_id or len(job_id) > 200 or "/" in job_id:
        raise InvalidInputError(f"jobId must be a non-empty string without '/', got {job_id!r}")
    return job_id


def owned_job(event: dict, *, step: str, statuses: tuple[str, ...]) -> dict:
    """The job record, if the event's run owns it and it is in one of ``statuses``."""
    job_id = job_id_from(event)
    run_id = event.get("runId")
    job = jobs.get_job(job_id)
    if job is None:
        raise JobNotFoundError(f"job {job_id} is not registered; ingest must run first")
    if job.get("runId") != run_id:
        raise JobConflictError(
            f"job {job_id} is owned by run {job.get('runId')}, not by this run {run_id}; this run stops"
        )
    if job.get("status") not in statuses:
        raise JobStateError(f"job {job_id} is {job.get('status')}; {step} runs only from {' or '.join(statuses)}")
    return job


@dataclass(frozen=True)
class Outcome:
    """What a stage did: the job's new status, the output for the state machine, what to record,
    and the business metrics to count once it is recorded (a stage that finds its result already
    recorded counts nothing again)."""

    status: str
    output: dict
    attributes: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)


def _entry(handler: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
    """Logging with the Lambda context, a trace segment and the metrics flushed at the end."""
    return logger.inject_lambda_context(clear_state=True)(
        tracer.capture_lambda_handler(metrics.log_metrics(handler), capture_response=False)
    )


def stage(name: str, *, from_statuses: tuple[str, ...]):
    """Decorate ``work(job, event, settings) -> Outcome`` as the Lambda entry of a stage."""

    def decorate(work: Callable[[dict, dict, Settings], Outcome]) -> Callable[[dict, Any], dict]:
        @functools.wraps(work)
        def handler(event: dict, context: Any) -> dict:
            job_id = job_id_from(event)
            logger.append_keys(jobId=job_id, stage=name)
            job = jobs.get_job(job_id)
            if job is None:
                raise JobNotFoundError(f"job {job_id} is not registered; ingest must run first")
            if job.get("runId") != event.get("runId"):
                raise JobConflictError(
                    f"job {job_id} is owned by run {job.get('runId')}, not by this run {event.get('runId')}; "
                    "this run stops"
                )
            previous = jobs.stored_result(job, name)
            if previous is not None:
                logger.info(f"{name} already completed for this run; returning the stored result")
                return previous
            if job.get("status") not in from_statuses:
                raise JobStateError(
                    f"job {job_id} is {job.get('status')}; {name} runs only from {' or '.join(from_statuses)}"
                )
            outcome = work(job, event, get_settings())
            return complete_stage(job=job, stage=name, from_statuses=from_statuses, outcome=outcome)

        return _entry(handler)

    return decorate


def task(name: str, *, statuses: tuple[str, ...]):
    """Decorate ``work(job, event, settings) -> dict`` as the Lambda entry of a Map task."""

    def decorate(work: Callable[[dict, dict, Settings], dict]) -> Callable[[dict, Any], dict]:
        @functools.wraps(work)
        def handler(event: dict, context: Any) -> dict:
            logger.append_keys(jobId=event.get("jobId"), stage=name)
            job = owned_job(event, step=name, statuses=statuses)
            result = work(job, event, get_settings())
            jobs.touch(job_id=job["jobId"], run_id=job["runId"])
            return result

        return _entry(handler)

    return decorate


def entry(name: str):
    """Decorate a plain entry (register, admit, failure): logging, tracing, metrics."""

    def decorate(work: Callable[[dict, Settings], dict]) -> Callable[[dict, Any], dict]:
        @functools.wraps(work)
        def handler(event: dict, context: Any) -> dict:
            logger.append_keys(stage=name)
            return work(event if isinstance(event, dict) else {}, get_settings())

        return _entry(handler)

    return decorate


def complete_stage(*, job: dict, stage: str, from_statuses: tuple[str, ...], outcome: Outcome) -> dict:
    """Persist the stage's outcome once and return the output the state machine passes on."""
    job_id = job["jobId"]
    done = jobs.complete_stage(
        job_id=job_id,
        run_id=job["runId"],
        stage=stage,
        from_statuses=from_statuses,
        status=outcome.status,
        output=outcome.output,
        attributes=outcome.attributes,
        timestamp=utc_now(),
    )
    if done:
        for name, value in outcome.metrics.items():
            count(name, value)
        return outcome.output
    current = jobs.get_job(job_id) or {}
    previous = jobs.stored_result(current, stage)
    if current.get("runId") == job["runId"] and previous is not None:
        return previous  # a concurrent retry of this very stage finished first
    raise JobConflictError(
        f"job {job_id} changed while {stage} ran (now {current.get('status')}, run {current.get('runId')})"
    )
