"""Transform memory does not grow with the input size: writing a booking date holds one row group
and that date's daily totals, whatever the number of rows and dates."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_cli.samples import write_bulk

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Peak RSS of the whole process moves by 20-50 MB between identical runs (Arrow's read-ahead
# thread, allocator retention), so growth is measured where the transform holds memory: Arrow's
# memory pool (every buffer of rows, partitions and totals) and the Python heap (tracemalloc).
# The child measures the dates' writing only (from one chunk's parts on disk, as the handler).
CHILD = """
import json, os, sys, tempfile, tracemalloc
sys.path.insert(0, {root!r})
import pyarrow
from handlers.logic.curated import write_date
from handlers.logic.localjob import validate_file
with tempfile.TemporaryDirectory(dir=sys.argv[2]) as work:
    job = validate_file(path=sys.argv[1], fmt="csv", directory=os.path.join(work, "chunks"))
    days = sorted(job.chunks[0].dates)
    pyarrow.default_memory_pool().release_unused()
    tracemalloc.start()
    base = pyarrow.default_memory_pool().bytes_allocated()
    for day in days:
        out = os.path.join(work, day)
        os.mkdir(out)
        write_date(parts=[job.chunks[0].dates[day]["path"]], job_id="mem", booking_date=day, directory=out)
    assert len(days) > 300
print(json.dumps({{
    "arrow": (pyarrow.default_memory_pool().max_memory() - base) / 2**20,
    "python": tracemalloc.get_traced_memory()[1] / 2**20,
}}))
"""


def _peaks_mb(path: str, work: str) -> dict[str, float]:
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", CHILD.format(root=ROOT), path, work], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow
def test_transform_memory_does_not_grow_with_file_size(tmp_path):
    peaks = {}
    for name, size in (("small", 16), ("large", 56)):
        source = str(tmp_path / f"{name}.csv")
        write_bulk(Path(source), size_mb=size)  # 336 booking dates, an account per 2 rows
        peaks[name] = _peaks_mb(source, str(tmp_path))
        os.remove(source)
    small, large = peaks["small"], peaks["large"]
    # 40 MB more input is about 400,000 more rows (~80 MB as Arrow columns): holding the rows, the
    # whole file's daily totals or one open Parquet writer per date would add that much or more.
    # Arrow's working set fills up to fixed sizes (SPILL_ROWS, the CSV read-ahead, row groups):
    # measured 28 -> 48 -> 58 MB at 16, 56 and 150 MB of input.
    # Whole-process RSS depends on the machine (transparent huge pages, allocator retention): it
    # is reported by `make bench`, not asserted here.
    assert large["arrow"] - small["arrow"] < 32, peaks
    assert large["python"] - small["python"] < 4, peaks
    assert large["arrow"] < 100, peaks
