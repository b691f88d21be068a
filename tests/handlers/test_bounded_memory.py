"""Validation memory does not grow with the input size (duplicate state included)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from pipeline_cli.validate_cmd import validate_file
summary, _ = validate_file(path=sys.argv[1], fmt="csv")
assert summary.records > 0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _peak_rss_mb(path: str) -> int:
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", CHILD.format(root=ROOT), path], capture_output=True, text=True, check=True
    )
    return int(result.stdout.split()[-1])


@pytest.mark.slow
def test_validate_peak_rss_does_not_grow_with_file_size(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        from bench_validate import generate
    finally:
        sys.path.pop(0)
    small, large = str(tmp_path / "small.csv"), str(tmp_path / "large.csv")
    generate(small, size_mb=8)
    generate(large, size_mb=40)
    small_rss, large_rss = _peak_rss_mb(small), _peak_rss_mb(large)
    # 32 MB more input (320,000 more rows): the duplicate keys add 8 bytes per row (~2.5 MB);
    # anything holding rows, lines or Python strings per id would add far more than 25 MB.
    assert large_rss - small_rss < 25, (small_rss, large_rss)
    assert large_rss < 200, large_rss
