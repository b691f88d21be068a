"""`pipeline rejects JOB --out FILE`: a job's rejected records, as the producer sent them, to fix
and send back.

The records come out of the job's source object (the version the job read), framed as the plan
framed them (``pipeline_cli/rejects.py``); the quarantine, chunk by chunk, says which lines. The
source is read whole: its SHA-256 must be the one the job's plan read, and every quarantined line
must start a record of it, or nothing is written. Both files are written under temporary names
and renamed once complete.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from handlers.dal.objects import blocks
from handlers.jobflow import RESENT
from handlers.logic.planning import SCAN_BLOCK_BYTES
from handlers.logic.validation import CSV_FORMAT
from lake import layout
from pipeline_cli.deployment import Deployment, DeploymentNotFound, client, default_suffix
from pipeline_cli.rejects import (
    SIDE_COLUMNS,
    FixedFileRefused,
    RejectsOutOfOrder,
    export_rejects,
    fixed_records,
    refusal,
    source_header,
    splice_fixed,
    splice_refusal,
)

EXIT_OK = 0
EXIT_NO_REJECTS_RECORD = 1  # no such job, or the job has no final quarantine (never validated)
EXIT_REFUSED = 2  # bad arguments, no deployment, or the source or quarantine is not the job's
QUARANTINE_BLOCK_BYTES = 1 << 20
SIDE_SUFFIX = ".reasons.csv"


class NoRejectsRecord(Exception):
    """The job has no quarantine to export (exit 1)."""


class Refused(Exception):
    """The export cannot be made as the job saw it (exit 2)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rejects",
        help="write a job's rejected records in the source's own format, to fix and send back",
        description="Write the rejected records of JOB to FILE as they were in its source: the same format "
        "and bytes (the source's BOM first if it had one; CSV: then its header record, as its bytes; JSON Lines: "
        "no header), in line order, each record whole with its own line end. Beside it, a CSV (default "
        f"FILE{SIDE_SUFFIX}) of one row per record: {', '.join(SIDE_COLUMNS)} (line: where the record starts "
        "in FILE; source_line: in the source; reasons: ';'-joined, in the contract's order). "
        "Fixed (each record in place, none added or removed), FILE gives JOB's corrected source: "
        "`pipeline rejects JOB --fixed FILE --out CORRECTED` writes the source with each rejected record "
        "replaced by its fixed one, the rest byte for byte; send that with `pipeline run CORRECTED --replaces "
        "JOB` (a LOADED job: its rows are replaced in one commit) or `pipeline run CORRECTED` (a REJECTED job). "
        "Exit 0: written (a job without rejects gives FILE with the header only); 1: no such job, or the job "
        "has no rejects record (never validated); 2: bad arguments, no deployment, or the source or "
        "quarantine is not the one the job read (nothing written).",
    )
    parser.add_argument("job_id", metavar="JOB")
    parser.add_argument(
        "--out",
        metavar="FILE",
        required=True,
        help="the rejected records, in the source's format (with --fixed: the corrected source)",
    )
    parser.add_argument(
        "--fixed",
        metavar="FIXED",
        help="the export, fixed: write to --out the job's source with each rejected record replaced by its fixed one",
    )
    parser.add_argument(
        "--reasons", metavar="PATH", help=f"one row per exported record with its reasons (default: FILE{SIDE_SUFFIX})"
    )
    parser.add_argument(
        "--env", default=default_suffix(), help="environment suffix (default: $ENVIRONMENT_SUFFIX or dev)"
    )
    parser.set_defaults(handler=rejects)


def quarantine_of(job: dict) -> tuple[list[str], int]:
    """The job's quarantine parts (in line order) and its rejected count, once validation is final."""
    job_id, status = job["jobId"], job.get("status")
    if status == RESENT:
        raise NoRejectsRecord(
            f"job {job_id} is RESENT: its bytes are those of job {job.get('originalJobId')}, whose rejects these are"
        )
    plan = job.get("plan") or {}
    if not plan.get("planId"):
        raise NoRejectsRecord(f"job {job_id} is {status} and was never planned: none of its records was validated")
    if not (job.get("outputs") or {}).get("quarantine"):
        raise NoRejectsRecord(f"job {job_id} is {status}: its rejects are known once its validation is summarized")
    counts = job.get("counts") or {}
    return layout.quarantine_keys(job_id, plan["planId"], int(plan["chunks"])), int(counts.get("rejected") or 0)


def source_blocks(source: dict) -> Iterator[bytes]:
    """The source object the job read (its version, when it has one), in blocks."""
    extra = {"VersionId": source["versionId"]} if source.get("versionId") else {}
    where = f"s3://{source['bucket']}/{source['key']}" + (f" version {source['versionId']}" if extra else "")
    try:
        body = client("s3").get_object(Bucket=source["bucket"], Key=source["key"], **extra)["Body"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        hint = " (archived: restore it first)" if code == "InvalidObjectState" else ""
        raise Refused(f"cannot read the source {where}: {code}{hint}") from error
    yield from blocks(body, SCAN_BLOCK_BYTES)


def quarantined(bucket: str, keys: list[str]) -> Iterator[dict]:
    """The rejects of the quarantine parts, in order, streamed a line at a time."""
    for key in keys:
        try:
            body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as error:
            raise Refused(f"cannot read the quarantine part s3://{bucket}/{key}: {error}") from error
        rest = b""
        for data in blocks(body, QUARANTINE_BLOCK_BYTES):
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            yield from (json.loads(line) for line in lines if line.strip())
        if rest.strip():
            yield json.loads(rest)


def _temporary(path: str) -> str:
    handle, name = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".rejects-", suffix=".tmp")
    os.close(handle)
    return name


