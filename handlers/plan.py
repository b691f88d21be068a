"""Plan: cut the source into chunks at record boundaries (handlers/logic/planning.py) and write
the plan and the Distributed Map's items, once the job holds a slot. The scan gives the file's
SHA-256: a file whose bytes another job holds (loaded, or queued or running) is a re-send, and the
job ends RESENT naming that job instead.

The plan's identity is that of the source version, the chunk size and the format: a new run of a
FAILED job finds the same plan (and the chunks it already validated) instead of scanning again.
"""

from __future__ import annotations

import hashlib
import math

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import jobs, objects
from handlers.errors import JobConflictError
from handlers.logic.idkeys import new_seed
from handlers.logic.planning import SCAN_BLOCK_BYTES, SourcePlan, plan_source
from handlers.logic.validation import JSONL_FORMAT
from handlers.observability import JOBS_RESENT, logger
from lake import layout

PLAN_VERSION = "1"


def plan_id_of(*, source: dict, chunk_bytes: int) -> str:
    identity = f"{PLAN_VERSION}|{source['bucket']}|{source['key']}|{source.get('versionId')}|{source['etag']}"
    return hashlib.sha256(f"{identity}|{source['format']}|{chunk_bytes}".encode()).hexdigest()[:16]


@jobflow.stage("plan", from_statuses=(jobflow.ADMITTED,))
def lambda_handler(job: dict, event: dict, settings: Settings) -> jobflow.Outcome:
    job_id, source = job["jobId"], job["source"]
    chunk_bytes = int((job.get("params") or {}).get("chunkBytes") or settings.chunk_bytes)
    plan_id = plan_id_of(source=source, chunk_bytes=chunk_bytes)
    bucket = settings.work_bucket
    plan = objects.get_json_or_none(bucket=bucket, key=layout.plan_key(job_id, plan_id))
    written = plan is not None
    if written:
        logger.info("plan found from an earlier run", extra={"planId": plan_id})
    else:
        plan = _scan(job_id=job_id, plan_id=plan_id, source=source, chunk_bytes=chunk_bytes, settings=settings)
    original = _claim_source(job=job, sha256=plan["sha256"])
    if original is not None:
        return _resent(job=job, original=original, sha256=plan["sha256"])
    if not written:
        _write_plan(job_id=job_id, plan_id=plan_id, plan=plan, settings=settings)
    output = {
        "jobId": job_id,
        "runId": job["runId"],
        "planId": plan_id,
        "bucket": bucket,
        "chunks": len(plan["chunks"]),
        "partitions": plan["partitions"],
        "chunksKey": layout.chunks_key(job_id, plan_id),
        "partitionsKey": layout.partitions_key(job_id, plan_id),
    }
    logger.info("planned", extra={"records": plan["records"], "chunks": output["chunks"], "bytes": plan["bytes"]})
    return jobflow.Outcome(
        status=jobflow.RECEIVED,
        output=output,
        attributes={
            "counts": {"received": plan["records"]},
            "source.sha256": plan["sha256"],
            "plan": {
                "planId": plan_id,
                "chunks": output["chunks"],
                "partitions": plan["partitions"],
                "chunkBytes": chunk_bytes,
            },
        },
    )


def _scan(*, job_id: str, plan_id: str, source: dict, chunk_bytes: int, settings: Settings) -> dict:
    """The plan of the source: its digest, records and chunks (one read of the whole file)."""
    blocks = objects.ranged_blocks(
        bucket=source["bucket"],
        key=source["key"],
        etag=source["etag"],
        size=int(source["bytes"]),
        block=SCAN_BLOCK_BYTES,
    )
    scanned: SourcePlan = plan_source(blocks, fmt=source["format"], chunk_bytes=chunk_bytes)
    chunks = [chunk.to_item() for chunk in scanned.chunks]
    if source["format"] == JSONL_FORMAT:  # the file's first record must be UTF-8: only its chunk checks it
        first = next((item for item in chunks if item["records"]), None)
        for item in chunks:
            item["firstRecord"] = item is first
    partitions = 1 if len(chunks) == 1 else max(1, math.ceil(scanned.records / settings.dedup_partition_records))
    return {
        "jobId": job_id,
        "planId": plan_id,
        "source": {k: source.get(k) for k in ("bucket", "key", "versionId", "etag", "format")},
        "bytes": scanned.bytes,
        "sha256": scanned.sha256,
        "header": scanned.header,
        "dataStart": scanned.data_start,
        "records": scanned.records,
        "chunkBytes": chunk_bytes,
        "chunks": chunks,
        "partitions": partitions,
        # The job's key for transaction ids (handlers/logic/idkeys.py): every chunk uses it.
        "keySeed": new_seed(),
    }


def _write_plan(*, job_id: str, plan_id: str, plan: dict, settings: Settings) -> None:
    """The map's items, then the plan itself: the marker a new run finds (written only for a job
    that holds its content, so a re-send leaves nothing behind)."""
    bucket = settings.work_bucket
    objects.put_json(bucket=bucket, key=layout.chunks_key(job_id, plan_id), document=plan["chunks"])
    objects.put_json(
        bucket=bucket,
        key=layout.partitions_key(job_id, plan_id),
        document=[{"partition": p} for p in range(plan["partitions"])],
    )
    objects.put_json(bucket=bucket, key=layout.plan_key(job_id, plan_id), document=plan)  # last: the marker


def _claim_source(*, job: dict, sha256: str) -> str | None:
    """One job per file content: the job that already holds this content (loaded, or queued or
    running), or None once this job holds it. A job that failed or was rejected holds nothing:
    its content is taken over, as is any content with ``force``."""
    job_id, force = job["jobId"], bool((job.get("params") or {}).get("force"))
    now = jobflow.utc_now()
    owner = jobs.claim_source(sha256=sha256, job_id=job_id, timestamp=now)
    if owner is None:
        return None
    if jobflow.holds_source((jobs.get_job(owner) or {}).get("status")) and not force:
        return owner
    if jobs.transfer_source(sha256=sha256, from_job_id=owner, to_job_id=job_id, timestamp=now):
        return None
    raise JobConflictError(f"source sha256 {sha256} changed owner while job {job_id} claimed it")


def _resent(*, job: dict, original: str, sha256: str) -> jobflow.Outcome:
    """The same bytes as the file of job ``original``: the job ends RESENT, naming it. Nothing is
    planned, validated or published, and it is no failure (docs/operations.md#resent-files); the
    state machine releases its slot next."""
    logger.info("a re-send of the file of another job; nothing to do", extra={"originalJobId": original})
    return jobflow.Outcome(
        status=jobflow.RESENT,
        output={"jobId": job["jobId"], "runId": job["runId"], "status": jobflow.RESENT, "originalJobId": original},
        attributes={"source.sha256": sha256, "originalJobId": original},
        metrics={JOBS_RESENT: 1},
    )
