"""`pipeline validate FILE`: the pipeline's own contract rules, run locally before upload."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator

from handlers.errors import InvalidInputError, ReconciliationError, UnreadableFileError
from handlers.logic.localjob import JobResult, ProgressCallback
from handlers.logic.localjob import validate_file as validate_in_chunks
from handlers.logic.validation import FORMATS, ValidationSummary, exceeds_threshold, format_from_name
from handlers.logic.values import parse_positive, parse_threshold
from lake.defaults import CHUNK_BYTES, REJECT_THRESHOLD
from pipeline_cli.progress import shows_progress, validate_display
from pipeline_cli.report import render_html
from pipeline_cli.report_cmd import write_page
from pipeline_cli.report_data import report_for_validation

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_UNREADABLE = 2
STDIN = "-"
COPY_BYTES = 1 << 20


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a transactions file against the data contract",
        description="Check a CSV or JSON Lines transactions file against the data contract. "
        "Exit 0: rejected share within the threshold; 1: above it; 2: the file could not be checked "
        "(unreadable input, report not written, bad arguments).",
    )
    parser.add_argument("file", metavar="FILE", help=f"the file, or {STDIN} for standard input (needs --format)")
    parser.add_argument("--format", choices=FORMATS, help="default: from the extension (.csv, .jsonl, .ndjson)")
    parser.add_argument("--report", metavar="OUT.json", help="write the full report (with every reject) here")
    parser.add_argument(
        "--html",
        metavar="OUT.html",
        help="write the file's report as one HTML page (pipeline report's, with per booking date figures)",
    )
    parser.add_argument(
        "--reject-threshold",
        default=os.environ.get("REJECT_THRESHOLD", REJECT_THRESHOLD),
        help=f"largest acceptable rejected share, 0..1 (default: $REJECT_THRESHOLD or {REJECT_THRESHOLD})",
    )
    parser.add_argument(
        "--jobs",
        default=os.cpu_count() or 1,
        help="processes validating chunks at once (default: this machine's cores)",
    )
    parser.add_argument(
        "--chunk-bytes",
        default=os.environ.get("CHUNK_BYTES", CHUNK_BYTES),
        help=f"bytes per chunk of the plan, as the pipeline cuts the file (default: $CHUNK_BYTES or {CHUNK_BYTES})",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress on the terminal (it is shown on standard error only when that is a terminal)",
    )
    parser.set_defaults(handler=run)


def validate_file(
    *, path: str, fmt: str, jobs: int = 1, chunk_bytes: int = CHUNK_BYTES
) -> tuple[ValidationSummary, list[dict]]:
    """The file's summary and its rejects, all in a list (a caller that can hold them)."""
    with checked_file(path=path, fmt=fmt, jobs=jobs, chunk_bytes=chunk_bytes) as result:
        return result.summary, [brief(entry) for entry in result.rejects()]


def brief(entry: dict) -> dict:
    """A reject as the JSON report lists it: its line, transaction id and reasons."""
    return {"line": entry["line"], "transaction_id": entry["transaction_id"], "reasons": entry["reasons"]}


@contextlib.contextmanager
def checked_file(
    *,
    path: str,
    fmt: str,
    jobs: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
    progress: ProgressCallback | None = None,
    stage_valid: bool = False,
) -> Iterator[JobResult]:
    """The file checked through the pipeline's own plan and chunk steps: its summary, and its
    rejects (``rejects()``, quarantine entries in line order, read from the chunks' files as they
    are iterated, within the ``with`` block: never all in memory). With ``stage_valid`` the chunks
    also keep their valid rows by booking date, whose figures the HTML report shows (slower).
    ``progress`` is told how far the check is (handlers/logic/localjob.py Progress)."""
    with tempfile.TemporaryDirectory() as work:
        path = _local_file(path, work)
        yield validate_in_chunks(
            path=path,
            fmt=fmt,
            directory=work,
            chunk_bytes=chunk_bytes,
            jobs=jobs,
            stage_valid=stage_valid,
            progress=progress,
        )


