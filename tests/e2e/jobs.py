"""Jobs through a local deployment, and the accounting every finished job must satisfy."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyiceberg.expressions import EqualTo

from handlers.dal.clients import reset_clients
from handlers.logic.requests import job_id_for_object
from lake import layout, schema
from local.workspace import SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.progress import follow_job
from pipeline_cli.run_cmd import job_id_of, start, upload
from pipeline_cli.samples import write_transactions

FINISHED = ("LOADED", "REJECTED", "FAILED")


def run_job(
    job_input: dict[str, Any], *, suffix: str = SUFFIX, replacing: str | None = None
) -> tuple[dict[str, Any], Deployment]:
    """Start a job by hand (as a start-execution from the command line does) and wait for it.
    With ``replacing`` (the run id of a finished run), wait for the new run to take the job over
    first: until then the job still shows the old run's end."""
    deployment = Deployment.discover(suffix)
    start(deployment, job_input=job_input)
    if replacing is not None:
        deadline = time.monotonic() + 300
        while (deployment.job(job_input["jobId"]) or {}).get("runId") == replacing:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new run took job {job_input['jobId']} over from run {replacing}")
            time.sleep(1)
    return follow_job(deployment, job_input["jobId"], say=lambda _line: None, timeout_seconds=600), deployment


# A day's file books a few dates. Spread over a year instead (the generator's default), a file
# loads a partition for every few rows, about 0.25 s each here: a scenario that is about dates
# says how many it needs.
DAYS = 3


def run_file(tmp: Path, name: str, *, rows: int, bad_every: int = 0, seed: int = 7, **options: Any):
    """A generated file through `pipeline run`'s path: upload, start, follow."""
    sample = write_transactions(tmp / f"{name}.csv", rows=rows, bad_every=bad_every, days=DAYS, seed=seed)
    deployment = Deployment.discover(SUFFIX)
    source = upload(deployment, file=sample)
    return run_job({"jobId": job_id_of(source, None), "source": source, **options})


def upload_only(target: Target, key: str, body: bytes, **extra: Any) -> str:
    """Put an object with the plain S3 API, and the job id its upload starts."""
    bucket = Deployment.discover(target.suffix).bucket
    version = target.client("s3").put_object(Bucket=bucket, Key=key, Body=body, **extra).get("VersionId")
    return job_id_for_object(key=key, version_id=version)


def wait_for_job(deployment: Deployment, job_id: str, *, timeout_seconds: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        job = deployment.job(job_id)
        if job and job.get("status") in FINISHED:
            return job
        time.sleep(1)
    raise TimeoutError(f"job {job_id} is {(deployment.job(job_id) or {}).get('status')} after {timeout_seconds} s")


def quarantined(target: Target, deployment: Deployment, job: dict[str, Any]) -> list[dict[str, Any]]:
    s3 = target.client("s3")
    plan = job["plan"]
    return [
        json.loads(line)
        for key in layout.quarantine_keys(job["jobId"], plan["planId"], int(plan["chunks"]))
        for line in s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read().splitlines()
    ]


def loaded_ids(target: Target, deployment: Deployment, job: dict[str, Any]) -> list[str]:
    s3 = target.client("s3")
    manifest = json.loads(s3.get_object(Bucket=deployment.bucket, Key=job["outputs"]["manifest"])["Body"].read())
    ids: list[str] = []
    for entry in manifest["files"]:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=deployment.bucket, Key=entry["key"])["Body"].read()))
        ids.extend(table.column("transaction_id").to_pylist())
    return ids


def assert_reconciled(target: Target, job: dict[str, Any], deployment: Deployment) -> None:
    """Rows received = loaded + quarantined; no row twice; the manifest matches the data; the
    published table holds exactly the job's rows, committed in the snapshot the manifest names."""
    counts = job["counts"]
    assert counts["received"] == counts["loaded"] + counts["rejected"]
    assert len(quarantined(target, deployment, job)) == counts["rejected"]
    ids = loaded_ids(target, deployment, job)
    assert len(ids) == len(set(ids)) == counts["loaded"]
    assert job["totals"]["loaded"] == job["totals"]["valid"]
    snapshot = job["outputs"]["snapshots"][schema.TRANSACTIONS.name]
    table = published_table(deployment, schema.TRANSACTIONS.name)
    rows = table.scan(row_filter=EqualTo("job_id", job["jobId"]), snapshot_id=int(snapshot)).to_arrow()
    assert sorted(rows.column("transaction_id").to_pylist()) == sorted(ids)
    now = table.scan(row_filter=EqualTo("job_id", job["jobId"])).count()
    assert now in (counts["loaded"], 0)  # 0 once a correction has replaced it


def published_table(deployment: Deployment, name: str) -> Any:
    """A published Iceberg table as a reader finds it: through the Glue catalog, read from S3."""
    from handlers.dal import ledger

    ledger.reset()  # this process's endpoint, not another test module's
    reset_clients()
    return ledger.catalog().load_table((deployment.database, name))


def published_versions(target: Target, deployment: Deployment, job_id: str) -> list[tuple[str, str]]:
    """Every version of the job's published files and manifest."""
    pages = target.client("s3").get_paginator("list_object_versions")
    return sorted(
        (v["Key"], v["VersionId"])
        for prefix in (f"{layout.PROCESSED}/", layout.manifest_key(job_id))
        for page in pages.paginate(Bucket=deployment.bucket, Prefix=prefix)
        for v in page.get("Versions", [])
        if job_id in v["Key"]
    )


def _marks(deployment: Deployment, job_id: str) -> tuple[str, ...]:
    """What names a job in an execution's input: its id, or (a start by its upload, whose input is
    the S3 event) its source object's key."""
    key = ((deployment.job(job_id) or {}).get("source") or {}).get("key")
    return (job_id, json.dumps(key)) if key else (job_id,)


def _of_job(execution_input: str, marks: tuple[str, ...]) -> bool:
    return any(mark in execution_input for mark in marks)


def settled(target: Target, deployment: Deployment, job_id: str, *, timeout_seconds: float = 300) -> None:
    """Wait until no execution of the job is running: a job is FAILED as soon as its first error
    is recorded, while its execution still releases the slot and sends the alert."""
    sfn = target.client("stepfunctions")
    marks = _marks(deployment, job_id)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        running = [
            e
            for e in sfn.list_executions(stateMachineArn=deployment.state_machine_arn, statusFilter="RUNNING")[
                "executions"
            ]
            if _of_job(sfn.describe_execution(executionArn=e["executionArn"]).get("input", ""), marks)
        ]
        if not running:
            return
        time.sleep(1)
    raise TimeoutError(f"an execution of job {job_id} still runs after {timeout_seconds} s")


def execution_story(target: Target, deployment: Deployment, job_id: str, *, last: int = 25) -> str:
    """The last steps of the job's executions, for an assertion's message."""
    sfn = target.client("stepfunctions")
    marks = _marks(deployment, job_id)
    lines = []
    for execution in sfn.list_executions(stateMachineArn=deployment.state_machine_arn)["executions"][:40]:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if not _of_job(described.get("input", ""), marks):
            continue
        events = sfn.get_execution_history(executionArn=execution["executionArn"], reverseOrder=True)["events"]
        lines.append(f"{execution['name']}: {described['status']}")
        for event in reversed(events[:last]):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            lines.append(f"  {event['type']} {json.dumps(details)[:300]}")
    return "\n".join(lines)
