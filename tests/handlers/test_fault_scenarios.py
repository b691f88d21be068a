"""Fault injection on the handlers (moto-backed): every scenario asserts the same invariant.

Invariant: rows received = rows loaded + rows quarantined, no row is loaded twice, and the job
record tells what happened. Orchestration faults (transient Lambda errors, throttling, task
timeouts, exhausted retries with exactly one alert) run on the local deployment in
tests/e2e/test_local_pipeline.py.
"""

from __future__ import annotations

import io
import json
from unittest import mock

import boto3
import pyarrow.parquet as pq
import pytest

from handlers import failure, ingest, load
from handlers.dal import objects
from lake.layout import manifest_key
from tests.handlers.conftest import (
    BUCKET,
    WORK_BUCKET,
    csv_text,
    get_job,
    good_row,
    invoke,
    put_incoming,
    quarantined,
    read_object,
    run_chain,
)


def assert_accounted(s3, job_id: str) -> dict:
    job = get_job(job_id)
    counts = job["counts"]
    assert len(quarantined(s3, job_id)) == counts.get("rejected", 0)
    if job["status"] == "LOADED":
        assert counts["received"] == counts["loaded"] + counts["rejected"]
        manifest = json.loads(read_object(s3, manifest_key(job_id)))
        ids = []
        for entry in manifest["files"]:
            ids += pq.read_table(io.BytesIO(read_object(s3, entry["key"]))).column("transaction_id").to_pylist()
        assert len(ids) == len(set(ids)) == counts["loaded"], "a row was loaded twice or lost"
        assert job["totals"]["loaded"] == job["totals"]["valid"]
    else:
        assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"manifests/{job_id}").get("KeyCount", 0) == 0
    return job


def good_rows(count: int) -> list[str]:
    return [good_row(n) for n in range(1, count + 1)]


def test_malformed_rows_are_quarantined_and_the_good_rows_load(aws):
    """Scenario 4: undecodable bytes and ragged rows in an otherwise good file."""
    body = csv_text(*good_rows(40)).encode() + b"T90001,ACC1,2024-03-01T10:00:00Z,1.00,USD,CREDIT,caf\xe9\r\n"
    body += b"T90002,ACC1,2024-03-01T10:00:00Z,1.00\r\n"
    run_chain(put_incoming(aws, job_id="malformed-rows", body=body))
    job = assert_accounted(aws, "malformed-rows")
    assert job["status"] == "LOADED" and job["counts"]["reasons"] == {"MALFORMED_ROW": 2}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"T1,ACC1,2024-03-01T10:00:00Z,1.00,USD,CREDIT,x\r\n", "no header"),
    ],
)
def test_an_unreadable_file_fails_the_job_and_the_failure_is_recorded(aws, body, why):
    """Scenario 4: a file that cannot be read at all."""
    event = put_incoming(aws, job_id="unreadable", body=body)
    with pytest.raises(Exception) as raised:
        run_chain(event)
    error = {"Error": type(raised.value).__name__, "Cause": str(raised.value)}
    invoke(failure, {**event, "runId": get_job("unreadable")["runId"], "error": error})
    job = get_job("unreadable")
    assert job["status"] == "FAILED", why
    assert job["error"]["Error"] == type(raised.value).__name__
    assert aws.list_objects_v2(Bucket=BUCKET, Prefix="manifests/unreadable").get("KeyCount", 0) == 0


def test_the_same_event_delivered_twice_loads_once(aws):
    """Scenario 5."""
    event = put_incoming(aws, job_id="twice", body=csv_text(*good_rows(25)))
    first = run_chain(event)
    versions_before = aws.list_object_versions(Bucket=BUCKET, Prefix="processed/")["Versions"]
    second = run_chain(event)
    assert second == [{"jobId": "twice", "runId": first[0]["runId"], "status": "REPLAY", "jobStatus": "LOADED"}]
    assert aws.list_object_versions(Bucket=BUCKET, Prefix="processed/")["Versions"] == versions_before
    assert assert_accounted(aws, "twice")["counts"]["loaded"] == 25


def test_a_crash_while_publishing_then_a_retry_duplicates_and_loses_nothing(aws):
    """Scenario 6."""
    body = csv_text(*[good_row(n, booked_at=f"2024-03-0{1 + n % 4}T10:00:00Z") for n in range(1, 41)])
    event = put_incoming(aws, job_id="crash", body=body)
    real_copy, calls = objects.copy_verified, []

    def crash_on_second_copy(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise ConnectionError("simulated crash in the middle of publishing")
        return real_copy(**kwargs)

    with mock.patch.object(objects, "copy_verified", side_effect=crash_on_second_copy), pytest.raises(ConnectionError):
        run_chain(event)
    job = get_job("crash")
    assert job["status"] == "VALIDATED"
    invoke(load, {"jobId": "crash", "runId": job["runId"], "planId": job["plan"]["planId"]})
    assert assert_accounted(aws, "crash")["counts"]["loaded"] == 40


def test_two_starts_of_one_job_one_job_runs(aws):
    """Scenario 7: the conditional write on the job record decides; the second start ends quietly."""
    event = put_incoming(aws, job_id="two-starts", body=csv_text(*good_rows(10)))
    started = invoke(ingest, event)
    assert invoke(ingest, event) == {
        "jobId": "two-starts",
        "runId": started["runId"],
        "status": "DUPLICATE",
        "jobStatus": "QUEUED",
    }
    assert run_chain(event)[0]["status"] == "DUPLICATE"
    assert get_job("two-starts")["status"] == "QUEUED"


def test_locked_records_are_never_overwritten(aws_env):
    """Scenario 8: Object Lock (COMPLIANCE) on the data bucket (the work bucket has none, as in the storage
    layer); a forced replay must leave every locked version intact."""
    from moto import mock_aws

    from tests.handlers.conftest import create_jobs_table, create_tables

    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(
            Bucket=BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 7}},
            },
        )
        s3.create_bucket(Bucket=WORK_BUCKET)
        s3.put_bucket_versioning(Bucket=WORK_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        create_jobs_table()
        create_tables(s3)
        event = put_incoming(s3, job_id="locked", body=csv_text(*good_rows(20)))
        run_chain(event)
        locked = {
            (v["Key"], v["VersionId"]): read_version(s3, v["Key"], v["VersionId"])
            for v in s3.list_object_versions(Bucket=BUCKET)["Versions"]
            if v["Key"].startswith(("processed/", "manifests/"))
        }
        assert locked
        run_chain({**event, "force": True})
        for (key, version), content in locked.items():
            assert read_version(s3, key, version) == content, f"{key} {version} changed"
        with pytest.raises(s3.exceptions.ClientError):
            key, version = next(iter(locked))
            s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
        assert assert_accounted(s3, "locked")["counts"]["loaded"] == 20


def read_version(s3, key: str, version: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read()
