"""`pipeline run FILE`: upload a transactions file, start the pipeline on it, optionally follow it.

The upload itself starts the job (the EventBridge rule on incoming/); `pipeline run` starts it
too, for deployments or moments where that rule does not (its start and the upload's are the
same job: the second one ends as a duplicate).

A file whose bytes a job already holds (loaded, or queued or running) is not sent again: the
command says which job in one line and exits 3, unless ``--force``. Two copies sent at once both
pass that check; the pipeline still takes one and ends the other RESENT, which ``--wait`` reports
the same way.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from handlers.dal.jobs import SOURCE_MARKER_PREFIX
from handlers.jobflow import RESENT, holds_source
from handlers.logic.requests import JOB_ID_METADATA, JOB_ID_RULE, REPLACES_METADATA, job_id_for_object
from lake.layout import INCOMING, RAW
from pipeline_cli.deployment import Deployment, DeploymentNotFound, client, default_suffix
from pipeline_cli.progress import RunDisplay, follow_job, shows_progress, summary

EXIT_DONE = 0  # started; with --wait, LOADED or REJECTED (the summary says which)
EXIT_FAILED = 1  # with --wait: the job FAILED
EXIT_USAGE = 2  # bad arguments, unreadable file, no such deployment
EXIT_RESENT = 3  # the file's bytes are those of a job's file already loaded or running: nothing to do
HASH_BLOCK_BYTES = 1 << 20


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="upload a file and run the deployed pipeline on it",
        description="Upload a transactions file under incoming/ (raw/ with --force, where no upload starts a job) "
        "and start its job. Exit 0: started (with "
        "--wait: LOADED or REJECTED); 1: with --wait, the job FAILED; 2: bad arguments, unreadable file or "
        "no deployment; 3: the same bytes were already sent (loaded, or queued or running): nothing "
        "uploaded, unless --force.",
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--job-id", help="default: the file name and its upload (key and version)")
    parser.add_argument("--wait", action="store_true", help="follow the job and print its summary")
    parser.add_argument("--force", action="store_true", help="reprocess content already loaded by another job")
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="with --wait, no line per status and no progress on the terminal (shown on standard error only when "
        "that is a terminal); the job, its execution and its summary are still printed",
    )
    parser.add_argument(
        "--replaces",
        metavar="JOB",
        help="this file corrects JOB (which LOADED): its load replaces JOB's rows, and JOB becomes SUPERSEDED",
    )
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


def upload(
    deployment: Deployment,
    *,
    file: Path,
    job_id: str | None = None,
    replaces: str | None = None,
    under: str = INCOMING,
) -> dict[str, str]:
    """Put the file under incoming/ (named by its job if one is given, with the job it replaces as
    the upload's own metadata says it: the start its upload makes knows it too); its job's source.
    Under raw/ instead, no upload starts a job: only the caller's own start does."""
    key = f"{under}/{job_id or file.stem}/{file.name}"
    metadata = {JOB_ID_METADATA: job_id} if job_id else {}
    if replaces:
        metadata[REPLACES_METADATA] = replaces
    extra = {"Metadata": metadata} if metadata else {}
    with file.open("rb") as body:
        response = client("s3").put_object(Bucket=deployment.bucket, Key=key, Body=body, **extra)
    source = {"bucket": deployment.bucket, "key": key}
    if response.get("VersionId"):
        source["versionId"] = response["VersionId"]
    return source


def job_id_of(source: dict[str, str], job_id: str | None) -> str:
    return job_id or job_id_for_object(key=source["key"], version_id=source.get("versionId"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as body:
        while block := body.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def holder_of(deployment: Deployment, sha256: str) -> dict[str, Any] | None:
    """The job that holds these bytes (as plan decides it), if one does."""
    marker = deployment.job(SOURCE_MARKER_PREFIX + sha256) or {}
    owner = deployment.job(marker["ownerJobId"]) if marker.get("ownerJobId") else None
    return owner if holds_source((owner or {}).get("status")) else None


def replace_refusal(deployment: Deployment, replaced: str) -> str | None:
    """Why a correction of `replaced` would be refused (the pipeline checks again), or None."""
    if not JOB_ID_RULE.match(replaced):
        return "must be 1-64 characters of A-Z a-z 0-9 . _ : -"
    job = deployment.job(replaced)
    if job is None:
        return "no such job"
    if job.get("status") != "LOADED":
        successor = job.get("supersededBy")
        return f"that job is {job.get('status')}" + (f" (replaced by {successor})" if successor else "") + (
            "; only a LOADED job can be replaced"
        )
    return None


def resent_line(file: Path, *, original: str, status: str | None) -> str:
    return (
        f"pipeline run: {file} was already sent: job {original} ({status}) holds the same bytes; "
        "nothing new to load (--force to load it again)"
    )


def follow(deployment: Deployment, job_id: str, *, quiet: bool) -> dict[str, Any]:
    """The job's final record, its status lines printed on the way (none with ``quiet``) and, on a
    terminal, its progress shown below them."""
    if not shows_progress(quiet=quiet):
        return follow_job(deployment, job_id, say=(lambda _line: None) if quiet else print)
    with RunDisplay() as display:
        return follow_job(deployment, job_id, say=display.say, show=display.show)


def run(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"pipeline run: {args.file} is not a readable file", file=sys.stderr)
        return EXIT_USAGE
    if args.job_id is not None and not JOB_ID_RULE.match(args.job_id):
        print(f"pipeline run: --job-id {args.job_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ : -", file=sys.stderr)
        return EXIT_USAGE
    try:
        deployment = Deployment.discover(args.env)
    except DeploymentNotFound as error:
        print(f"pipeline run: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.replaces is not None:
        refused = replace_refusal(deployment, args.replaces)
        if refused:
            print(f"pipeline run: --replaces {args.replaces}: {refused}", file=sys.stderr)
            return EXIT_USAGE
    holder = None if args.force else holder_of(deployment, file_sha256(args.file))
    if holder is not None:
        print(resent_line(args.file, original=holder["jobId"], status=holder.get("status")), file=sys.stderr)
        return EXIT_RESENT
    # A forced run is started by this command alone: an upload under incoming/ would start the same job
    # unforced at the same moment, and of two such starts the plain one may register first and the
    # forced one take it over while the first still holds its admission.
    source = upload(
        deployment, file=args.file, job_id=args.job_id, replaces=args.replaces, under=RAW if args.force else INCOMING
    )
    job_id = job_id_of(source, args.job_id)
    job_input: dict[str, Any] = {"jobId": job_id, "source": source}
    if args.force:
        job_input["force"] = True
    if args.replaces:
        job_input["replaces"] = args.replaces
    execution_arn = start(deployment, job_input=job_input)
    print(f"job {job_id}: s3://{source['bucket']}/{source['key']}\nexecution {execution_arn}")
    if not args.wait:
        return EXIT_DONE
    job = follow(deployment, job_id, quiet=args.quiet)
    for line in summary(job, deployment=deployment):
        print(line)
    if job.get("status") == RESENT:
        original = job.get("originalJobId")
        print(
            resent_line(args.file, original=original, status=(deployment.job(original) or {}).get("status")),
            file=sys.stderr,
        )
        return EXIT_RESENT
    return EXIT_DONE if job.get("status") in ("LOADED", "REJECTED") else EXIT_FAILED
