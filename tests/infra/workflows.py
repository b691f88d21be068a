"""The delivery pipeline's workflow files as data, for tests that check them and tests that run their steps."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return workflow


def make_steps(name: str, job: str) -> list[list[str]]:
    """The arguments of each `make` that the job runs, in order."""
    steps = load(name)["jobs"][job]["steps"]
    return [shlex.split(step["run"])[1:] for step in steps if step.get("run", "").startswith("make ")]
