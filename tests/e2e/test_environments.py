"""Two environments from one checkout, on one emulator, deployed, run and torn down independently.

`dev` is deployed the way a person does (`make deploy`) while `qa` is deployed the way the
pipeline does (the deploy job's steps from .github/workflows/deploy.yml, drift check included),
at the same time in the same checkout. Both stay deployed for the whole module; the last test
destroys `qa` and checks that `dev` still works and plans no changes.
Its own group, workspace and emulator, so it runs beside the shared deployments.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from local.workspace import Emulator, Target, Workspace
from pipeline_cli.deployment import Deployment
from pipeline_cli.progress import follow_job
from pipeline_cli.run_cmd import upload
from pipeline_cli.samples import write_transactions
from tests.e2e.jobs import DAYS
from tests.infra import workflows
from tests.infra.synth import LAYERS

GROUP = "environments"
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(GROUP)]


@pytest.fixture(scope="module")
def environments() -> Iterator[tuple[Target, Target]]:
    workspace = Workspace(GROUP).create()
    emulator = Emulator.start(workspace)
    dev = Target(emulator=emulator, workspace=workspace, suffix="dev")
    qa = dev.other("qa")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in dev.aws_env.items():  # for the pipeline_cli calls in this process
                patch.setenv(key, value)
            # One init first, alone: it fills the workspace's Terraform plugin cache, which two
            # inits at once would race to write.
            dev.make("synth", "build/terraform.rc")
            warmed = dev.terraform("network", "init", "-input=false", "-no-color")
            assert warmed.returncode == 0, warmed.stdout + warmed.stderr
            with ThreadPoolExecutor(2) as pool:
                deploys = [
                    pool.submit(dev.make, "deploy"),
                    pool.submit(lambda: [qa.make(*step) for step in workflows.make_steps("deploy.yml", "deploy")]),
                ]
                for deploy in deploys:
                    deploy.result()
            yield dev, qa
    finally:
        emulator.stop()
        dev.timings.update(qa.timings)
        dev.write_timings()


def run_job(target: Target, job_id: str, tmp: Path, *, seed: int) -> tuple[dict[str, Any], Deployment]:
    """One file through one environment: uploaded under incoming/, started by its upload, followed."""
    deployment = Deployment.discover(target.suffix)
    upload(deployment, file=write_transactions(tmp / f"{job_id}.csv", rows=60, days=DAYS, seed=seed), job_id=job_id)
    job = follow_job(deployment, job_id, say=lambda _line: None, timeout_seconds=300)
    assert job["status"] == "LOADED", job
    return job, deployment


def _keys(target: Target, bucket: str) -> list[str]:
    pages = target.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _layer_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.split(":")[0] in LAYERS]


def test_each_environment_has_its_own_directory_and_state(environments: tuple[Target, Target]) -> None:
    dev, qa = environments
    for target in (dev, qa):
        for layer in LAYERS:
            assert (target.stack_dir(layer) / ".terraform").is_dir()
            assert target.state_file(layer).is_file()
    # Asked to write qa over dev's initialized layers, synthesis refuses and leaves them alone.
    manifest = dev.stack_dir("network").parents[1] / "manifest.json"
    before = manifest.read_bytes()
    refused = dev.other("qa", CDKTF_OUT=f"cdktf.out/{dev.environment}").make("synth", check=False)
    assert refused.returncode != 0
    assert f"holds the Terraform working directories of '{dev.environment}'" in refused.stderr
    assert manifest.read_bytes() == before


def test_each_job_stays_in_its_own_bucket_and_table(environments: tuple[Target, Target], tmp_path: Path) -> None:
    # The same file in both: had they shared a table, the second would be refused as a duplicate.
    runs = {
        target.suffix: (target, *run_job(target, f"job-{target.suffix}", tmp_path, seed=21)) for target in environments
    }
    assert len({deployment.bucket for _, _, deployment in runs.values()}) == 2
    assert len({deployment.table for _, _, deployment in runs.values()}) == 2
    for suffix, (target, _, deployment) in runs.items():
        (other,) = set(runs) - {suffix}
        keys = _keys(target, deployment.bucket)
        assert [key for key in keys if f"job-{suffix}" in key]
        assert [key for key in keys if f"job-{other}" in key] == []
        assert deployment.job(f"job-{other}") is None


def test_make_drift_names_what_was_changed_behind_terraforms_back(environments: tuple[Target, Target]) -> None:
    _, qa = environments
    qa.client("logs").put_retention_policy(logGroupName="/aws/lambda/pipeline-validate-qa", retentionInDays=30)
    result = qa.make("drift", check=False)
    assert result.returncode != 0, result.stdout
    report = result.stdout.split("compute: 2 to change\n")
    assert _layer_lines(result.stdout) == [
        "network: no changes",
        "storage: no changes",
        "compute: 2 to change",
        "orchestration: no changes",
    ], result.stdout
    # The log group itself, and its function's role policy, which names the group's ARN.
    group, policy = (line.split() for line in report[1].splitlines()[:2])
    assert group[0] == "update" and group[1].startswith("aws_cloudwatch_log_group.validate_logs")
    assert " ".join(group[2:]) == "(changed outside Terraform)"
    assert policy[0] == "update" and policy[1].startswith("aws_iam_role_policy.validate_policy") and len(policy) == 2


def test_destroying_one_leaves_the_other_running_with_no_changes(
    environments: tuple[Target, Target], tmp_path: Path
) -> None:
    dev, qa = environments
    qa.make("destroy")
    ssm = dev.client("ssm")
    assert ssm.get_parameters_by_path(Path="/pipeline/qa", Recursive=True)["Parameters"] == []
    assert ssm.get_parameters_by_path(Path="/pipeline/dev", Recursive=True)["Parameters"]
    assert [b["Name"] for b in dev.client("s3").list_buckets()["Buckets"] if "-qa" in b["Name"]] == []
    assert [t for t in dev.client("dynamodb").list_tables()["TableNames"] if t.endswith("-qa")] == []
    run_job(dev, "job-dev-after-qa", tmp_path, seed=22)
    planned = dev.make("plan")  # what the pull request's plan runs
    assert _layer_lines(planned.stdout) == [f"{layer}: no changes" for layer in LAYERS]
