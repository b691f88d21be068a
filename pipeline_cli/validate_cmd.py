"""`pipeline validate FILE`: the pipeline's own contract rules, run locally before upload."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from handlers.config import DEFAULT_REJECT_THRESHOLD, parse_threshold
from handlers.errors import InvalidInputError, UnreadableFileError
from handlers.logic.duplicates import DuplicateTracker
from handlers.logic.streams import CountingReader, open_text
from handlers.logic.validation import (
    FORMATS,
    ValidationSummary,
    exceeds_threshold,
    format_from_name,
    validate_text,
)

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_UNREADABLE = 2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a transactions file against the data contract",
        description="Check a CSV or JSON Lines transactions file against the data contract. "
        "Exit 0: rejected share within the threshold; 1: above it; 2: unreadable file or bad arguments.",
    )
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--format", choices=FORMATS, help="default: from the extension (.csv, .jsonl, .ndjson)")
    parser.add_argument("--report", metavar="OUT.json", help="write the full report (with every reject) here")
    parser.add_argument(
        "--reject-threshold",
        default=os.environ.get("REJECT_THRESHOLD", DEFAULT_REJECT_THRESHOLD),
        help="largest acceptable rejected share, 0..1 (default: $REJECT_THRESHOLD or 0.05)",
    )
    parser.set_defaults(handler=run)


def validate_file(*, path: str, fmt: str) -> tuple[ValidationSummary, list[dict]]:
    rejects: list[dict] = []

    def keep(entry: dict) -> None:
        rejects.append({"line": entry["line"], "transaction_id": entry["transaction_id"], "reasons": entry["reasons"]})

    with (
        open(path, "rb") as raw,
        tempfile.TemporaryDirectory() as work,
        DuplicateTracker(spill_dir=work) as dup,
    ):
        summary = validate_text(text=open_text(CountingReader(raw)), fmt=fmt, duplicates=dup, on_reject=keep)
    return summary, rejects


def run(args: argparse.Namespace) -> int:
    try:
        threshold = parse_threshold(args.reject_threshold, setting="--reject-threshold")
        fmt = args.format or format_from_name(args.file)
        if fmt is None:
            raise InvalidInputError(f"cannot tell the format of {args.file}; pass --format csv|jsonl")
        summary, rejects = validate_file(path=args.file, fmt=fmt)
    except (InvalidInputError, UnreadableFileError, OSError) as exc:
        print(f"pipeline validate: {args.file}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE

    report = summary.to_dict()
    report["rejects"] = rejects
    report["threshold"] = str(threshold)
    over = exceeds_threshold(rejected=summary.rejected, records=summary.records, threshold=threshold)
    report["result"] = "REJECTED" if over else "ACCEPTED"
    if args.report:
        with open(args.report, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2, ensure_ascii=False)
            out.write("\n")
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
