"""Deploy times on the local emulator, through the same Make targets users run.

    python bench/bench_deploy.py [--markdown-out FILE]

A fresh emulator; then: full deploy of the four layers, a no-change deploy, a compute-only
redeploy after a handler change, and destroy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import publish  # noqa: E402
from local.workspace import Emulator, Target, Workspace  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown-out")
    args = parser.parse_args()
    workspace = Workspace("bench-deploy").create()
    emulator = Emulator.start(workspace)
    target = Target(emulator=emulator, workspace=workspace)
    rows: list[tuple[str, float]] = []
    try:
        started = time.perf_counter()
        target.make("deploy")
        rows.append(("full deploy, four layers (synth included)", time.perf_counter() - started))
        started = time.perf_counter()
        target.make("deploy")
        rows.append(("no-change deploy, four layers", time.perf_counter() - started))
        marker = target.root / "handlers" / "_bench_change.py"
        marker.write_text('"""A handler change made by the deploy benchmark."""\n')
        started = time.perf_counter()
        target.make("deploy-compute")
        rows.append(("compute-only redeploy after a handler change", time.perf_counter() - started))
        started = time.perf_counter()
        target.make("destroy")
        rows.append(("destroy, four layers in reverse", time.perf_counter() - started))
    finally:
        emulator.stop()
    table = "| on the local emulator | seconds |\n|---|---:|\n" + "".join(
        f"| {label} | {s:.1f} |\n" for label, s in rows
    )
    return publish(table, args.markdown_out)


if __name__ == "__main__":
    sys.exit(main())
