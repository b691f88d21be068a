"""Plan: cut the source into chunks at record boundaries (handlers/logic/planning.py) and write
the plan and the Distributed Map's items, once the job holds a slot.

The plan's identity is that of the source version, the chunk size and the format: a new run of a
FAILED job finds the same plan (and the chunks it already validated) instead of scanning again.
"""

from __future__ import annotations

import hashlib
import math

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import jobs, objects
from handlers.errors import DuplicateSourceError, JobConflictError
from handlers.logic.idkeys import new_seed
from handlers.logic.planning import SCAN_BLOCK_BYTES, SourcePlan, plan_source
from handlers.logic.validation import JSONL_FORMAT
from handlers.observability import logger
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
    if plan is None:
        plan = _write_plan(job_id=job_id, plan_id=plan_id, source=source, chunk_bytes=chunk_bytes, settings=settings)
    else:
        logger.info("plan found from an earlier run", extra={"planId": plan_id})
    _claim_source(job=job, sha256=plan["sha256"])
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


def _write_plan(*, job_id: str, plan_id: str, source: dict, chunk_bytes: int, settings: Settings) -> dict:
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
    plan = {
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
    bucket = settings.work_bucket
    objects.put_json(bucket=bucket, key=layout.chunks_key(job_id, plan_id), document=chunks)
    objects.put_json(
        bucket=bucket,
        key=layout.partitions_key(job_id, plan_id),
        document=[{"partition": p} for p in range(partitions)],
    )
    objects.put_json(bucket=bucket, key=layout.plan_key(job_id, plan_id), document=plan)  # last: the marker
    return plan


def _claim_source(*, job: dict, sha256: str) -> None:
    """One job per file content: a file already taken by a job that loaded or is running is refused."""
    job_id, force = job["jobId"], bool((job.get("params") or {}).get("force"))
    now = jobflow.utc_now()
    owner = jobs.claim_source(sha256=sha256, job_id=job_id, timestamp=now)
    if owner is None:
        return
    owner_status = (jobs.get_job(owner) or {}).get("status")
    if owner_status in (jobflow.FAILED, jobflow.REJECTED, None) or force:
        if jobs.transfer_source(sha256=sha256, from_job_id=owner, to_job_id=job_id, timestamp=now):
            return
        raise JobConflictError(f"source sha256 {sha256} changed owner while job {job_id} claimed it")
    raise DuplicateSourceError(
        f"job {job_id}: a file with sha256 {sha256} was already taken by job {owner} "
        f'(status {owner_status}); pass "force": true to process it again'
    )
