"""Ingest: register the job (conditional write), land inline data, record the source's identity."""

from __future__ import annotations

import hashlib
import io
import json
import uuid

from handlers import jobflow
from handlers.config import Settings, get_settings
from handlers.dal import jobs, objects
from handlers.errors import DuplicateSourceError, JobConflictError, JobInProgressError
from handlers.logic.requests import IngestRequest, inline_bytes, parse_ingest_request
from handlers.logic.streams import CountingReader, open_text
from handlers.logic.validation import count_records
from handlers.observability import bind_job, logger

MAX_REGISTRATION_ATTEMPTS = 3


def lambda_handler(event: dict, context: object) -> dict:
    settings = get_settings()
    request = parse_ingest_request(event, default_bucket=settings.data_bucket)
    bind_job(job_id=request.job_id, stage="ingest")
    source = describe_source(request=request, settings=settings)
    logger.info("source described", extra={"source": source})
    return register_job(request=request, source=source, settings=settings)


def describe_source(*, request: IngestRequest, settings: Settings) -> dict:
    """bucket, key, etag, sha256, bytes, format and row count of the job's input."""
    if request.inline_data is not None:
        body = inline_bytes(request.inline_data)
        sha256 = hashlib.sha256(body).hexdigest()
        rows = count_records(text=open_text(CountingReader(io.BytesIO(body))), fmt=request.fmt)
        # Keyed by digest: a conflicting request for the same jobId can never overwrite it.
        key = f"raw/{request.job_id}/{sha256}.jsonl"
        etag = objects.put_bytes(bucket=settings.data_bucket, key=key, body=body, content_type="application/x-ndjson")
        return {
            "bucket": settings.data_bucket,
            "key": key,
            "etag": etag,
            "sha256": sha256,
            "bytes": len(body),
            "format": request.fmt,
            "rows": rows,
            "inline": True,
        }

    etag = objects.head_object(bucket=request.bucket, key=request.key)["ETag"]
    reader = CountingReader(objects.open_object(bucket=request.bucket, key=request.key, etag=etag), hash_sha256=True)
    rows = count_records(text=open_text(reader), fmt=request.fmt)
    reader.drain()
    return {
        "bucket": request.bucket,
        "key": request.key,
        "etag": etag,
        "sha256": reader.hexdigest(),
        "bytes": reader.bytes_read,
        "format": request.fmt,
        "rows": rows,
        "inline": False,
    }


def _new_job(*, request: IngestRequest, source: dict, settings: Settings) -> tuple[dict, dict]:
    now = jobflow.utc_now()
    run_id = uuid.uuid4().hex
    output = {
        "jobId": request.job_id,
        "status": jobflow.RECEIVED,
        "runId": run_id,
        "rows": source["rows"],
        "sha256": source["sha256"],
    }
    if request.force:
        output["force"] = True
    if request.reject_threshold is not None:
        output["rejectThreshold"] = str(request.reject_threshold)
    item = {
        "jobId": request.job_id,
        "status": jobflow.RECEIVED,
        "runId": run_id,
        "source": {k: source[k] for k in ("bucket", "key", "etag", "sha256", "bytes", "format", "inline")},
        "counts": {"received": source["rows"]},
        "totals": {},
        "outputs": {},
        "params": {
            "force": request.force,
            **({"rejectThreshold": output["rejectThreshold"]} if "rejectThreshold" in output else {}),
        },
        "results": {"ingest": json.dumps(output, sort_keys=True)},
        "stageTimes": {"received": now},
        "codeVersion": settings.code_version,
        "createdAt": now,
        "updatedAt": jobs.now_epoch(),
    }
    return item, output


def _claim_source(*, request: IngestRequest, sha256: str) -> None:
    now = jobflow.utc_now()
    owner = jobs.claim_source(sha256=sha256, job_id=request.job_id, timestamp=now)
    if owner is None:
        return
    owner_job = jobs.get_job(owner)
    owner_status = (owner_job or {}).get("status")
    if owner_status in (jobflow.FAILED, jobflow.REJECTED, None) or request.force:
        if jobs.transfer_source(sha256=sha256, from_job_id=owner, to_job_id=request.job_id, timestamp=now):
            return
        raise JobConflictError(f"source sha256 {sha256} changed owner while job {request.job_id} claimed it")
    raise DuplicateSourceError(
        f"job {request.job_id}: a file with sha256 {sha256} was already taken by job {owner} "
        f'(status {owner_status}); pass "force": true to process it again'
    )


def register_job(*, request: IngestRequest, source: dict, settings: Settings) -> dict:
    job_id = request.job_id
    for _ in range(MAX_REGISTRATION_ATTEMPTS):
        existing = jobs.get_job(job_id)
        if existing is not None:
            replay = _check_existing(request=request, source=source, existing=existing, settings=settings)
            if replay is not None:
                return replay
        _claim_source(request=request, sha256=source["sha256"])
        item, output = _new_job(request=request, source=source, settings=settings)
        if existing is None:
            registered = jobs.put_new_job(item)
        else:
            registered = jobs.replace_job(
                item, expected_run_id=existing.get("runId"), expected_updated_at=existing.get("updatedAt")
            )
        if registered:
            logger.info("job registered", extra={"runId": output["runId"], "rows": source["rows"]})
            return output
    raise JobInProgressError(f"job {job_id} is being registered by another execution; this start stops")


def _check_existing(*, request: IngestRequest, source: dict, existing: dict, settings: Settings) -> dict | None:
    """The stored result for a replay, None when this start may take the job over, else raise."""
    job_id = request.job_id
    status = existing.get("status")
    same_content = (existing.get("source") or {}).get("sha256") == source["sha256"]
    if not same_content and not request.force:
        raise JobConflictError(
            f"job {job_id} is already registered with other content (sha256 "
            f"{(existing.get('source') or {}).get('sha256')}, not {source['sha256']}); "
            'use a new jobId or pass "force": true'
        )
    if same_content and status in jobflow.TERMINAL_STATUSES and not request.force:
        logger.info("replay of a finished job; returning the stored result", extra={"status": status})
        return {**jobs.stored_result(existing, "ingest"), "replay": True}
    idle_seconds = jobs.now_epoch() - int(existing.get("updatedAt") or 0)
    if status in jobflow.IN_PROGRESS_STATUSES and not request.force and idle_seconds < settings.job_lease_seconds:
        raise JobInProgressError(
            f"job {job_id} is {status} in another execution (run {existing.get('runId')}, "
            f"idle {idle_seconds}s); "
            f"this start stops. It may take over after {settings.job_lease_seconds}s without progress, "
            'or with "force": true'
        )
    return None
