"""A re-sent file on the local deployment: the same bytes uploaded again under another key.

Invariant: one job per file content, and a re-send is not a failure. The copy ends RESENT naming
the job that loaded the bytes; no alert reaches the alert topic, its execution succeeds, its slot
is free, nothing is published twice, and JobsResent counts it. `pipeline run` of the same file
says so in one line and exits 3 (README). Runs in the "main" group, on its deployment
(tests/e2e/conftest.py); alone: `pytest tests/e2e/test_resend.py`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lake import layout, metrics
from local.workspace import SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.main import main
from pipeline_cli.progress import follow_job
from pipeline_cli.run_cmd import EXIT_RESENT
from pipeline_cli.samples import write_transactions
from stacks import parameters
from tests.e2e.jobs import DAYS, settled, upload_only

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]

ORIGINAL_KEY = "incoming/partner-r/2026-12-02.csv"
RESENT_KEY = "incoming/partner-r/retry-after-outage/2026-12-02.csv"


def finished(job_id: str) -> dict[str, Any]:
    return follow_job(Deployment.discover(SUFFIX), job_id, say=lambda _line: None, timeout_seconds=600)


def versions(target: Target, bucket: str, *prefixes: str) -> list[tuple[str, str]]:
    pages = target.client("s3").get_paginator("list_object_versions")
    return sorted(
        (v["Key"], v["VersionId"])
        for prefix in prefixes
        for page in pages.paginate(Bucket=bucket, Prefix=prefix)
        for v in page.get("Versions", [])
    )


def published(target: Target, deployment: Deployment) -> list[tuple[str, str]]:
    """Every version of every published file and manifest, of every job."""
    return versions(target, deployment.bucket, f"{layout.PROCESSED}/", f"{layout.MANIFESTS}/")


def resent_total(target: Target) -> float:
    dimensions = [{"Name": "service", "Value": metrics.SERVICE}, {"Name": "environment", "Value": SUFFIX}]
    now = datetime.now(UTC)
    points = target.client("cloudwatch").get_metric_statistics(
        Namespace=metrics.NAMESPACE,
        MetricName=metrics.JOBS_RESENT,
        Dimensions=dimensions,
        StartTime=now - timedelta(hours=2),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(point["Sum"] for point in points)


@pytest.fixture(scope="module")
def original(deployed: Target, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """A partner's file, uploaded and loaded."""
    sample = write_transactions(tmp_path_factory.mktemp("resend") / "2026-12-02.csv", rows=300, days=DAYS, seed=26)
    job = finished(upload_only(deployed, ORIGINAL_KEY, sample.read_bytes()))
    assert job["status"] == "LOADED", job.get("error")
    return job, sample


def test_a_resent_file_ends_resent_with_no_alert_no_slot_and_nothing_published(
    target: Target, alerts: Any, original: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, sample = original
    deployment = Deployment.discover(SUFFIX)
    before = published(target, deployment)
    counted = resent_total(target)

    job_id = upload_only(target, RESENT_KEY, sample.read_bytes())  # the partner's retry: same bytes
    job = finished(job_id)

    assert job["status"] == "RESENT" and job["originalJobId"] == first["jobId"]
    assert job["source"]["key"] == RESENT_KEY and job["source"]["sha256"] == first["source"]["sha256"]
    assert "error" not in job
    settled(target, deployment, job_id)
    sfn = target.client("stepfunctions")
    runs = [
        sfn.describe_execution(executionArn=e["executionArn"])
        for e in sfn.list_executions(stateMachineArn=deployment.state_machine_arn)["executions"]
    ]
    (run,) = [r for r in runs if json.dumps(RESENT_KEY) in r.get("input", "")]
    assert run["status"] == "SUCCEEDED" and json.loads(run["output"])["status"] == "RESENT"
    assert alerts(job_id) == []
    assert job_id not in (deployment.job("#admission") or {}).get("holders", [])  # its slot is free
    assert published(target, deployment) == before  # no second manifest, no processed file
    work_bucket = target.client("ssm").get_parameter(Name=parameters.name(SUFFIX, parameters.WORK_BUCKET_NAME))
    assert versions(target, work_bucket["Parameter"]["Value"], f"{layout.STAGING}/{job_id}/") == []
    assert deployment.job(first["jobId"])["runId"] == first["runId"]  # the original untouched

    deadline = time.monotonic() + 120  # the handlers' metrics reach CloudWatch from their logs
    while resent_total(target) < counted + 1 and time.monotonic() < deadline:
        time.sleep(2)
    assert resent_total(target) == counted + 1

    capsys.readouterr()
    assert main(["status", job_id, "--env", SUFFIX]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "RESENT"
    assert shown["originalJob"] == {"jobId": first["jobId"], "status": "LOADED"}


def test_pipeline_run_of_the_same_file_says_so_and_exits_3(
    target: Target, original: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, sample = original
    deployment = Deployment.discover(SUFFIX)
    uploads = versions(target, deployment.bucket, f"{layout.INCOMING}/")
    capsys.readouterr()

    assert main(["run", str(sample), "--env", SUFFIX, "--wait"]) == EXIT_RESENT == 3

    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert f"job {first['jobId']} (LOADED)" in err and "--force" in err
    assert versions(target, deployment.bucket, f"{layout.INCOMING}/") == uploads  # nothing sent
