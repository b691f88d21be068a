"""The static policy gate's fixtures: checkov runs once per session on each synth (tests/conftest.py
synthesizes each environment)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.infra import synth

SCAN_PYTHON = PROJECT_ROOT / ".venv-scan" / "bin" / "python"
GATE = PROJECT_ROOT / "checkov" / "run_gate.py"


def run_gate(stacks_dir: Path) -> tuple[int, dict, str]:
    if not SCAN_PYTHON.exists():
        pytest.fail("checkov's venv is missing: run `make install` (it creates .venv-scan)")
    result = subprocess.run(
        [str(SCAN_PYTHON), str(GATE), str(stacks_dir)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
    )
    try:
        verdict = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"the gate printed no verdict (exit {result.returncode}): {result.stderr[-3000:]}")
    return result.returncode, verdict, result.stderr


@pytest.fixture(scope="session")
def gate(synthesized: synth.Synth) -> tuple[int, dict, str]:
    return run_gate(synthesized.outdir / "stacks")


@pytest.fixture(scope="session")
def prod_gate(prod_synthesized: synth.Synth) -> tuple[int, dict, str]:
    return run_gate(prod_synthesized.outdir / "stacks")
