"""Stage behaviour against moto: idempotency, replays, conflicts, crashes, failure path."""

import json
import threading
from unittest import mock

import pytest

from handlers import failure, ingest, load, transform, validate
from handlers.dal import objects
from handlers.errors import (
    DuplicateSourceError,
    JobConflictError,
    JobInProgressError,
    ReconciliationError,
    UnreadableFileError,
)
from tests.handlers.conftest import BUCKET, csv_text, get_job, good_row, put_incoming, read_object, run_chain


def good_file(n=20):
    return csv_text(*(good_row(i, amount=f"{i}.01") for i in range(1, n + 1)))


def test_bad_rows_quarantined_good_rows_load(aws):
    bad = [
        "B1,ACC1,2024-03-01T10:00:00Z,1.001,USD,CREDIT,x",  # AMOUNT_PRECISION
        "B2,ACC1,not-a-time,1.00,USD,CREDIT,x",  # INVALID_TIMESTAMP
        good_row(3, amount="7.00"),  # DUPLICATE_ID
    ]
    event = put_incoming(aws, job_id="mixed", body=csv_text(*[good_row(i) for i in range(1, 58)], *bad))
    outputs = run_chain(event)
    assert outputs[-1]["status"] == "LOADED"
    job = get_job("mixed")
    assert job["counts"]["rejected"] == 3 and job["counts"]["loaded"] == 57
    assert job["counts"]["reasons"] == {"INVALID_TIMESTAMP": 1, "AMOUNT_PRECISION": 1, "DUPLICATE_ID": 1}
    assert job["totals"]["rejected"] == {"USD": "9.001"}
    quarantined = [json.loads(x) for x in read_object(aws, "quarantine/mixed/rejected.jsonl").splitlines()]
    assert [q["line"] for q in quarantined] == [59, 60, 61]


def test_threshold_from_input_flows_and_rejects(aws):
    body = csv_text(good_row(1), good_row(2), "X,ACC1,2024-03-01T10:00:00Z,1,USD,SIDEWAYS,")
    event = {**put_incoming(aws, job_id="strict", body=body), "rejectThreshold": "0.5"}
    outputs = run_chain(event)
    assert outputs[-1]["status"] == "LOADED" and outputs[-1]["rejectThreshold"] == "0.5"
    event = {**put_incoming(aws, job_id="strict2", body=body + good_row(5) + "\r\n"), "rejectThreshold": 0.1}
    outputs = run_chain(event)
    assert outputs[-1]["status"] == "REJECTED"
    assert get_job("strict2")["status"] == "REJECTED"


def test_each_stage_twice_and_whole_replay_are_idempotent(aws):
    event = put_incoming(aws, job_id="twice", body=good_file())
    first = ingest.lambda_handler(event, None)
    v1 = validate.lambda_handler(first, None)
    assert validate.lambda_handler(first, None) == v1
    t1 = transform.lambda_handler(v1, None)
    assert transform.lambda_handler(v1, None) == t1
    l1 = load.lambda_handler(t1, None)
    assert load.lambda_handler(t1, None) == l1
    manifest = read_object(aws, "manifests/twice.json")

    replay = run_chain(event)
    assert replay[0]["runId"] == first["runId"] and replay[0]["replay"] is True
    assert replay[-1] == l1
    assert read_object(aws, "manifests/twice.json") == manifest
    job = get_job("twice")
    assert job["counts"]["loaded"] == 20 and job["status"] == "LOADED"


def test_second_start_while_in_progress_fails_cleanly(aws):
    event = put_incoming(aws, job_id="busy", body=good_file())
    ingest.lambda_handler(event, None)
    with pytest.raises(JobInProgressError, match="busy"):
        ingest.lambda_handler(event, None)


def test_concurrent_starts_one_proceeds(aws):
    event = put_incoming(aws, job_id="race", body=good_file())
    results, errors = [], []

    def start():
        try:
            results.append(ingest.lambda_handler(event, None))
        except JobConflictError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1 and len(errors) == 1
    assert get_job("race")["runId"] == results[0]["runId"]


def test_same_job_other_content_refused_unless_forced(aws):
    event = put_incoming(aws, job_id="conflict", body=good_file(5))
    run_chain(event)
    put_incoming(aws, job_id="conflict", body=good_file(6))
    with pytest.raises(JobConflictError, match="other content"):
        ingest.lambda_handler(event, None)
    outputs = run_chain({**event, "force": True})
    assert outputs[-1]["status"] == "LOADED" and outputs[-1]["force"] is True
    assert get_job("conflict")["counts"]["loaded"] == 6


def test_same_file_under_another_job_refused_unless_forced(aws):
    run_chain(put_incoming(aws, job_id="first", body=good_file(5)))
    second = put_incoming(aws, job_id="second", body=good_file(5))
    with pytest.raises(DuplicateSourceError, match="first"):
        ingest.lambda_handler(second, None)
    assert run_chain({**second, "force": True})[-1]["status"] == "LOADED"


