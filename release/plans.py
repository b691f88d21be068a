#!/usr/bin/env python3
"""Plan every layer of one environment and say, per layer, what would change.

    python release/plans.py STACKS_DIR LAYER... [--report FILE] [--drift]

`make plan` and `make drift` run it on the synthesized environment. Each layer: `terraform
init`, `terraform plan -detailed-exitcode`, and for a plan with changes the resources from
`terraform show -json`, marked where Terraform found the resource changed outside it. Layers
meet only through Parameter Store, so each plans on its own: the plans run side by side, a
failed one is reported and the others still run, and the report lists layers in the order given.

Exit status: 1 if a plan failed; with --drift, 2 if any layer would change (what the
scheduled drift check alerts on); otherwise 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

PLAN_FILE = "plan.tfplan"  # in the layer's directory, next to its .terraform
IGNORED_ACTIONS = (["no-op"], ["read"])  # unchanged resources; data sources read at apply
DRIFTED = "changed outside Terraform"


@dataclass
class LayerPlan:
    layer: str
    changes: list[str] = field(default_factory=list)
    error: str | None = None

    def lines(self) -> list[str]:
        if self.error is not None:
            return [f"{self.layer}: plan failed", *(f"  {line}" for line in self.error.splitlines())]
        if not self.changes:
            return [f"{self.layer}: no changes"]
        return [f"{self.layer}: {len(self.changes)} to change", *(f"  {change}" for change in self.changes)]


def terraform(stack_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # terraform from PATH, as the Makefile runs it.
    return subprocess.run(["terraform", f"-chdir={stack_dir}", *args], capture_output=True, text=True)  # noqa: S603, S607


def _errors(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stderr.strip() or result.stdout.strip())[-3000:]


def _action(actions: list[str]) -> str:
    return "replace" if sorted(actions) == ["create", "delete"] else "+".join(actions)


def plan_layer(stack_dir: Path, init: subprocess.CompletedProcess[str]) -> LayerPlan:
    result = LayerPlan(stack_dir.name)
    if init.returncode != 0:
        result.error = _errors(init)
        return result
    planned = terraform(stack_dir, "plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={PLAN_FILE}")
    if planned.returncode == 0:
        return result
    if planned.returncode != 2:
        result.error = _errors(planned)
        return result
    shown = json.loads(terraform(stack_dir, "show", "-json", PLAN_FILE).stdout)
    drifted = {resource["address"] for resource in shown.get("resource_drift", [])}
    for resource in shown.get("resource_changes", []):
        actions = resource["change"]["actions"]
        if actions not in IGNORED_ACTIONS:
            note = f" ({DRIFTED})" if resource["address"] in drifted else ""
            result.changes.append(f"{_action(actions):<8} {resource['address']}{note}")
    for name, output in shown.get("output_changes", {}).items():
        if output["actions"] not in IGNORED_ACTIONS:
            result.changes.append(f"{_action(output['actions']):<8} output.{name}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", type=Path, help="the environment's synthesized stacks directory")
    parser.add_argument("layers", nargs="+", help="layers, in the order to report them")
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    parser.add_argument("--drift", action="store_true", help="exit 2 when any layer would change")
    args = parser.parse_args(argv)
    stack_dirs = [args.stacks / layer for layer in args.layers]
    # One init at a time: Terraform's plugin cache is not safe for concurrent installs.
    inits = [terraform(stack_dir, "init", "-input=false", "-no-color") for stack_dir in stack_dirs]
    with ThreadPoolExecutor(len(stack_dirs)) as pool:
        plans = list(pool.map(plan_layer, stack_dirs, inits))
    report = "".join(f"{line}\n" for plan in plans for line in plan.lines())
    print(report, end="", flush=True)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report)
    if any(plan.error is not None for plan in plans):
        return 1
    return 2 if args.drift and any(plan.changes for plan in plans) else 0


if __name__ == "__main__":
    sys.exit(main())
