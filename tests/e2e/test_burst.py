"""A burst of uploads with almost no Lambda capacity: every job finishes, for a reason in its data.

30 files land in incoming/ at once (a few of them several chunks long, a few with too many bad
rows) while the emulator allows 2 concurrent Lambda invocations, as a small account would. The
jobs beyond MAX_RUNNING_JOBS wait in the admission queue; throttled invocations are retried with
the long backoff. Runs on the deployment the "capacity" group shares (tests/e2e/conftest.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from local.workspace import LOCAL_SETTINGS, SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.samples import write_transactions
from tests.e2e.conftest import CAPACITY_GROUP
from tests.e2e.jobs import DAYS, FINISHED, assert_reconciled, upload_only

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(CAPACITY_GROUP), pytest.mark.usefixtures("deployed")]
FILES = 30
LAMBDA_LIMIT = 2
RUNNING = ("ADMITTED", "RECEIVED", "VALIDATED")


def _burst_files(tmp: Path) -> list[tuple[str, bytes]]:
    files = []
    for n in range(FILES):
        rows = 9000 if n % 10 == 3 else 60 + n  # three of them several chunks long
        bad_every = 5 if n % 10 == 7 else 0  # three of them over the reject threshold
        sample = write_transactions(tmp / f"burst-{n:02d}.csv", rows=rows, bad_every=bad_every, days=DAYS, seed=100 + n)
        files.append((f"incoming/burst/file-{n:02d}.csv", sample.read_bytes()))
    return files


def test_a_burst_of_uploads_finishes_every_job_within_the_caps(target: Target, tmp_path: Path) -> None:
    deployment = Deployment.discover(SUFFIX)
    files = _burst_files(tmp_path)
    cap = int(LOCAL_SETTINGS["MAX_RUNNING_JOBS"])
    target.emulator.lambda_concurrency(LAMBDA_LIMIT, set_limit=True)
    samples: list[int] = []
    stop = threading.Event()

    def sample_running() -> None:
        table = target.client("dynamodb")
        while not stop.is_set():
            items = table.scan(
                TableName=deployment.table, ProjectionExpression="jobId, #s", ExpressionAttributeNames={"#s": "status"}
            )["Items"]
            samples.append(
                sum(1 for i in items if i["jobId"]["S"].startswith("file-") and i.get("status", {}).get("S") in RUNNING)
            )
            time.sleep(0.5)

    sampler = threading.Thread(target=sample_running, daemon=True)
    started = time.monotonic()
    job_ids: list[str] = []
    try:
        uploads = [threading.Thread(target=lambda f=f: job_ids.append(upload_only(target, *f))) for f in files]
        for upload in uploads:
            upload.start()
        for upload in uploads:
            upload.join()
        sampler.start()
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline:
            jobs = [deployment.job(job_id) for job_id in job_ids]
            if all(job and job.get("status") in FINISHED for job in jobs):
                break
            time.sleep(3)
    finally:
        stop.set()
        capacity = target.emulator.lambda_concurrency()
        target.emulator.lambda_concurrency(None, set_limit=True)
    elapsed = time.monotonic() - started

    statuses = {job["jobId"]: job["status"] for job in jobs if job}
    assert len(statuses) == FILES
    assert "FAILED" not in statuses.values(), {k: v for k, v in statuses.items() if v == "FAILED"}
    assert sorted(set(statuses.values())) == ["LOADED", "REJECTED"]
    assert list(statuses.values()).count("REJECTED") == 3
    assert max(samples) <= cap and max(samples) >= 1, samples
    assert capacity["peak"] <= LAMBDA_LIMIT and capacity["throttled"] > 0, capacity
    for job in jobs:
        several = int(job["source"]["key"][-6:-4]) % 10 == 3
        assert (int(job["plan"]["chunks"]) > 1) == several
        if job["status"] == "LOADED":
            assert_reconciled(target, job, deployment)  # no row loaded twice, none lost
    print(f"\nburst: {FILES} files in {elapsed:.0f} s, running jobs sampled at most {max(samples)}, {capacity}")
