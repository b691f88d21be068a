"""The whole pipeline on a fresh local emulator: real Terraform, the real handlers.

The tests run in file order against the shared deployment (tests/e2e/conftest.py); the
one marked `last` destroys it. Run alone with `make test-e2e` or `pytest -m e2e`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.workspace import SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.progress import follow
from pipeline_cli.run_cmd import upload
from pipeline_cli.samples import write_transactions
from tests.e2e.jobs import assert_reconciled, run_file, run_job

# Every test here runs against the shared deployment; the first one to run deploys it.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]
LAYERS = ("network", "storage", "compute", "orchestration")


def test_one_layer_alone_names_the_missing_parameter(target: Target) -> None:
    # An environment of which nothing is deployed, beside the shared one.
    result = target.other("lone", CDKTF_OUT="cdktf.out-lone").make("deploy-compute", check=False)
    assert result.returncode != 0
    assert "/pipeline/lone/" in result.stdout + result.stderr


def test_deploy_all_four_layers(target: Target) -> None:
    for layer in LAYERS:
        assert target.state_file(layer).exists()


def test_seed_commands_work_against_the_local_deployment(target: Target) -> None:
    output = target.terraform("orchestration", "output", "-raw", "state_machine_arn")
    assert output.returncode == 0, output.stderr
    arn = output.stdout.strip()
    assert arn == Deployment.discover(SUFFIX).state_machine_arn
    sfn = target.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"jobId": "test-123", "data": {"sample": "data"}})
    )
    status = follow(execution["executionArn"], say=lambda _line: None, timeout_seconds=120)
    assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == status == "SUCCEEDED"


def test_seed_payload_ends_rejected_with_its_record_quarantined(target: Target) -> None:
    status, job, deployment = run_job({"jobId": "seed-payload", "data": {"sample": "data"}})
    assert status == "SUCCEEDED"
    assert job["status"] == "REJECTED"
    assert job["counts"]["received"] == job["counts"]["rejected"] == 1
    assert job["counts"]["reasons"]["MISSING_FIELD"] == 1
    quarantine = target.client("s3").get_object(Bucket=deployment.bucket, Key=job["outputs"]["quarantine"])
    assert b"MISSING_FIELD" in quarantine["Body"].read()


def test_clean_file_loads_every_row(target: Target, tmp_path: Path) -> None:
    status, job, deployment = run_file(tmp_path, "clean-file", rows=300)
    assert (status, job["status"]) == ("SUCCEEDED", "LOADED")
    assert job["counts"]["loaded"] == 300 and job["counts"]["rejected"] == 0
    assert_reconciled(target, job, deployment)


def test_file_under_the_reject_threshold_loads_its_good_rows(target: Target, tmp_path: Path) -> None:
    status, job, deployment = run_file(tmp_path, "under-threshold", rows=400, bad_every=50, seed=11)
    assert (status, job["status"]) == ("SUCCEEDED", "LOADED")
    assert job["counts"]["rejected"] == 8 and job["counts"]["loaded"] == 392
    assert_reconciled(target, job, deployment)


def test_file_over_the_reject_threshold_loads_nothing(target: Target, tmp_path: Path) -> None:
    status, job, deployment = run_file(tmp_path, "over-threshold", rows=100, bad_every=10, seed=12)
    assert (status, job["status"]) == ("SUCCEEDED", "REJECTED")
    listing = target.client("s3").list_objects_v2(Bucket=deployment.bucket, Prefix="manifests/over-threshold")
    assert listing.get("KeyCount", 0) == 0


def test_transient_errors_are_retried_then_succeed(target: Target, tmp_path: Path) -> None:
    target.emulator.inject(f"pipeline-validate-{SUFFIX}", "Lambda.ServiceException", times=2)
    target.emulator.inject(f"pipeline-transform-{SUFFIX}", "Lambda.TooManyRequestsException", times=1)
    status, job, deployment = run_file(tmp_path, "transient-errors", rows=200, seed=13)
    assert (status, job["status"]) == ("SUCCEEDED", "LOADED")
    assert_reconciled(target, job, deployment)


def _processed_versions(target: Target, deployment: Deployment, job_id: str) -> list[tuple[str, str]]:
    versions = target.client("s3").list_object_versions(Bucket=deployment.bucket)
    return sorted(
        (v["Key"], v["VersionId"])
        for v in versions.get("Versions", [])
        if (v["Key"].startswith("processed/") and job_id in v["Key"]) or v["Key"] == f"manifests/{job_id}.json"
    )


def test_replaying_a_finished_job_writes_nothing_new(target: Target, tmp_path: Path) -> None:
    deployment = Deployment.discover(SUFFIX)
    before = _processed_versions(target, deployment, "clean-file")
    assert before
    record_before = deployment.job("clean-file")
    sample = write_transactions(tmp_path / "clean-file.csv", rows=300)  # the same bytes as before
    status, job, _ = run_job({"jobId": "clean-file", "source": upload(deployment, file=sample, job_id="clean-file")})
    assert (status, job["status"]) == ("SUCCEEDED", "LOADED")
    assert _processed_versions(target, deployment, "clean-file") == before
    assert job["counts"] == record_before["counts"] and job["totals"] == record_before["totals"]


def test_exhausted_retries_fail_the_job_with_one_alert(target: Target, alerts: Any, tmp_path: Path) -> None:
    target.emulator.inject(f"pipeline-load-{SUFFIX}", "Lambda.ServiceException", times=20)
    try:
        status, job, deployment = run_file(tmp_path, "exhausted-retries", rows=50, seed=14)
    finally:
        target.emulator.clear_faults()
    assert status == "FAILED"
    assert job["status"] == "FAILED"
    assert job["error"]["Error"] == "Lambda.ServiceException"
    assert len(alerts("exhausted-retries")) == 1
    assert (
        target.client("s3")
        .list_objects_v2(Bucket=deployment.bucket, Prefix="manifests/exhausted-retries")
        .get("KeyCount", 0)
        == 0
    )


def test_a_task_timeout_fails_the_job_with_one_alert(target: Target, alerts: Any, tmp_path: Path) -> None:
    target.emulator.inject(f"pipeline-transform-{SUFFIX}", "timeout", times=1)
    status, job, _ = run_file(tmp_path, "timed-out", rows=50, seed=15)
    assert status == "FAILED"
    assert job["status"] == "FAILED" and job["error"]["Error"] == "Sandbox.Timedout"
    assert len(alerts("timed-out")) == 1


def test_a_second_plan_shows_no_changes(target: Target) -> None:
    for layer in LAYERS:
        result = target.terraform(layer, "plan", "-detailed-exitcode", "-input=false", "-no-color")
        assert result.returncode == 0, f"{layer} drifts:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"


def test_compute_only_redeploy_after_a_handler_change(target: Target, tmp_path: Path) -> None:
    functions = target.client("lambda")
    name = f"pipeline-validate-{SUFFIX}"
    before = functions.get_function_configuration(FunctionName=name)["Environment"]["Variables"]["CODE_VERSION"]
    # The workspace is a copy of the project: the change stays out of the working tree.
    (target.root / "handlers" / "_e2e_change.py").write_text('"""A handler change made by the end-to-end test."""\n')
    target.make("deploy-compute")
    after = functions.get_function_configuration(FunctionName=name)["Environment"]["Variables"]["CODE_VERSION"]
    assert after != before
    status, job, deployment = run_file(tmp_path, "after-redeploy", rows=100, seed=16)
    assert (status, job["status"]) == ("SUCCEEDED", "LOADED")
    assert job["codeVersion"] == after


@pytest.mark.last
def test_destroy_in_reverse_order_leaves_nothing_behind(target: Target) -> None:
    target.make("destroy")
    assert target.client("s3").list_buckets()["Buckets"] == []
    assert target.client("dynamodb").list_tables()["TableNames"] == []
    assert target.client("lambda").list_functions()["Functions"] == []
    assert target.client("lambda").list_layers()["Layers"] == []
    assert target.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert target.client("sns").list_topics()["Topics"] == []
    assert target.client("ssm").get_parameters_by_path(Path=f"/pipeline/{SUFFIX}", Recursive=True)["Parameters"] == []
    assert target.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Environment", "Values": [SUFFIX]}])["Vpcs"] == []
    roles = [r["RoleName"] for r in target.client("iam").list_roles()["Roles"]]
    assert [r for r in roles if r.endswith(f"-{SUFFIX}") or f"-{SUFFIX}-" in r] == []
    groups = target.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups if f"-{SUFFIX}" in g["logGroupName"]] == []
