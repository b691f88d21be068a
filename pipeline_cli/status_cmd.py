"""`pipeline status JOB_ID`: print a job's record (for a RESENT job, also the original job's status)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipeline_cli.deployment import Deployment, DeploymentNotFound, default_suffix


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="print the job record of a job")
    parser.add_argument("job_id")
    parser.add_argument(
        "--env", default=default_suffix(), help="environment suffix (default: $ENVIRONMENT_SUFFIX or dev)"
    )
    parser.set_defaults(handler=status)


def status(args: argparse.Namespace) -> int:
    try:
        deployment = Deployment.discover(args.env)
    except DeploymentNotFound as error:
        print(f"pipeline status: {error}", file=sys.stderr)
        return 2
    job = deployment.job(args.job_id)
    if job is None:
        print(f"pipeline status: no job {args.job_id!r} in table {deployment.table}", file=sys.stderr)
        return 1
    job.pop("results", None)  # stage outputs, kept for idempotent retries; noise here
    if job.get("status") == "QUEUED":
        job["placeInQueue"] = deployment.place(job)  # 1: the next job to start
    if job.get("originalJobId"):  # RESENT: the job that holds the same bytes, as it is now
        original = deployment.job(job["originalJobId"]) or {}
        job["originalJob"] = {"jobId": job["originalJobId"], "status": original.get("status")}
    print(json.dumps(job, indent=2, sort_keys=True))
    return 0