def _local_file(path: str, work: str) -> str:
    """A regular file to read ranges of: ``path`` itself, or a copy in ``work`` of what it holds when
    it is standard input, a pipe or a device (which can be read once only, from its start)."""
    if path != STDIN and os.path.isfile(path):
        return path
    copy = os.path.join(work, "stdin")
    with open(copy, "wb") as out:
        if path == STDIN:
            shutil.copyfileobj(sys.stdin.buffer, out, COPY_BYTES)
        else:
            with open(path, "rb") as source:  # opened once
                shutil.copyfileobj(source, out, COPY_BYTES)
    return copy


def write_report(path: str, head: dict, rejects: Iterable[dict]) -> None:
    """Whole or not at all: written next to ``path`` under a temporary name, then renamed. Streamed:
    the report's fields, then ``rejects`` one a line, as they come."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("{")
            for key, value in head.items():
                out.write(f"\n  {json.dumps(key)}: ")
                json.dump(value, out, ensure_ascii=False)
                out.write(",")
            out.write('\n  "rejects": [')
            separator = "\n    "
            for entry in rejects:
                out.write(separator)
                json.dump(entry, out, ensure_ascii=False)
                separator = ",\n    "
            out.write("\n  ]\n}\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def run(args: argparse.Namespace) -> int:
    """Exit 1 means only "above the threshold": every failure to check the file exits 2, with one
    line on stderr, so that a script never takes a crash for a rejected file."""
    try:
        return _run(args)
    except (InvalidInputError, UnreadableFileError, ReconciliationError, OSError, ValueError) as exc:
        print(f"pipeline validate: {args.file}: {exc}", file=sys.stderr)
    except Exception as exc:  # a bug must not exit 1 either
        print(f"pipeline validate: {args.file}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return EXIT_UNREADABLE


def _run(args: argparse.Namespace) -> int:
    threshold = parse_threshold(args.reject_threshold, setting="--reject-threshold")
    fmt = args.format or (format_from_name(args.file) if args.file != STDIN else None)
    if fmt is None:
        raise InvalidInputError(f"cannot tell the format of {args.file}; pass --format csv|jsonl")
    jobs = parse_positive(args.jobs, setting="--jobs")
    chunk_bytes = parse_positive(args.chunk_bytes, setting="--chunk-bytes")
    with (
        validate_display(show=shows_progress(quiet=args.quiet)) as progress,
        checked_file(
            path=args.file,
            fmt=fmt,
            jobs=jobs,
            chunk_bytes=chunk_bytes,
            progress=progress,
            stage_valid=args.html is not None,
        ) as result,
    ):
        summary = result.summary
        report = summary.to_dict()
        report["threshold"] = str(threshold)
        over = exceeds_threshold(rejected=summary.rejected, records=summary.records, threshold=threshold)
        report["result"] = "REJECTED" if over else "ACCEPTED"
        if args.report:
            try:
                write_report(args.report, report, (brief(entry) for entry in result.rejects()))
            except OSError as exc:
                raise OSError(f"cannot write the report {args.report}: {exc.strerror or exc}") from exc
        if args.html:
            page = report_for_validation(
                source=args.file,
                summary=summary.to_dict(),
                threshold=report["threshold"],
                verdict=report["result"],
                rejects=result.rejects(),
                chunk_dates_found=[chunk.dates for chunk in result.chunks],
            )
            try:
                write_page(args.html, render_html(page))
            except OSError as exc:
                raise OSError(f"cannot write the page {args.html}: {exc.strerror or exc}") from exc
    print(_summary_text(path=args.file, report=report))
    return EXIT_REJECTED if over else EXIT_OK


def _summary_text(*, path: str, report: dict) -> str:
    lines = [
        f"{path}: {report['records']} rows, {report['valid']} valid, {report['rejected']} rejected "
        f"(threshold {report['threshold']}) -> {report['result']}",
    ]
    for code, count in report["reasons"].items():
        lines.append(f"  {code}: {count}")
    for kind in ("valid", "rejected"):
        totals = report["totals"][kind]
        if totals:
            lines.append(f"  {kind} totals: " + ", ".join(f"{c} {a}" for c, a in totals.items()))
    if report["unknownColumns"]:
        lines.append("  unknown columns (kept in 'extra'): " + ", ".join(report["unknownColumns"]))
    return "\n".join(lines)
