#!/usr/bin/env python3
"""The static policy gate: checkov over the synthesized stacks, judged strictly.

Run with checkov's own interpreter (.venv-scan/bin/python checkov/run_gate.py [STACKS_DIR]).
Passes only if checkov parsed every file, ran a meaningful number of checks (checkov exits
0 having checked nothing when it cannot parse a file), every custom check under
checkov/checks ran, and nothing failed. Skips come only from checkov/config.yaml, each
preceded by comment lines with its reason. Prints the summary as JSON on stdout;
exit status 0 = gate passed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "checkov" / "config.yaml"
CHECKS_DIR = ROOT / "checkov" / "checks"
MIN_PASSED = 150
# Custom checks on a resource type only some configurations synthesize (production only).
CONDITIONAL_CUSTOM_CHECKS = {"CKV_FIN_4": "aws_s3_bucket_object_lock_configuration"}
LAYERS = ("network", "storage", "compute", "orchestration")


def skips_with_reasons(config: Path = CONFIG) -> dict[str, str]:
    """skip-check entries of the config and the comment lines directly above each."""
    skips: dict[str, str] = {}
    in_list, comment, after_id = False, [], False
    for line in config.read_text().splitlines():
        stripped = line.strip()
        if re.match(r"^[\w-]+:", line):
            in_list, comment = line.startswith("skip-check:"), []
            continue
        if not in_list:
            continue
        if stripped.startswith("#"):
            if after_id:
                comment, after_id = [], False
            comment.append(stripped.lstrip("# "))
        elif stripped.startswith("- "):
            # Consecutive ids share the comment above the first of them.
            skips[stripped[2:].split("#")[0].strip()] = " ".join(comment)
            after_id = True
        elif not stripped:
            comment = []
    return skips


def custom_check_ids() -> set[str]:
    return {m for path in CHECKS_DIR.glob("*.py") for m in re.findall(r'id="(CKV_FIN_\d+)"', path.read_text())}


def run_checkov(stacks_dir: Path) -> dict:
    checkov = Path(sys.executable).parent / "checkov"
    result = subprocess.run(
        [
            str(checkov),
            "--config-file",
            str(CONFIG),
            "--external-checks-dir",
            str(CHECKS_DIR),
            "-d",
            str(stacks_dir),
            "-o",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise SystemExit(f"checkov gave no JSON report (exit {result.returncode}):\n{result.stderr[-3000:]}") from None
    reports = report if isinstance(report, list) else [report]
    (terraform_json,) = [r for r in reports if r.get("check_type") == "terraform_json"]
    return terraform_json


def judge(report: dict, stacks_dir: Path) -> dict:
    summary = report["summary"]
    results = report["results"]
    failed = [f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}" for c in results["failed_checks"]]
    skipped = sorted({c["check_id"] for c in results.get("skipped_checks", [])})
    ran = {c["check_id"] for c in results.get("passed_checks", []) + results["failed_checks"]}
    scanned = sorted({c["file_path"] for c in results.get("passed_checks", [])})
    configured = skips_with_reasons()
    problems = []
    if summary["parsing_errors"]:
        problems.append(f"{summary['parsing_errors']} parsing errors: {report.get('parsing_errors')}")
    if summary["passed"] < MIN_PASSED:
        problems.append(f"only {summary['passed']} checks passed (floor {MIN_PASSED}): did checkov parse the stacks?")
    expected_files = {f"/{layer}/cdk.tf.json" for layer in LAYERS if (stacks_dir / layer / "cdk.tf.json").exists()}
    if not expected_files <= set(scanned):
        problems.append(f"stacks without any passed check: {sorted(expected_files - set(scanned))}")
    present = "".join(
        (stacks_dir / layer / "cdk.tf.json").read_text()
        for layer in LAYERS
        if (stacks_dir / layer / "cdk.tf.json").exists()
    )
    missing_custom = {
        c
        for c in custom_check_ids() - ran
        if c not in CONDITIONAL_CUSTOM_CHECKS or f'"{CONDITIONAL_CUSTOM_CHECKS[c]}"' in present
    }
    if missing_custom:
        problems.append(f"custom checks that never ran: {sorted(missing_custom)}")
    problems += [f"failed: {f}" for f in failed]
    problems += [f"skip {s} not listed in checkov/config.yaml" for s in skipped if s not in configured]
    problems += [f"skip {s} in checkov/config.yaml has no reason" for s, why in configured.items() if len(why) < 20]
    return {
        "passed": summary["passed"],
        "failed": summary["failed"],
        "skipped_in_report": summary["skipped"],
        "parsing_errors": summary["parsing_errors"],
        "custom_checks_run": sorted(c for c in ran if c.startswith("CKV_FIN_")),
        "files": scanned,
        "skips": configured,
        "failures": failed,
        "problems": problems,
    }


def main(argv: list[str]) -> int:
    stacks_dir = Path(argv[1] if len(argv) > 1 else ROOT / "cdktf.out" / "stacks").resolve()
    verdict = judge(run_checkov(stacks_dir), stacks_dir)
    print(json.dumps(verdict, indent=2))
    for problem in verdict["problems"]:
        print(f"GATE: {problem}", file=sys.stderr)
    ok = not verdict["problems"]
    print(
        f"checkov gate {'passed' if ok else 'FAILED'}: {verdict['passed']} passed, {verdict['failed']} failed, "
        f"{len(verdict['skips'])} check ids skipped by checkov/config.yaml",
        file=sys.stderr,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