def export(deployment: Deployment, *, job: dict, out: str, reasons: str) -> int:
    """Write the job's rejects to ``out`` and ``reasons``, whole or not at all; the records written."""
    keys, rejected = quarantine_of(job)
    source = job.get("source") or {}
    temporary = {out: _temporary(out), reasons: _temporary(reasons)}
    try:
        with open(temporary[out], "wb") as sink, open(temporary[reasons], "w", encoding="utf-8", newline="") as side:
            result = export_rejects(
                blocks=source_blocks(source),
                fmt=source["format"],
                rejects=quarantined(deployment.bucket, keys),
                out=sink,
                side=side,
            )
        refused = refusal(result, sha256=source.get("sha256"), rejected=rejected)
        if refused:
            raise Refused(f"{refused}; nothing written")
        for final, written in temporary.items():
            os.replace(written, final)
        return result.exported
    except RejectsOutOfOrder as error:
        raise Refused(f"its quarantine is not in line order ({error}); nothing written") from error
    finally:
        for written in temporary.values():
            if os.path.exists(written):
                os.unlink(written)


def correct(deployment: Deployment, *, job: dict, fixed: str, out: str) -> int:
    """Write the job's source with each rejected record replaced by the fixed file's next, whole or
    not at all; the records replaced."""
    keys, _rejected = quarantine_of(job)
    source = job.get("source") or {}
    fmt = source["format"]
    header = source_header(source_blocks(source)) if fmt == CSV_FORMAT else None
    temporary = _temporary(out)
    try:
        with open(fixed, "rb") as sent, open(temporary, "wb") as sink:
            result = splice_fixed(
                blocks=source_blocks(source),
                fmt=fmt,
                rejects=quarantined(deployment.bucket, keys),
                fixed=fixed_records(iter(lambda: sent.read(SCAN_BLOCK_BYTES), b""), fmt=fmt, header=header),
                out=sink,
            )
        refused = splice_refusal(result, sha256=source.get("sha256"))
        if refused:
            raise Refused(f"{refused}; nothing written")
        os.replace(temporary, out)
        return result.replaced
    except FixedFileRefused as error:
        raise Refused(f"{fixed}: {error}; nothing written") from error
    except RejectsOutOfOrder as error:
        raise Refused(f"its quarantine is not in line order ({error}); nothing written") from error
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def send_back(job: dict, corrected: str) -> str:
    """The command that sends the corrected source: a correction of a LOADED job, else a new job."""
    if job.get("status") == "LOADED":
        return f"pipeline run {corrected} --replaces {job['jobId']}"
    return f"pipeline run {corrected}"


def rejects(args: argparse.Namespace) -> int:
    reasons = args.reasons or args.out + SIDE_SUFFIX
    if os.path.abspath(reasons) == os.path.abspath(args.out):
        print("pipeline rejects: --reasons must be another file than --out", file=sys.stderr)
        return EXIT_REFUSED
    for path in (args.out, reasons):
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            print(f"pipeline rejects: {path}: no such directory", file=sys.stderr)
            return EXIT_REFUSED
    try:
        deployment = Deployment.discover(args.env)
    except DeploymentNotFound as error:
        print(f"pipeline rejects: {error}", file=sys.stderr)
        return EXIT_REFUSED
    job = deployment.job(args.job_id)
    if job is None:
        print(f"pipeline rejects: no job {args.job_id!r} in table {deployment.table}", file=sys.stderr)
        return EXIT_NO_REJECTS_RECORD
    if args.fixed is not None:
        return _corrected(args, deployment=deployment, job=job)
    try:
        records = export(deployment, job=job, out=args.out, reasons=reasons)
    except NoRejectsRecord as error:
        print(f"pipeline rejects: {error}", file=sys.stderr)
        return EXIT_NO_REJECTS_RECORD
    except (Refused, OSError) as error:
        print(f"pipeline rejects: job {args.job_id}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    if records:
        print(f"job {args.job_id}: {records} rejected records in {args.out}, their reasons in {reasons}")
    else:
        kept = "the header only" if job["source"].get("format") == CSV_FORMAT else "no record"
        print(f"job {args.job_id}: no rejected records; {args.out} holds {kept}")
    return EXIT_OK


def _corrected(args: argparse.Namespace, *, deployment: Deployment, job: dict) -> int:
    if not os.path.isfile(args.fixed):
        print(f"pipeline rejects: --fixed {args.fixed} is not a readable file", file=sys.stderr)
        return EXIT_REFUSED
    try:
        replaced = correct(deployment, job=job, fixed=args.fixed, out=args.out)
    except NoRejectsRecord as error:
        print(f"pipeline rejects: {error}", file=sys.stderr)
        return EXIT_NO_REJECTS_RECORD
    except (Refused, OSError) as error:
        print(f"pipeline rejects: job {args.job_id}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(
        f"job {args.job_id}: {args.out} is its source with {replaced} rejected records replaced by {args.fixed}'s; "
        f"send it: {send_back(job, args.out)}"
    )
    return EXIT_OK