def test_crash_while_writing_then_retry_loses_and_duplicates_nothing(aws):
    event = put_incoming(aws, job_id="crash", body=good_file(30))
    v = validate.lambda_handler(ingest.lambda_handler(event, None), None)
    t = transform.lambda_handler(v, None)
    real_upload = objects.upload_file
    calls = []

    def flaky_upload(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise ConnectionError("simulated crash in the middle of publishing")
        return real_upload(**kwargs)

    with mock.patch.object(objects, "upload_file", side_effect=flaky_upload), pytest.raises(ConnectionError):
        load.lambda_handler(t, None)
    assert get_job("crash")["status"] == "TRANSFORMED"
    with pytest.raises(aws.exceptions.NoSuchKey):
        aws.get_object(Bucket=BUCKET, Key="manifests/crash.json")  # nothing committed yet

    result = load.lambda_handler(t, None)
    manifest = json.loads(read_object(aws, result["manifest"]))
    assert manifest["rows"] == 30 and len(manifest["files"]) == 1
    assert get_job("crash")["counts"]["loaded"] == 30


def test_validate_crash_midway_then_retry(aws):
    event = put_incoming(aws, job_id="vcrash", body=good_file(10))
    received = ingest.lambda_handler(event, None)
    with (
        mock.patch.object(objects, "upload_file", side_effect=[None, ConnectionError("boom")]),
        pytest.raises(ConnectionError),
    ):
        validate.lambda_handler(received, None)
    out = validate.lambda_handler(received, None)
    assert out["valid"] == 10 and get_job("vcrash")["counts"]["valid"] == 10


def test_reconciliation_mismatch_fails_loudly(aws):
    event = put_incoming(aws, job_id="tampered", body=good_file(5))
    t = transform.lambda_handler(validate.lambda_handler(ingest.lambda_handler(event, None), None), None)
    from boto3 import resource

    resource("dynamodb").Table("test-jobs").update_item(
        Key={"jobId": "tampered"},
        UpdateExpression="SET totals.#v = :t",
        ExpressionAttributeNames={"#v": "valid"},
        ExpressionAttributeValues={":t": {"USD": "999.99"}},
    )
    with pytest.raises(ReconciliationError, match="tampered"):
        load.lambda_handler(t, None)
    with pytest.raises(aws.exceptions.NoSuchKey):
        aws.get_object(Bucket=BUCKET, Key="manifests/tampered.json")


def test_unreadable_file_fails_and_failure_handler_records_it(aws):
    event = put_incoming(aws, job_id="empty", body="")
    with pytest.raises(UnreadableFileError, match="empty"):
        ingest.lambda_handler(event, None)
    result = failure.lambda_handler(
        {**event, "error": {"Error": "UnreadableFileError", "Cause": "file is empty"}}, None
    )
    assert result["status"] == "FAILED" and result["recorded"] == "created"
    job = get_job("empty")
    assert job["status"] == "FAILED" and job["error"] == {
        "Error": "UnreadableFileError",
        "Cause": "file is empty",
    }


def test_failure_marks_owned_job_and_allows_retry(aws):
    event = put_incoming(aws, job_id="fails", body=good_file(3))
    received = ingest.lambda_handler(event, None)
    out = failure.lambda_handler({**received, "error": {"Error": "States.Timeout", "Cause": "slow"}}, None)
    assert out["recorded"] == "updated" and get_job("fails")["status"] == "FAILED"
    assert run_chain(event)[-1]["status"] == "LOADED"  # a new start takes a FAILED job over


def test_refused_start_does_not_clobber_running_job(aws):
    event = put_incoming(aws, job_id="owner", body=good_file(3))
    ingest.lambda_handler(event, None)
    out = failure.lambda_handler({**event, "error": {"Error": "JobInProgressError", "Cause": "busy"}}, None)
    assert out["status"] == "FAILED" and out["recorded"] == "not-owner"
    job = get_job("owner")
    assert job["status"] == "RECEIVED" and job["lastRefusedStart"]["Error"] == "JobInProgressError"


def test_s3_event_notification_with_encoded_key(aws):
    key = "incoming/evt-1/my file+v1.csv"
    aws.put_object(Bucket=BUCKET, Key=key, Body=good_file(2).encode())
    event = {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": "incoming/evt-1/my+file%2Bv1.csv"}}}]}
    out = ingest.lambda_handler(event, None)
    assert out["jobId"] == "evt-1" and get_job("evt-1")["source"]["key"] == key


def test_inline_list_payload_loads(aws):
    rows = [
        {
            "transaction_id": f"I{i}",
            "account_id": "ACC9",
            "booked_at": "2024-05-01T00:00:00+00:00",
            "amount": "0.100",
            "currency": "KWD",
            "direction": "DEBIT",
        }
        for i in range(3)
    ]
    outputs = run_chain({"jobId": "inline", "data": rows})
    assert outputs[-1]["status"] == "LOADED"
    assert get_job("inline")["totals"]["loaded"] == {"KWD": "0.300"}
    assert get_job("inline")["source"]["key"].startswith("raw/inline/")
