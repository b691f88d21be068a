"""Benchmark of the validate logic (and validate+transform) against a bare csv.reader loop.

    python bench/bench_validate.py [--size-mb 200] [--rss-sizes 50,200] [--work-dir DIR]
                                   [--markdown-out FILE]

Generates transaction CSVs (about 1% bad rows) outside the repository, runs every measurement in
a fresh subprocess and prints a markdown table: throughput in MB/s, ratio to the csv.reader
yardstick, and peak RSS of the subprocess (os.wait4 rusage, so each number is that run's own).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HEADER = "transaction_id,account_id,booked_at,amount,currency,direction,description\n"
CURRENCIES = [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("GBP", 2)]
BAD_VARIANTS = [
    lambda r: r.replace(",DEBIT,", ",SIDEWAYS,").replace(",CREDIT,", ",SIDEWAYS,"),
    lambda r: r.replace("T", " ", 1),  # booked_at without T separator (transaction ids have no "T")
    lambda r: r.split(",", 1)[0] + ",,",  # malformed: too few columns
]


def generate(path: str, *, size_mb: float, bad_ratio: float = 0.01, seed: int = 7) -> int:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    target = int(size_mb * 1_000_000)
    written = 0
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        while written < target:
            chunk = []
            for _ in range(10_000):
                currency, exponent = CURRENCIES[rows % len(CURRENCIES)]
                amount = str(rng.randrange(1, 10**7))
                if exponent:
                    amount += "." + str(rng.randrange(10**exponent)).zfill(exponent)
                row = (
                    f"{rows:012d}-{rng.randrange(10**6):06d},ACC{rng.randrange(10**6):08d},"
                    f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:"
                    f"{rng.randrange(60):02d}:{rng.randrange(60):02d}Z,{amount},{currency},"
                    f"{'DEBIT' if rng.random() < 0.5 else 'CREDIT'},payment reference {rng.randrange(10**9)}"
                )
                if rng.random() < bad_ratio:
                    row = BAD_VARIANTS[rows % len(BAD_VARIANTS)](row)
                chunk.append(row + "\n")
                rows += 1
            text = "".join(chunk)
            out.write(text)
            written += len(text)
    return rows


def measure(mode: str, path: str) -> dict:
    """Runs inside the subprocess."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    start = time.perf_counter()
    result: dict = {}
    if mode == "csv_reader":
        rows = 0
        with open(path, encoding="utf-8", newline="") as handle:
            for _ in csv.reader(handle):
                rows += 1
        result["rows"] = rows
    elif mode == "validate":
        from pipeline_cli.validate_cmd import validate_file

        summary, rejects = validate_file(path=path, fmt="csv")
        result.update(
            records=summary.records,
            valid=summary.valid,
            rejected=summary.rejected,
            totals=summary.valid_totals.amounts(),
        )
    elif mode == "validate_transform":
        from handlers.logic.duplicates import DuplicateTracker
        from handlers.logic.streams import CountingReader, open_text
        from handlers.logic.validation import STAGING_COLUMNS, StagingWriter, json_text, validate_text
        from handlers.transform import transform_staging

        with tempfile.TemporaryDirectory() as work:
            staging = os.path.join(work, "valid.csv")
            with (
                open(path, "rb") as raw,
                open(staging, "w", newline="", encoding="utf-8") as valid_file,
                open(os.path.join(work, "rejected.jsonl"), "w", encoding="utf-8") as rejected_file,
                DuplicateTracker(spill_dir=work) as duplicates,
            ):
                writer = StagingWriter(valid_file)
                writer.writerow(STAGING_COLUMNS)
                summary = validate_text(
                    text=open_text(CountingReader(raw)),
                    fmt="csv",
                    duplicates=duplicates,
                    on_valid=writer.writerow,
                    on_reject=lambda e: rejected_file.write(json_text(e) + "\n"),
                    on_valid_csv=valid_file.write,
                )
            import pyarrow as pa

            with pa.OSFile(staging) as raw:  # as the handler reads it: from local disk
                totals = transform_staging(source=raw, job_id="bench", directory=work).totals
            assert totals.amounts() == summary.valid_totals.amounts(), "transform totals differ"
        result.update(records=summary.records, valid=summary.valid)
    else:
        raise SystemExit(f"unknown mode {mode}")
    result["seconds"] = time.perf_counter() - start
    return result


def run_child(mode: str, path: str) -> dict:
    process = subprocess.Popen(  # noqa: S603 - runs this very script
        [sys.executable, os.path.abspath(__file__), "--measure", mode, path], stdout=subprocess.PIPE
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{mode} on {path} failed with exit code {process.returncode}")
    result = json.loads(output)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=200.0, help="throughput file size (default 200)")
    parser.add_argument("--rss-sizes", default="50,200", help="file sizes in MB for the peak RSS rows")
    parser.add_argument("--work-dir", default=None, help="where to write generated files (default: a temp dir)")
    parser.add_argument("--markdown-out", default=None, help="also write the markdown table section to this file")
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0

    work = args.work_dir or tempfile.mkdtemp(prefix="bench-validate-")
    os.makedirs(work, exist_ok=True)
    files = {}
    for size in sorted({args.size_mb, *(float(s) for s in args.rss_sizes.split(",") if s)}):
        path = os.path.join(work, f"transactions-{size:g}MB.csv")
        if not os.path.exists(path):
            generate(path, size_mb=size)
        files[size] = path

    main_file = files[args.size_mb]
    megabytes = os.path.getsize(main_file) / 1_000_000
    out: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        out.append(text)

    yardstick = run_child("csv_reader", main_file)
    emit(f"Input: generated transactions CSV, {megabytes:.1f} MB, {yardstick['rows'] - 1} rows, about 1% bad rows.")
    emit()
    emit("| measurement | MB/s | ratio to csv.reader | peak RSS MB |")
    emit("|---|---|---|---|")
    base = megabytes / yardstick["seconds"]
    emit(f"| bare csv.reader loop | {base:.1f} | 1.00x | {yardstick['peak_rss_mb']:.0f} |")
    for mode, label in (
        ("validate", "pipeline validate logic"),
        ("validate_transform", "validate + transform"),
    ):
        result = run_child(mode, main_file)
        speed = megabytes / result["seconds"]
        emit(f"| {label} | {speed:.1f} | {speed / base:.2f}x | {result['peak_rss_mb']:.0f} |")
    emit()
    emit("| input | mode | peak RSS MB |")
    emit("|---|---|---|")
    for size in sorted(float(s) for s in args.rss_sizes.split(",") if s):
        for mode in ("validate", "validate_transform"):
            emit(f"| {size:g} MB | {mode} | {run_child(mode, files[size])['peak_rss_mb']:.0f} |")
    if args.markdown_out:
        with open(args.markdown_out, "w", encoding="utf-8") as handle:
            handle.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
