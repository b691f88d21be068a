"""Ingest: register the job and queue it for a slot.

Light work on purpose (a HEAD of the source, a few DynamoDB writes): it runs for every start, also
during a burst, before admission. Reading and planning the file is the plan stage's, once the job
holds a slot. Outcomes (``status`` of the output):

* ``QUEUED``: a new job (or a new run of a FAILED one), waiting for admission;
* ``DUPLICATE``: the same job is already queued or running (an event delivered twice, or a manual
  start beside the upload's): nothing is touched;
* ``REPLAY``: the job already finished; its stored result, nothing rewritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import admission, corrections, jobs, objects
from handlers.errors import JobConflictError, JobInProgressError
from handlers.logic.requests import (
    JOB_ID_METADATA,
    REPLACES_METADATA,
    IngestRequest,
    check_job_id,
    inline_bytes,
    job_id_for_object,
    parse_ingest_request,
)
from handlers.observability import logger
from lake.layout import raw_key

MAX_REGISTRATION_ATTEMPTS = 3
DUPLICATE = "DUPLICATE"
REPLAY = "REPLAY"


@jobflow.entry("ingest")
def lambda_handler(event: dict, settings: Settings) -> dict:
    """``event``: ``{"input": <the execution input>, "executionArn": ...}`` from the state machine,
    or the execution input itself."""
    execution_arn = event.get("executionArn") if "input" in event else None
    event = event.get("input", event)
    if isinstance(execution_arn, str):
        event = {**event, "executionArn": execution_arn}
    request = parse_ingest_request(event, default_bucket=settings.data_bucket)
    job_id, source, request = describe_source(request=request, settings=settings)
    if request.replaces:  # refused now rather than after the whole job has run (load checks again)
        corrections.check_replaceable(request.replaces, by=job_id)
    logger.append_keys(jobId=job_id)
    logger.info("source described", extra={"source": source})
    return register_job(job_id=job_id, request=request, source=source, settings=settings, event=event)


def describe_source(*, request: IngestRequest, settings: Settings) -> tuple[str, dict, IngestRequest]:
    """The job id, the source's identity (bucket, key, version, ETag, bytes, format), and the request
    with what the object's metadata adds to it (the job it replaces)."""
    if request.inline_data is not None:
        body = inline_bytes(request.inline_data)
        sha256 = hashlib.sha256(body).hexdigest()
        # Keyed by digest: a conflicting request for the same jobId can never overwrite it.
        key = raw_key(request.job_id, sha256)
        etag = objects.put_bytes(bucket=settings.data_bucket, key=key, body=body, content_type="application/x-ndjson")
        source = {"bucket": settings.data_bucket, "key": key, "etag": etag, "bytes": len(body), "inline": True}
        return request.job_id, {**source, "format": request.fmt, "versionId": None}, request
    head = objects.head_object(bucket=request.source.bucket, key=request.source.key)
    version = request.source.version_id or head.get("VersionId")
    job_id = request.job_id
    metadata = head.get("Metadata") or {}
    if job_id is None:  # an upload: named by its producer, or by the object version
        named = metadata.get(JOB_ID_METADATA)
        job_id = check_job_id(named) if named else job_id_for_object(key=request.source.key, version_id=version)
    if request.replaces is None and metadata.get(REPLACES_METADATA):
        replaces = check_job_id(metadata[REPLACES_METADATA], setting=f"metadata {REPLACES_METADATA}")
        request = dataclasses.replace(request, replaces=replaces)
    return job_id, {
        "bucket": request.source.bucket,
        "key": request.source.key,
        "versionId": version,
        "etag": head["ETag"],
        "bytes": int(head["ContentLength"]),
        "format": request.fmt,
        "inline": False,
    }, request


def _same_source(a: dict, b: dict) -> bool:
    return all(a.get(field) == b.get(field) for field in ("bucket", "key", "versionId", "etag"))


def _new_job(*, job_id: str, request: IngestRequest, source: dict, settings: Settings, event: dict) -> dict:
    now = jobflow.utc_now()
    params: dict[str, object] = {"force": request.force}
    if request.reject_threshold is not None:
        params["rejectThreshold"] = str(request.reject_threshold)
    if request.chunk_bytes is not None:
        params["chunkBytes"] = request.chunk_bytes
    return {
        "jobId": job_id,
        "status": jobflow.QUEUED,
        "runId": uuid.uuid4().hex,
        "ticket": admission.take_ticket(),
        "queue": admission.WAITING,
        "trigger": request.trigger,
        "source": source,
        **({"replaces": request.replaces} if request.replaces else {}),
        "counts": {},
        "totals": {},
        "outputs": {},
        "params": params,
        "results": {},
        "stageTimes": {"queued": now},
        "codeVersion": settings.code_version,
        "createdAt": now,
        "updatedAt": jobs.now_epoch(),
        **({"executionArn": event["executionArn"]} if isinstance(event.get("executionArn"), str) else {}),
    }


def register_job(*, job_id: str, request: IngestRequest, source: dict, settings: Settings, event: dict) -> dict:
    for _ in range(MAX_REGISTRATION_ATTEMPTS):
        existing = jobs.get_job(job_id)
        if existing is not None:
            outcome = _check_existing(
                job_id=job_id, request=request, source=source, existing=existing, settings=settings
            )
            if outcome is not None:
                return outcome
        item = _new_job(job_id=job_id, request=request, source=source, settings=settings, event=event)
        if existing is None:
            registered = jobs.put_new_job(item)
        else:
            registered = jobs.replace_job(
                item, expected_run_id=existing.get("runId"), expected_updated_at=existing.get("updatedAt")
            )
        if registered:
            logger.info("job queued", extra={"runId": item["runId"], "ticket": item["ticket"]})
            return {"jobId": job_id, "runId": item["runId"], "status": jobflow.QUEUED, "ticket": item["ticket"]}
    raise JobInProgressError(f"job {job_id} is being registered by another execution; this start stops")


def _check_existing(
    *, job_id: str, request: IngestRequest, source: dict, existing: dict, settings: Settings
) -> dict | None:
    """The outcome of a start for a job that exists; None when this start takes the job over."""
    status = existing.get("status")
    same = _same_source(existing.get("source") or {}, source) or (
        request.inline_data is not None and (existing.get("source") or {}).get("key") == source["key"]
    )
    if not same and not request.force:
        raise JobConflictError(
            f"job {job_id} is already registered with another source ({(existing.get('source') or {}).get('key')}, "
            f'ETag {(existing.get("source") or {}).get("etag")}); use a new jobId or pass "force": true'
        )
    if status == jobflow.SUPERSEDED:  # forced or not: loading it again would book its rows beside its correction's
        raise JobConflictError(
            f"job {job_id} was replaced by job {existing.get('supersededBy')}; "
            "send a correction of that job (--replaces) instead"
        )
    if request.force:
        return None
    if status in jobflow.FINISHED_STATUSES:
        logger.info("replay of a finished job; returning the stored result", extra={"status": status})
        return {"jobId": job_id, "runId": existing.get("runId"), "status": REPLAY, "jobStatus": status}
    if status == jobflow.FAILED:
        return None  # a new run takes the failed job over
    idle_seconds = jobs.now_epoch() - int(existing.get("updatedAt") or 0)
    if idle_seconds >= settings.job_lease_seconds and status != jobflow.QUEUED:
        logger.warning("taking over an abandoned job", extra={"status": status, "idleSeconds": idle_seconds})
        return None
    logger.info("the job is already queued or running; this start ends", extra={"status": status})
    return {"jobId": job_id, "runId": existing.get("runId"), "status": DUPLICATE, "jobStatus": status}
