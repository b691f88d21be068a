"""`pipeline run FILE`: upload a transactions file, start the pipeline on it, optionally follow it.

The upload itself starts the job (the EventBridge rule on incoming/); `pipeline run` starts it
too, for deployments or moments where that rule does not (its start and the upload's are the
same job: the second one ends as a duplicate).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from handlers.logic.requests import JOB_ID_METADATA, JOB_ID_RULE, job_id_for_object
from lake.layout import INCOMING
from pipeline_cli.deployment import Deployment, DeploymentNotFound, client, default_suffix
from pipeline_cli.progress import follow_job, summary


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="upload a file and run the deployed pipeline on it")
    parser.add_argument("file", type=Path)
    parser.add_argument("--job-id", help="default: the file name and its upload (key and version)")
    parser.add_argument("--wait", action="store_true", help="follow the job and print its summary")
    parser.add_argument("--force", action="store_true", help="reprocess content already loaded by another job")
    parser.add_argument(
        "--env", default=default_suffix(), help="environment suffix (default: $ENVIRONMENT_SUFFIX or dev)"
    )
    parser.set_defaults(handler=run)


def start(deployment: Deployment, *, job_input: dict[str, Any]) -> str:
    """Start one execution (named uniquely: a job may be started again)."""
    name = f"{job_input['jobId'][:40]}-{uuid.uuid4().hex[:12]}".replace(":", "-").replace(".", "-")
    response = client("stepfunctions").start_execution(
        stateMachineArn=deployment.state_machine_arn, name=name, input=json.dumps(job_input)
    )
    return response["executionArn"]


def upload(deployment: Deployment, *, file: Path, job_id: str | None = None) -> dict[str, str]:
    """Put the file under incoming/ (named by its job if one is given); the source of its job."""
    key = f"{INCOMING}/{job_id or file.stem}/{file.name}"
    extra = {"Metadata": {JOB_ID_METADATA: job_id}} if job_id else {}
    with file.open("rb") as body:
        response = client("s3").put_object(Bucket=deployment.bucket, Key=key, Body=body, **extra)
    source = {"bucket": deployment.bucket, "key": key}
    if response.get("VersionId"):
        source["versionId"] = response["VersionId"]
    return source


def job_id_of(source: dict[str, str], job_id: str | None) -> str:
    return job_id or job_id_for_object(key=source["key"], version_id=source.get("versionId"))


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"pipeline run: {args.file} is not a readable file", file=sys.stderr)
        return 2
    if args.job_id is not None and not JOB_ID_RULE.match(args.job_id):
        print(f"pipeline run: --job-id {args.job_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ : -", file=sys.stderr)
        return 2
    try:
        deployment = Deployment.discover(args.env)
    except DeploymentNotFound as error:
        print(f"pipeline run: {error}", file=sys.stderr)
        return 2
    source = upload(deployment, file=args.file, job_id=args.job_id)
    job_id = job_id_of(source, args.job_id)
    job_input: dict[str, Any] = {"jobId": job_id, "source": source}
    if args.force:
        job_input["force"] = True
    execution_arn = start(deployment, job_input=job_input)
    print(f"job {job_id}: s3://{source['bucket']}/{source['key']}\nexecution {execution_arn}")
    if not args.wait:
        return 0
    job = follow_job(deployment, job_id)
    for line in summary(job, deployment=deployment):
        print(line)
    return 0 if job.get("status") in ("LOADED", "REJECTED") else 1
