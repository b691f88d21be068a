"""The delivery pipeline (.github/workflows): linted as `make lint` does it, and shaped as docs/release.md says.

The workflows cannot run here; what they run can: every step is a Make target, and the
end-to-end suite runs the deploy job's steps and the plan and drift targets on the emulator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.infra import workflows
from tests.infra.synth import LAYERS

ENVIRONMENTS = ["dev", "test", "prod"]  # in the order a release reaches them


def _lint(*files: Path) -> subprocess.CompletedProcess[str]:
    extra = [f"WORKFLOWS={' '.join(map(str, files))}"] if files else []
    return subprocess.run(
        ["make", "--no-print-directory", "lint-workflows", *extra],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_workflow_files_pass_their_linter() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(str(path.relative_to(PROJECT_ROOT)) in result.stdout for path in workflows.WORKFLOWS.glob("*.yml"))


@pytest.mark.parametrize(
    ("workflow", "good", "broken", "complaint"),
    [
        # An expression naming a context property that does not exist.
        ("pull-request.yml", "plan-${{ matrix.environment }}", "plan-${{ matrix.enviroment }}", '"enviroment"'),
        # A job without a runner.
        ("drift.yml", "    runs-on: ubuntu-24.04\n", "    run-on: ubuntu-24.04\n", '"runs-on" section is missing'),
        # A reusable workflow called with an input it does not declare.
        ("deliver.yml", "      environment: test\n", "      environmnt: test\n", 'input "environmnt" is not defined'),
        # shellcheck on a run: script (an unquoted expansion).
        ("drift.yml", 'cat "$PLAN_REPORT"', "cat $PLAN_REPORT", "SC2086"),
    ],
)
def test_the_linter_fails_on_a_broken_copy(
    tmp_path: Path, workflow: str, good: str, broken: str, complaint: str
) -> None:
    shutil.copytree(PROJECT_ROOT / ".github", tmp_path / ".github")
    # A repository root, where actionlint resolves ./.github/workflows/... calls.
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    copy = tmp_path / ".github" / "workflows" / workflow
    text = copy.read_text()
    assert good in text
    copy.write_text(text.replace(good, broken, 1))
    result = _lint(*sorted(copy.parent.glob("*.yml")))
    assert result.returncode != 0
    assert complaint in result.stdout, result.stdout


def test_every_make_target_the_workflows_run_exists() -> None:
    targets = {
        " ".join(arguments)
        for name in sorted(path.name for path in workflows.WORKFLOWS.glob("*.yml"))
        for job in workflows.load(name)["jobs"]
        if "steps" in workflows.load(name)["jobs"][job]
        for arguments in workflows.make_steps(name, job)
    }
    assert {"test-fast", "scan", "plan", "drift"} <= targets
    for target in sorted(targets):
        result = subprocess.run(
            ["make", "--dry-run", "--no-print-directory", *target.split()],
            cwd=PROJECT_ROOT,
            env={k: v for k, v in os.environ.items() if k not in ("LOCAL", "CDKTF_OUT", "ENVIRONMENT_SUFFIX")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"make {target}: {result.stderr}"


def test_a_deploy_runs_the_policy_gate_then_one_layer_at_a_time_in_dependency_order() -> None:
    assert workflows.make_steps("deploy.yml", "deploy") == [
        ["scan"],
        *([f"deploy-{layer}"] for layer in LAYERS),
        ["drift"],  # the deploy converged: a second plan has no changes
    ]


def test_a_release_reaches_dev_then_test_then_prod_each_through_its_github_environment() -> None:
    jobs = workflows.load("deliver.yml")["jobs"]
    assert workflows.load("deliver.yml")["on"] == {"push": {"branches": ["main"]}}
    previous = "checks"
    for environment in ENVIRONMENTS:
        job = jobs[environment]
        assert job["uses"] == "./.github/workflows/deploy.yml"
        assert job["with"] == {"environment": environment}
        assert job["needs"] == previous
        previous = environment
    deploy = workflows.load("deploy.yml")["jobs"]["deploy"]
    # Where the approvals sit: the environment's required reviewers hold the job before it starts.
    assert deploy["environment"] == "${{ inputs.environment }}"


def test_plans_and_drift_checks_cover_every_environment() -> None:
    for name, job in (("pull-request.yml", "plan"), ("drift.yml", "drift")):
        assert workflows.load(name)["jobs"][job]["strategy"]["matrix"]["environment"] == ENVIRONMENTS
    assert workflows.load("drift.yml")["on"]["schedule"]


def test_aws_credentials_come_only_from_oidc_role_assumption() -> None:
    assumed = 0
    for path in sorted(workflows.WORKFLOWS.glob("*.yml")):
        assert "aws-access-key-id" not in path.read_text() and "AWS_SECRET_ACCESS_KEY" not in path.read_text()
        for job in workflows.load(path.name)["jobs"].values():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
                    assumed += 1
                    assert step["with"]["role-to-assume"].startswith("${{ vars.AWS_"), path.name
                    assert job["permissions"]["id-token"] == "write", path.name
    assert assumed == 3  # pull-request plan, deploy, drift
