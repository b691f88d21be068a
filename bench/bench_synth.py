"""Synthesis benchmark: the normal provider import path against the lean one, and Make's skip.

    python bench/bench_synth.py [--runs 3] [--markdown-out FILE]

Each synthesis runs `app.py` in a fresh interpreter (as `make synth` and `cdktf synth` do)
into a scratch directory; the no-change row times `make synth` right after a synth.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import publish  # noqa: E402


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def synth_seconds(*, full_import: bool, runs: int) -> list[float]:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as outdir:
            env = {**os.environ, "CDKTF_OUTDIR": outdir}
            if full_import:
                env["PIPELINE_FULL_PROVIDER_IMPORT"] = "1"
            results.append(timed([sys.executable, "app.py"], env))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown-out")
    args = parser.parse_args()
    env = dict(os.environ)
    subprocess.run(["make", "--no-print-directory", "synth"], cwd=ROOT, env=env, check=True, capture_output=True)
    no_change = [timed(["make", "--no-print-directory", "synth"], env) for _ in range(args.runs)]
    normal = synth_seconds(full_import=True, runs=args.runs)
    lean = synth_seconds(full_import=False, runs=args.runs)
    median_normal, median_lean = statistics.median(normal), statistics.median(lean)
    rows = [
        ("cold synthesis, normal provider import", median_normal, normal),
        ("cold synthesis, lean provider import", median_lean, lean),
        ("`make synth` with nothing changed", statistics.median(no_change), no_change),
    ]
    lines = [
        "| synthesis of all four stacks | median s | runs (s) |",
        "|---|---:|---|",
        *(f"| {label} | {median:.2f} | {', '.join(f'{r:.2f}' for r in runs)} |" for label, median, runs in rows),
        f"| lean / normal | {median_lean / median_normal:.2f}x | goal <= 0.25x |",
    ]
    return publish("\n".join(lines), args.markdown_out)


if __name__ == "__main__":
    sys.exit(main())
