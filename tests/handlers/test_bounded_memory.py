"""Validation memory does not grow with the input size: chunks of a fixed size are validated one
after the other (the job-wide duplicate step included)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_cli.samples import write_bulk

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The child reports its own peak (VmHWM): the rusage of a child spawned by vfork starts at its
# parent's peak, and a test worker that ran the synthesis tests is larger than validation.
CHILD = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
from handlers.logic.localjob import validate_file
with tempfile.TemporaryDirectory() as work:
    job = validate_file(path=sys.argv[1], fmt="csv", directory=work, chunk_bytes=4 << 20, partition_records=50_000)
    assert job.summary.records > 0 and len(job.plan.chunks) > 1
print(int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) // 1024)
"""


def _peak_rss_mb(path: str) -> int:
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", CHILD.format(root=ROOT), path], capture_output=True, text=True, check=True
    )
    return int(result.stdout.split()[-1])


@pytest.mark.slow
def test_validate_peak_rss_does_not_grow_with_file_size(tmp_path):
    small, large = str(tmp_path / "small.csv"), str(tmp_path / "large.csv")
    write_bulk(Path(small), size_mb=8)
    write_bulk(Path(large), size_mb=40)
    small_rss, large_rss = _peak_rss_mb(small), _peak_rss_mb(large)
    # 32 MB more input (320,000 more rows, 8 more chunks of 4 MB, 6 more id partitions of 50,000):
    # a chunk's work is done with when the next starts, and the duplicate step holds one partition
    # at a time; anything holding rows or ids of the whole file would add far more than 25 MB.
    assert large_rss - small_rss < 25, (small_rss, large_rss)
    assert large_rss < 200, large_rss


def _pool_after_import(environment: dict[str, str]) -> str:
    code = f"import sys; sys.path.insert(0, {ROOT!r}); import handlers, pyarrow as pa; "
    code += "print(pa.default_memory_pool().backend_name)"
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | environment
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)  # noqa: S603
    return result.stdout.strip()


def test_the_handlers_give_arrow_an_allocator_that_returns_freed_memory_unless_told_otherwise():
    assert _pool_after_import({}) == "system"
    assert _pool_after_import({"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}) == "mimalloc"
