"""Time and memory of the operator's tools (issue 29), each at three file sizes: the HTML page of a
checked file against the check alone, the rejects cut out of the source, and the fixed rejects
put back into it.

Generated daily files (`write_bulk`, 1% bad rows, three booking dates). Each measurement runs in a
fresh subprocess, which reports its own wall time and peak RSS (VmHWM):

* `pipeline validate FILE --jobs 1 --quiet`, then the same with `--html OUT` (its chunks keep their
  rows by booking date for the page's per-date figures);
* `export_rejects` (what `pipeline rejects JOB --out FILE` runs, here over the local file instead
  of the S3 object) of the rejects the check found;
* `splice_fixed` (`pipeline rejects JOB --fixed FIXED --out CORRECTED`) of that export, sent back
  unchanged: the corrected source is the source, byte for byte (checked).

    python bench/bench_operator.py [--sizes 50 100 200] [--markdown-out build/bench/operator.md]
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
from pipeline_cli.samples import write_bulk  # noqa: E402

PREAMBLE = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
def measured(seconds, **extra):
    status = Path("/proc/self/status").read_text()
    rss = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({{"seconds": seconds, "rss": rss, **extra}}))
"""

VALIDATE = """
from pipeline_cli.main import main
started = time.perf_counter()
code = main(["validate", sys.argv[1], "--jobs", "1", "--quiet", *sys.argv[2:]])
measured(time.perf_counter() - started, code=code)
"""

# The rejects as the quarantine lists them (in line order), kept in a file for the next children.
REJECTS = """
import tempfile
from handlers.logic.localjob import validate_file
with tempfile.TemporaryDirectory() as work, open(sys.argv[2], "w") as out:
    for entry in validate_file(path=sys.argv[1], fmt="csv", directory=work, stage_valid=False).rejects():
        out.write(json.dumps(entry) + "\\n")
"""

EXPORT = """
from handlers.logic.localjob import file_blocks
from pipeline_cli.rejects import export_rejects
rejects = (json.loads(line) for line in open(sys.argv[2]))
started = time.perf_counter()
with open(sys.argv[3], "wb") as out, open(sys.argv[3] + ".reasons.csv", "w", newline="") as side:
    result = export_rejects(blocks=file_blocks(sys.argv[1]), fmt="csv", rejects=rejects, out=out, side=side)
measured(time.perf_counter() - started, records=result.exported)
"""

SPLICE = """
from handlers.logic.localjob import file_blocks
from pipeline_cli.rejects import fixed_records, source_header, splice_fixed, splice_refusal
rejects = (json.loads(line) for line in open(sys.argv[2]))
started = time.perf_counter()
with open(sys.argv[4], "wb") as out:
    result = splice_fixed(
        blocks=file_blocks(sys.argv[1]),
        fmt="csv",
        rejects=rejects,
        fixed=fixed_records(file_blocks(sys.argv[3]), fmt="csv", header=source_header(file_blocks(sys.argv[1]))),
        out=out,
    )
seconds = time.perf_counter() - started
assert splice_refusal(result, sha256=None) is None
measured(seconds, records=result.replaced)
"""


def child(script: str, *arguments: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PREAMBLE.format(root=str(ROOT)) + script, *arguments],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def same_bytes(first: Path, second: Path) -> bool:
    with first.open("rb") as one, second.open("rb") as other:
        while True:
            block = one.read(1 << 20)
            if block != other.read(1 << 20):
                return False
            if not block:
                return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200], help="file sizes, MB")
    parser.add_argument("--markdown-out")
    args = parser.parse_args()
    rows = [
        "| file MB | rows | rejects | validate s / MB | validate --html s / MB | rejects export s / MB "
        "| fixed put back s / MB |",
        "|---:|---:|---:|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        for size in args.sizes:
            source, rejects = folder / f"day-{size}.csv", folder / f"rejects-{size}.jsonl"
            written = write_bulk(source, size_mb=size, bad_every=100, days=3)
            megabytes = os.path.getsize(source) / 1e6
            plain = child(VALIDATE, str(source))
            page = child(VALIDATE, str(source), "--html", str(folder / "page.html"))
            child(REJECTS, str(source), str(rejects))
            exported = child(EXPORT, str(source), str(rejects), str(folder / "rejects.csv"))
            corrected = folder / "corrected.csv"
            spliced = child(SPLICE, str(source), str(rejects), str(folder / "rejects.csv"), str(corrected))
            assert exported["records"] == spliced["records"] and same_bytes(source, corrected)

            def cell(result: dict, megabytes: float = megabytes) -> str:
                return f"{result['seconds']:.2f} s, {result['seconds'] / megabytes:.3f}, {result['rss']:.0f} MB"

            rows.append(
                f"| {megabytes:,.0f} | {written:,} | {exported['records']:,} | {cell(plain)} | {cell(page)} | "
                f"{cell(exported)} | {cell(spliced)} |"
            )
            print(rows[-1], file=sys.stderr)
    note = (
        "\nEach cell: seconds, seconds per MB, peak RSS of its own fresh interpreter (about 100 MB of it the "
        "interpreter, pyarrow and numpy). `--html` costs the per-date staging of the valid rows the page's "
        "figures come from; the export and the splice read the whole source once (hashing it, as the command "
        "checks it against the job's) and hold one block and one record at a time. The corrected source equals the "
        "source when the export is sent back unchanged (checked at every size).\n"
    )
    return publish("\n".join(rows) + "\n" + note, args.markdown_out)


if __name__ == "__main__":
    sys.exit(main())
