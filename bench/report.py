"""Assemble docs/benchmarks.md from the sections `make bench` wrote, with the machine they ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

SECTIONS = (
    ("synth", "Synthesis", "`python bench/bench_synth.py`: each synthesis in a fresh interpreter, median of 3."),
    (
        "deploy",
        "Deploys on the local emulator",
        "`python bench/bench_deploy.py`: real Terraform against a fresh "
        "emulator, through the Make targets. The provider waits ~55 s on each S3 lifecycle configuration, against AWS "
        "as much as against the emulator.",
    ),
    (
        "chunks",
        "Chunk work, memory, `--jobs` and a 500 GB day",
        "`python bench/bench_chunks.py`: generated daily files (about 1% bad rows, three booking dates); "
        "each measurement in a fresh subprocess, peak RSS its own.",
    ),
    (
        "load",
        "Load through the local deployment",
        "`python bench/bench_load.py`: uploads with the plain S3 API, started by their upload events, "
        "on a fresh local deployment; this machine's two cores run every invocation.",
    ),
    (
        "hostile",
        "Hostile input: time and memory per input class",
        "`python bench/bench_hostile.py`: the budget of issue 25, each class at three sizes, each file "
        "through `pipeline validate` in a fresh subprocess, peak RSS its own.",
    ),
    (
        "operator",
        "The operator's tools: the report's page, rejects out and back",
        "`python bench/bench_operator.py`: generated daily files (1% bad rows, three booking dates); "
        "`pipeline validate` with and without `--html`, the rejects' export and the fixed ones put back, "
        "each in a fresh subprocess, peak RSS its own.",
    ),
)


def publish(table: str, markdown_out: str | None) -> int:
    """Print a benchmark's section and keep it for docs/benchmarks.md (`make bench`)."""
    table = table.rstrip("\n") + "\n"
    print(table)
    if markdown_out:
        Path(markdown_out).write_text(table)
    return 0


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    terraform = subprocess.run(["terraform", "version"], capture_output=True, text=True).stdout.splitlines()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kib / 1024 / 1024:.0f} GiB, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}, {terraform}"
    )


def main() -> int:
    results = Path(sys.argv[1])
    print("# Benchmarks\n")
    print(f"Measured by `make bench` on {datetime.now(UTC):%Y-%m-%d}: {machine()}.\n")
    for name, title, how in SECTIONS:
        section = results / f"{name}.md"
        if section.exists():
            print(f"## {title}\n\n{how}\n\n{section.read_text().strip()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
