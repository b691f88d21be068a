"""Duplicates across chunks, for one partition of the transaction-id keys (an item of the second
Distributed Map; handlers/logic/dedupe.py)."""

from __future__ import annotations

import os
import tempfile

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import objects
from handlers.logic.chunkwork import read_keys
from handlers.logic.dedupe import late_occurrences
from handlers.observability import logger
from lake import layout


@jobflow.task("dedupe", statuses=(jobflow.RECEIVED,))
def lambda_handler(job: dict, event: dict, settings: Settings) -> dict:
    job_id, plan_id, bucket = job["jobId"], event["planId"], settings.work_bucket
    partition = int(event["partition"]["partition"])
    plan = objects.get_json(bucket=bucket, key=layout.plan_key(job_id, plan_id))
    chunks = [int(item["index"]) for item in plan["chunks"]]
    summaries = objects.parallel(
        lambda c: objects.get_json(bucket=bucket, key=layout.chunk_summary_key(job_id, plan_id, c)), chunks
    )
    holding = [s["chunk"] for s in summaries if s["idPartitions"].get(str(partition))]
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work:

        def fetch(chunk: int):
            path = os.path.join(work, f"{chunk}.arrow")
            objects.download_file(
                bucket=bucket, key=layout.chunk_keys_key(job_id, plan_id, chunk, partition), path=path
            )
            return chunk, read_keys(path)

        late = late_occurrences(objects.parallel(fetch, holding))
    document = {"partition": partition, "late": {str(chunk): lines for chunk, lines in late.items()}}
    objects.put_json(bucket=bucket, key=layout.duplicates_key(job_id, plan_id, partition), document=document)
    total = sum(len(lines) for lines in late.values())
    logger.info("duplicates across chunks", extra={"partition": partition, "late": total, "chunks": sorted(late)})
    return {"partition": partition, "late": total}
