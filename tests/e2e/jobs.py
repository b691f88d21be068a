"""Jobs through the shared `e2e` deployment, and the accounting every finished job must satisfy."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from local.workspace import SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.progress import follow
from pipeline_cli.run_cmd import start, upload
from pipeline_cli.samples import write_transactions


def run_job(job_input: dict[str, Any]) -> tuple[str, dict[str, Any], Deployment]:
    deployment = Deployment.discover(SUFFIX)
    status = follow(start(deployment, job_input=job_input), say=lambda _line: None, timeout_seconds=300)
    job = deployment.job(job_input["jobId"])
    assert job is not None
    return status, job, deployment


def run_file(tmp: Path, job_id: str, *, rows: int, bad_every: int = 0, seed: int = 7) -> tuple[str, dict, Deployment]:
    sample = write_transactions(tmp / f"{job_id}.csv", rows=rows, bad_every=bad_every, seed=seed)
    deployment = Deployment.discover(SUFFIX)
    return run_job({"jobId": job_id, "source": upload(deployment, file=sample, job_id=job_id)})


def assert_reconciled(target: Target, job: dict[str, Any], deployment: Deployment) -> None:
    """Rows received = loaded + quarantined; no row twice; the manifest matches the data."""
    counts = job["counts"]
    assert counts["received"] == counts["loaded"] + counts["rejected"]
    s3 = target.client("s3")
    manifest = json.loads(s3.get_object(Bucket=deployment.bucket, Key=job["outputs"]["manifest"])["Body"].read())
    ids: list[str] = []
    for entry in manifest["files"]:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=deployment.bucket, Key=entry["key"])["Body"].read()))
        ids.extend(table.column("transaction_id").to_pylist())
    assert len(ids) == len(set(ids)) == counts["loaded"]
    assert job["totals"]["loaded"] == job["totals"]["valid"]
