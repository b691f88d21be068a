"""Validate one chunk of a job (an item of the Distributed Map): its rejects, its valid rows by
booking date, and the keys of its transaction ids, then its summary, written last as its marker.

The second pass over a chunk (``"late": true``) brings the lines whose id first occurs in an
earlier chunk (handlers/dedupe.py): the chunk's outputs are written again, now final.
"""

from __future__ import annotations

import hashlib
import json
import tempfile

import numpy as np

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import objects
from handlers.logic.chunkwork import validate_chunk
from handlers.logic.idkeys import IdKeys
from handlers.logic.planning import Chunk
from handlers.logic.streams import CountingReader
from handlers.observability import logger
from lake import layout


def late_digest(lines: list[int]) -> str:
    return hashlib.sha256(json.dumps(lines).encode()).hexdigest()[:16]


@jobflow.task("validate", statuses=(jobflow.RECEIVED,))
def lambda_handler(job: dict, event: dict, settings: Settings) -> dict:
    job_id, plan_id, bucket = job["jobId"], event["planId"], settings.work_bucket
    item = event["chunk"]
    chunk = Chunk.from_item(item)
    plan = objects.get_json(bucket=bucket, key=layout.plan_key(job_id, plan_id))
    late = late_lines(bucket=bucket, job_id=job_id, plan=plan, chunk=chunk.index) if item.get("late") else []
    digest = late_digest(late) if late else None
    summary_key = layout.chunk_summary_key(job_id, plan_id, chunk.index)
    done = objects.get_json_or_none(bucket=bucket, key=summary_key)
    if done is not None and done.get("lateDigest") == digest:
        logger.info("chunk already validated for this plan", extra={"chunk": chunk.index})
        return {"chunk": chunk.index, "rejected": done["rejected"], "reused": True}

    source = plan["source"]
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:
        body = objects.open_range(
            bucket=source["bucket"], key=source["key"], etag=source["etag"], start=chunk.start, end=chunk.end
        )
        result = validate_chunk(
            raw=CountingReader(body),
            fmt=source["format"],
            header=plan["header"],
            chunk=chunk,
            keys=IdKeys(plan["keySeed"]),
            partitions=int(plan["partitions"]),
            directory=work,
            first_record=bool(item.get("firstRecord", chunk.index == 0)),
            late_duplicates=np.array(late, dtype=np.int64) if late else None,
        )
        document = result.summary_document()
        quarantine = objects.put_file(
            bucket=settings.data_bucket,
            key=layout.quarantine_key(job_id, plan_id, chunk.index),
            path=result.quarantine_path,
            content_type="application/x-ndjson",
        )
        document["quarantine"] = {"key": quarantine["key"], "rows": result.summary.rejected}
        for booking_date, entry in result.dates.items():
            uploaded = objects.put_file(
                bucket=bucket,
                key=layout.chunk_rows_key(job_id, plan_id, chunk.index, booking_date),
                path=entry["path"],
                content_type="application/vnd.apache.arrow.file",
            )
            document["dates"][booking_date]["key"] = uploaded["key"]
        if not item.get("late"):  # the occurrences are the same on the second pass
            for partition, (path, _) in result.keys.items():
                objects.put_file(
                    bucket=bucket,
                    key=layout.chunk_keys_key(job_id, plan_id, chunk.index, partition),
                    path=path,
                    content_type="application/vnd.apache.arrow.file",
                )
    document.update(planId=plan_id, lateDigest=digest, late=len(late))
    objects.put_json(bucket=bucket, key=summary_key, document=document)
    logger.info("chunk validated", extra={"chunk": chunk.index, "records": document["records"], "late": len(late)})
    return {"chunk": chunk.index, "rejected": document["rejected"], "reused": False}


def late_lines(*, bucket: str, job_id: str, plan: dict, chunk: int) -> list[int]:
    """Lines of this chunk whose id first occurs in an earlier chunk, from every id partition."""
    return late_lines_by_chunk(bucket=bucket, job_id=job_id, plan=plan).get(chunk, [])


def late_lines_by_chunk(*, bucket: str, job_id: str, plan: dict) -> dict[int, list[int]]:
    """Every chunk's late lines, each id partition's findings read once."""
    keys = [layout.duplicates_key(job_id, plan["planId"], p) for p in range(int(plan["partitions"]))]
    by_chunk: dict[int, list[int]] = {}
    for document in objects.parallel(lambda key: objects.get_json(bucket=bucket, key=key), keys):
        for chunk, lines in document["late"].items():
            by_chunk.setdefault(int(chunk), []).extend(lines)
    return {chunk: sorted(lines) for chunk, lines in by_chunk.items()}
