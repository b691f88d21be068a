"""`pipeline run FILE`: upload a transactions file and start the pipeline on it."""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_cli.deployment import Deployment, DeploymentNotFound, client, default_suffix
from pipeline_cli.progress import follow, summary

_JOB_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="upload a file and run the deployed pipeline on it")
    parser.add_argument("file", type=Path)
    parser.add_argument("--job-id", help="default: the file name and a timestamp")
    parser.add_argument("--wait", action="store_true", help="follow the execution and print the job summary")
    parser.add_argument("--force", action="store_true", help="reprocess content already loaded by another job")
    parser.add_argument(
        "--env", default=default_suffix(), help="environment suffix (default: $ENVIRONMENT_SUFFIX or dev)"
    )
    parser.set_defaults(handler=run)


def start(deployment: Deployment, *, job_input: dict[str, Any]) -> str:
    """Start one execution; its name is unique even when a jobId is replayed."""
    name = f"{job_input['jobId'][:40]}-{uuid.uuid4().hex[:12]}".replace(":", "-").replace(".", "-")
    response = client("stepfunctions").start_execution(
        stateMachineArn=deployment.state_machine_arn, name=name, input=json.dumps(job_input)
    )
    return response["executionArn"]


def upload(deployment: Deployment, *, file: Path, job_id: str) -> dict[str, str]:
    key = f"incoming/{job_id}/{file.name}"
    client("s3").upload_file(str(file), deployment.bucket, key)
    return {"bucket": deployment.bucket, "key": key}


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"pipeline run: {args.file} is not a readable file", file=sys.stderr)
        return 2
    job_id = args.job_id or f"{args.file.stem}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    if not _JOB_ID.match(job_id):
        print(f"pipeline run: --job-id {job_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ : -", file=sys.stderr)
        return 2
    try:
        deployment = Deployment.discover(args.env)
    except DeploymentNotFound as error:
        print(f"pipeline run: {error}", file=sys.stderr)
        return 2
    source = upload(deployment, file=args.file, job_id=job_id)
    job_input: dict[str, Any] = {"jobId": job_id, "source": source}
    if args.force:
        job_input["force"] = True
    execution_arn = start(deployment, job_input=job_input)
    print(f"job {job_id}: s3://{source['bucket']}/{source['key']}\nexecution {execution_arn}")
    if not args.wait:
        return 0
    status = follow(execution_arn)
    for line in summary(deployment.job(job_id), deployment=deployment):
        print(line)
    return 0 if status == "SUCCEEDED" else 1
