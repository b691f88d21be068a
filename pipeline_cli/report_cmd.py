"""`pipeline report JOB_ID --out FILE.html`: the job's report, one HTML page that opens with no network."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from pipeline_cli.deployment import Deployment, DeploymentNotFound, default_suffix
from pipeline_cli.report import render_html
from pipeline_cli.report_data import FIRST_REJECTS, report_for_job

EXIT_WRITTEN = 0
EXIT_NO_JOB = 1
EXIT_USAGE = 2  # bad arguments, no deployment, the page could not be written


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a job's report as one self-contained HTML page",
        description="Write the report of a job (verdict and why, counts, rejects by reason and column, rows and "
        "exact totals per booking date and currency, the first rejected lines, lineage and stage times) as one "
        "HTML page that needs no network. Exit 0: written; 1: no such job; 2: bad arguments, no deployment, "
        "or the page could not be written.",
    )
    parser.add_argument("job_id", metavar="JOB_ID")
    parser.add_argument("--out", required=True, metavar="FILE.html", help="where to write the page")
    parser.add_argument(
        "--env", default=default_suffix(), help="environment suffix (default: $ENVIRONMENT_SUFFIX or dev)"
    )
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    try:
        deployment = Deployment.discover(args.env)
    except DeploymentNotFound as error:
        print(f"pipeline report: {error}", file=sys.stderr)
        return EXIT_USAGE
    model = report_for_job(deployment=deployment, job_id=args.job_id, first=FIRST_REJECTS)
    if model is None:
        print(f"pipeline report: no job {args.job_id!r} in table {deployment.table}", file=sys.stderr)
        return EXIT_NO_JOB
    try:
        write_page(args.out, render_html(model))
    except OSError as error:
        print(f"pipeline report: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.out}: report of job {args.job_id} ({model.verdict})")
    return EXIT_WRITTEN


def write_page(path: str, page: str) -> None:
    """Whole or not at all: written beside ``path`` under a temporary name, then renamed."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
