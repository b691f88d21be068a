"""Stage behaviour against moto: idempotency, replays, conflicts, crashes, the failure path,
admission, and chunked jobs giving the answers of one chunk."""

import json
import os
import threading
from unittest import mock

import pytest

from handlers import admit, failure, ingest, load, plan, summarize, transform, validate
from handlers.config import get_settings
from handlers.dal import admission, jobs, objects
from handlers.errors import JobConflictError, ReconciliationError, UnreadableFileError
from handlers.logic.requests import job_id_for_object
from lake import layout
from tests.handlers.conftest import (
    BUCKET,
    bucket_of,
    csv_text,
    get_job,
    good_row,
    invoke,
    map_items,
    put_incoming,
    quarantined,
    read_object,
    run_chain,
)


def good_file(n=20):
    return csv_text(*(good_row(i, amount=f"{i}.01") for i in range(1, n + 1)))


@pytest.fixture
def settings(monkeypatch):
    """Change the functions' settings for one test."""

    def change(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    return change


def versions(s3, prefix: str) -> dict[str, int]:
    listing = s3.list_object_versions(Bucket=bucket_of(prefix), Prefix=prefix).get("Versions", [])
    counted: dict[str, int] = {}
    for version in listing:
        counted[version["Key"]] = counted.get(version["Key"], 0) + 1
    return counted


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
    rejected = quarantined(aws, "mixed")
    assert [q["line"] for q in rejected] == [59, 60, 61]


def test_threshold_from_input_is_kept_and_judges_the_file(aws):
    body = csv_text(good_row(1), good_row(2), "X,ACC1,2024-03-01T10:00:00Z,1,USD,SIDEWAYS,")
    outputs = run_chain({**put_incoming(aws, job_id="strict", body=body), "rejectThreshold": "0.5"})
    assert outputs[-1]["status"] == "LOADED" and get_job("strict")["rejectThreshold"] == "0.5"
    outputs = run_chain(
        {**put_incoming(aws, job_id="strict2", body=body + good_row(5) + "\r\n"), "rejectThreshold": 0.1}
    )
    assert outputs[-1]["status"] == "REJECTED"
    assert get_job("strict2")["status"] == "REJECTED"


def test_every_step_twice_and_a_whole_replay_write_nothing_new(aws):
    event = put_incoming(aws, job_id="twice", body=good_file())
    queued = invoke(ingest, event)
    invoke(admit, {"action": "arrive", **queued})
    planned = invoke(plan, queued)
    assert invoke(plan, queued) == planned
    ids = {"jobId": "twice", "runId": queued["runId"], "planId": planned["planId"]}
    for item in map_items(aws, planned["chunksKey"]):
        assert invoke(validate, {**ids, "chunk": item})["reused"] is False
        assert invoke(validate, {**ids, "chunk": item})["reused"] is True
    verdict = invoke(summarize, ids)
    assert invoke(summarize, ids) == verdict
    for item in map_items(aws, verdict["datesKey"]):
        assert invoke(transform, {**ids, "item": item})["reused"] is False
        assert invoke(transform, {**ids, "item": item})["reused"] is True
    loaded = invoke(load, ids)
    before = versions(aws, "")
    assert invoke(load, ids) == loaded

    replay = run_chain(event)
    assert replay == [{"jobId": "twice", "runId": queued["runId"], "status": "REPLAY", "jobStatus": "LOADED"}]
    assert versions(aws, "") == before
    assert get_job("twice")["counts"]["loaded"] == 20


def test_a_second_start_of_a_queued_or_running_job_is_a_duplicate(aws):
    event = put_incoming(aws, job_id="busy", body=good_file())
    first = invoke(ingest, event)
    second = invoke(ingest, event)
    assert (first["status"], second["status"]) == ("QUEUED", "DUPLICATE")
    assert second["runId"] == first["runId"] and get_job("busy")["status"] == "QUEUED"


def test_concurrent_starts_one_job(aws):
    event = put_incoming(aws, job_id="race", body=good_file())
    results = []
    threads = [threading.Thread(target=lambda: results.append(invoke(ingest, event))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["status"] for r in results) == ["DUPLICATE", "QUEUED"]
    assert {r["runId"] for r in results} == {get_job("race")["runId"]}


def test_same_job_other_content_refused_unless_forced(aws):
    event = put_incoming(aws, job_id="conflict", body=good_file(5))
    run_chain(event)
    put_incoming(aws, job_id="conflict", body=good_file(6))
    with pytest.raises(JobConflictError, match="another source"):
        invoke(ingest, event)
    outputs = run_chain({**event, "force": True})
    assert outputs[-1]["status"] == "LOADED"
    assert get_job("conflict")["counts"]["loaded"] == 6


def test_same_file_under_another_job_refused_unless_forced(aws):
    run_chain(put_incoming(aws, job_id="first", body=good_file(5)))
    second = put_incoming(aws, job_id="second", body=good_file(5))
    assert run_chain(second)[-1]["status"] == "RESENT"  # refused, and no failure (tests/handlers/test_resend.py)
    assert get_job("second")["originalJobId"] == "first"
    assert run_chain({**second, "force": True})[-1]["status"] == "LOADED"


def test_crash_while_publishing_then_retry_loses_and_duplicates_nothing(aws, settings):
    settings(CHUNK_BYTES="300")  # several chunks, several booking dates: several files to copy
    rows = [good_row(i, booked_at=f"2024-03-0{1 + i % 3}T10:00:00Z") for i in range(1, 31)]
    event = put_incoming(aws, job_id="crash", body=csv_text(*rows))
    real_copy = objects.copy_verified
    calls = []

    def flaky_copy(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise ConnectionError("simulated crash in the middle of publishing")
        return real_copy(**kwargs)

    with mock.patch.object(objects, "copy_verified", side_effect=flaky_copy), pytest.raises(ConnectionError):
        run_chain(event)
    assert get_job("crash")["status"] == "VALIDATED"
    with pytest.raises(aws.exceptions.NoSuchKey):
        aws.get_object(Bucket=BUCKET, Key=layout.manifest_key("crash"))  # nothing committed yet

    job = get_job("crash")
    result = invoke(load, {"jobId": "crash", "runId": job["runId"], "planId": job["plan"]["planId"]})
    manifest = json.loads(read_object(aws, layout.manifest_key("crash")))
    assert result["rows"] == manifest["rows"] == 30 and len(manifest["files"]) == 3
    assert get_job("crash")["counts"]["loaded"] == 30


def test_chunk_crash_midway_then_retry(aws):
    event = put_incoming(aws, job_id="vcrash", body=good_file(10))
    queued = invoke(ingest, event)
    invoke(admit, {"action": "arrive", **queued})
    planned = invoke(plan, queued)
    item = map_items(aws, planned["chunksKey"])[0]
    task = {"jobId": "vcrash", "runId": queued["runId"], "planId": planned["planId"], "chunk": item}
    real_put = objects.put_file
    calls = []

    def second_upload_fails(**kwargs):
        calls.append(kwargs["key"])
        if len(calls) == 2:
            raise ConnectionError("boom")
        return real_put(**kwargs)

    with mock.patch.object(objects, "put_file", side_effect=second_upload_fails), pytest.raises(ConnectionError):
        invoke(validate, task)
    assert invoke(validate, task) == {"chunk": 0, "rejected": 0, "reused": False}
    verdict = invoke(summarize, {"jobId": "vcrash", "runId": queued["runId"], "planId": planned["planId"]})
    assert verdict["valid"] == 10 and get_job("vcrash")["counts"]["valid"] == 10


def test_reconciliation_mismatch_fails_loudly(aws):
    event = put_incoming(aws, job_id="tampered", body=good_file(5))
    real_load = load.lambda_handler

    def tamper_then_load(event, context):
        from boto3 import resource

        resource("dynamodb").Table("test-jobs").update_item(
            Key={"jobId": "tampered"},
            UpdateExpression="SET totals.#v = :t",
            ExpressionAttributeNames={"#v": "valid"},
            ExpressionAttributeValues={":t": {"USD": "999.99"}},
        )
        return real_load(event, context)

    with (
        mock.patch.object(load, "lambda_handler", tamper_then_load),
        pytest.raises(ReconciliationError, match="tampered"),
    ):
        run_chain(event)
    with pytest.raises(aws.exceptions.NoSuchKey):
        aws.get_object(Bucket=BUCKET, Key=layout.manifest_key("tampered"))


def test_unreadable_file_fails_and_failure_handler_records_it(aws):
    event = put_incoming(aws, job_id="empty", body="")
    with pytest.raises(UnreadableFileError, match="empty"):
        run_chain(event)
    job = get_job("empty")
    result = invoke(
        failure,
        {"jobId": "empty", "runId": job["runId"], "error": {"Error": "UnreadableFileError", "Cause": "file is empty"}},
    )
    assert result["status"] == "FAILED" and result["recorded"] == "updated"
    job = get_job("empty")
    assert job["status"] == "FAILED" and job["error"] == {"Error": "UnreadableFileError", "Cause": "file is empty"}


def test_the_first_error_of_a_run_is_kept(aws):
    event = put_incoming(aws, job_id="twofold", body=good_file(3))
    queued = invoke(ingest, event)
    item_error = {"Error": "Sandbox.Timedout", "Cause": "chunk 0 timed out"}
    assert invoke(failure, {**queued, "error": item_error})["recorded"] == "updated"
    map_error = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "an item failed"}
    assert invoke(failure, {**queued, "error": map_error})["recorded"] == "kept"
    assert get_job("twofold")["error"] == item_error


def test_failure_marks_owned_job_and_allows_a_new_run(aws):
    event = put_incoming(aws, job_id="fails", body=good_file(3))
    queued = invoke(ingest, event)
    out = invoke(failure, {**queued, "error": {"Error": "States.Timeout", "Cause": "slow"}})
    assert out["recorded"] == "updated" and get_job("fails")["status"] == "FAILED"
    assert get_job("fails").get("queue") is None  # off the waiting queue
    assert run_chain(event)[-1]["status"] == "LOADED"  # a new start takes a FAILED job over


def test_a_failure_that_was_not_the_jobs_leaves_its_slot_to_the_run_that_owns_it(aws, settings):
    """A second start of a running job is refused (or a stale run stops after a forced takeover):
    its failure path releases with what the failure recorded, and a not-owner's release frees
    nothing; the owner's own failure frees the slot."""
    settings(MAX_RUNNING_JOBS="1")
    event = put_incoming(aws, job_id="holder", body=good_file(3))
    queued = invoke(ingest, event)
    assert invoke(admit, {"action": "arrive", **queued})["admitted"] is True
    refused = invoke(failure, {**event, "error": {"Error": "JobInProgressError", "Cause": "busy"}})
    assert refused["recorded"] == jobs.NOT_OWNER

    invoke(admit, {"action": "release", "jobId": "holder", "recorded": refused["recorded"]})

    assert admission.holders() == {"holder"}
    waiting = invoke(ingest, put_incoming(aws, job_id="waiting", body=good_file(4)))
    assert invoke(admit, {"action": "arrive", **waiting})["admitted"] is False  # the cap holds
    own = invoke(failure, {**queued, "error": {"Error": "States.Timeout", "Cause": "x"}})
    released = invoke(admit, {"action": "release", "jobId": "holder", "recorded": own["recorded"]})
    assert own["recorded"] == "updated" and [s["input"]["jobId"] for s in released["start"]] == ["waiting"]


def test_refused_start_does_not_clobber_running_job(aws):
    event = put_incoming(aws, job_id="owner", body=good_file(3))
    invoke(ingest, event)
    out = invoke(failure, {**event, "error": {"Error": "JobInProgressError", "Cause": "busy"}})
    assert out["status"] == "FAILED" and out["recorded"] == "not-owner"
    job = get_job("owner")
    assert job["status"] == "QUEUED" and job["lastRefusedStart"]["Error"] == "JobInProgressError"


def upload_event(key: str, version: str | None, bucket: str = BUCKET) -> dict:
    """The execution input the EventBridge rule gives an upload (keys arrive URL-encoded)."""
    from urllib.parse import quote_plus

    detail = {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "size": 1, "etag": "x"}}
    if version:
        detail["object"]["version-id"] = version
    event = {"version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3", "detail": detail}
    return {"trigger": "s3-eventbridge", "event": event}


def test_an_upload_is_a_job_per_object_version(aws):
    key = "incoming/partner/my file+v1.csv"
    first = aws.put_object(Bucket=BUCKET, Key=key, Body=good_file(2).encode())
    out = invoke(ingest, upload_event(key, first["VersionId"]))
    assert out["jobId"] == job_id_for_object(key=key, version_id=first["VersionId"]) and out["status"] == "QUEUED"
    assert get_job(out["jobId"])["source"]["key"] == key
    assert invoke(ingest, upload_event(key, first["VersionId"]))["status"] == "DUPLICATE"  # delivered twice
    second = aws.put_object(Bucket=BUCKET, Key=key, Body=good_file(3).encode())
    again = invoke(ingest, upload_event(key, second["VersionId"]))
    assert again["jobId"] != out["jobId"] and again["status"] == "QUEUED"  # a re-upload is a new job
    named = aws.put_object(
        Bucket=BUCKET, Key="incoming/x.csv", Body=good_file(4).encode(), Metadata={"job-id": "daily-42"}
    )
    assert invoke(ingest, upload_event("incoming/x.csv", named["VersionId"]))["jobId"] == "daily-42"


def test_an_upload_outside_incoming_is_refused(aws):
    with pytest.raises(Exception, match="only under incoming/"):
        invoke(ingest, upload_event("processed/loop.csv", None))


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


# --- admission ------------------------------------------------------------------------------------


def test_jobs_beyond_the_cap_wait_in_arrival_order(aws, settings):
    settings(MAX_RUNNING_JOBS="1")
    queued = [invoke(ingest, put_incoming(aws, job_id=f"q{n}", body=good_file(n + 1))) for n in range(3)]
    arrivals = [invoke(admit, {"action": "arrive", **q}) for q in queued]
    assert [a["admitted"] for a in arrivals] == [True, False, False]
    assert [a.get("place") for a in arrivals] == [None, 1, 2]
    assert [get_job(f"q{n}")["status"] for n in range(3)] == ["ADMITTED", "QUEUED", "QUEUED"]
    released = invoke(admit, {"action": "release", "jobId": "q0"})
    assert [s["input"] for s in released["start"]] == [{"admitted": True, "jobId": "q1", "runId": queued[1]["runId"]}]
    assert released["start"][0]["name"].startswith("q1-")
    assert [get_job(f"q{n}")["status"] for n in range(3)] == ["ADMITTED", "ADMITTED", "QUEUED"]


def test_a_slot_held_by_a_job_that_ended_is_freed(aws, settings):
    settings(MAX_RUNNING_JOBS="1")
    first, second = (invoke(ingest, put_incoming(aws, job_id=j, body=good_file(n))) for j, n in (("a", 1), ("b", 2)))
    assert invoke(admit, {"action": "arrive", **first})["admitted"] is True
    invoke(failure, {**first, "error": {"Error": "X", "Cause": "died without releasing"}})
    assert invoke(admit, {"action": "arrive", **second})["admitted"] is True  # a's slot was abandoned


def test_chunks_done_keep_a_long_job_its_slot(aws, settings):
    settings(MAX_RUNNING_JOBS="1", CHUNK_BYTES="64")
    first, second = (invoke(ingest, put_incoming(aws, job_id=j, body=good_file(6))) for j in ("long", "next"))
    invoke(admit, {"action": "arrive", **first})
    planned = invoke(plan, first)
    chunks = map_items(aws, planned["chunksKey"])
    lease = int(os.environ["JOB_LEASE_SECONDS"])
    started = get_job("long")["updatedAt"]
    for n, chunk in enumerate(chunks, start=1):  # each chunk ends just within the lease of the last
        with mock.patch("handlers.dal.jobs.now_epoch", return_value=started + n * (lease - 1)):
            invoke(validate, {**planned, "chunk": chunk})
            assert invoke(admit, {"action": "arrive", **second})["admitted"] is False
    with mock.patch("handlers.dal.jobs.now_epoch", return_value=started + (len(chunks) + 1) * lease):
        assert invoke(admit, {"action": "arrive", **second})["admitted"] is True  # then it went silent


def test_losing_an_admission_race_keeps_the_winners_slot(aws, settings):
    settings(MAX_RUNNING_JOBS="1")
    queued = [invoke(ingest, put_incoming(aws, job_id=j, body=good_file(n))) for n, j in enumerate(("won", "next"), 1)]
    read_job = jobs.get_job

    def read_then_lose_the_race(job_id: str) -> dict | None:
        job = read_job(job_id)
        if job_id == "won" and job["status"] == "QUEUED":  # another admitter takes it right after
            assert admission.hold("won", slots=1)
            assert jobs.admit(
                job_id="won", run_id=job["runId"], timestamp="2026-12-01T00:00:00Z", into=admit.NEW_EXECUTION
            )
        return job

    with mock.patch("handlers.admit.jobs.get_job", side_effect=read_then_lose_the_race):
        assert invoke(admit, {"action": "arrive", **queued[0]})["admitted"] is False  # the other one admitted it
    assert admission.holders() == {"won"}
    assert invoke(admit, {"action": "arrive", **queued[1]})["admitted"] is False  # one slot, held by the winner
    assert [get_job(j)["status"] for j in ("won", "next")] == ["ADMITTED", "QUEUED"]


def test_an_arrival_whose_job_a_forced_start_took_over_starts_the_new_run(aws, settings):
    """A plain start and a forced start of one job at once (an upload, and a forced start-execution by
    hand): the plain start registers the job, the forced one takes it over before the plain one's
    arrival. That arrival must not admit the new run into its own execution, which runs the old run
    and stops at its next stage (the job stayed ADMITTED with nothing running it): it starts the new
    run in an execution of its own, and the forced start's arrival finds it admitted."""
    settings(MAX_RUNNING_JOBS="2")
    event = put_incoming(aws, job_id="raced", body=good_file(2))
    plain = invoke(ingest, event)
    forced = invoke(ingest, {**event, "force": True})
    assert forced["runId"] != plain["runId"] and get_job("raced")["runId"] == forced["runId"]

    arrival = invoke(admit, {"action": "arrive", **plain})

    assert arrival["admitted"] is False
    assert [s["input"] for s in arrival["start"]] == [{"admitted": True, "jobId": "raced", "runId": forced["runId"]}]
    assert get_job("raced")["admittedInto"] == admit.NEW_EXECUTION
    assert invoke(admit, {"action": "arrive", **forced})["admitted"] is False  # run once, by the started execution


def test_a_drain_restarts_an_admitted_job_whose_start_was_lost(aws, settings):
    settings(MAX_RUNNING_JOBS="1")
    first, lost = (invoke(ingest, put_incoming(aws, job_id=j, body=good_file(2))) for j in ("first", "lost"))
    invoke(admit, {"action": "arrive", **first})
    assert invoke(admit, {"action": "arrive", **lost})["admitted"] is False
    started = invoke(admit, {"action": "release", "jobId": "first"})["start"]
    assert [s["input"]["jobId"] for s in started] == ["lost"]  # a new execution, whose start is lost
    assert invoke(admit, {"action": "drain"})["start"] == []  # just admitted: its start is on its way
    with mock.patch(
        "handlers.dal.jobs.now_epoch", return_value=get_job("lost")["updatedAt"] + admit.RESTART_AFTER_SECONDS
    ):
        again = invoke(admit, {"action": "drain"})["start"]
    assert again == started  # the same name: Step Functions refuses it if that execution runs


def test_a_drain_never_starts_a_job_again_that_runs_in_its_own_execution(aws, settings):
    """A job admitted on arrival goes on in the execution its upload started (named by EventBridge):
    a plan longer than RESTART_AFTER_SECONDS must not make a drain start a second execution of it."""
    settings(MAX_RUNNING_JOBS="2")
    queued = invoke(ingest, put_incoming(aws, job_id="long-plan", body=good_file(2)))
    assert invoke(admit, {"action": "arrive", **queued})["admitted"] is True
    with mock.patch(
        "handlers.dal.jobs.now_epoch", return_value=get_job("long-plan")["updatedAt"] + admit.RESTART_AFTER_SECONDS
    ):
        assert invoke(admit, {"action": "drain"})["start"] == []
    assert get_job("long-plan")["admittedInto"] == admit.OWN_EXECUTION


# --- chunks ---------------------------------------------------------------------------------------


def test_a_chunked_job_gives_the_answers_of_one_chunk(aws, settings):
    rows = [good_row(i, amount=f"{i}.05", booked_at=f"2024-03-0{1 + i % 4}T10:00:00Z") for i in range(1, 80)]
    rows[30] = good_row(3, amount="9.99")  # a duplicate across chunks, valid on its own
    rows[60] = "T00007,acc-bad,2024-03-01T10:00:00Z,1.00,USD,DEBIT,x"  # a duplicate that is also invalid
    rows[70] = 'T90001,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,"quoted\nacross lines"'
    body = csv_text(*rows)
    records = {}
    for chunk_bytes in (str(128 << 20), "350"):
        settings(CHUNK_BYTES=chunk_bytes)
        job_id = f"chunks-{chunk_bytes}"
        outputs = run_chain({**put_incoming(aws, job_id=job_id, body=body), "force": True})  # same file twice
        assert outputs[-1]["status"] == "LOADED"
        job = get_job(job_id)
        records[chunk_bytes] = (
            job["counts"]["received"],
            job["counts"]["reasons"],
            job["totals"],
            [(q["line"], q["transaction_id"], q["reasons"]) for q in quarantined(aws, job_id)],
        )
        if chunk_bytes == "350":
            assert int(job["plan"]["chunks"]) > 10
    assert records["350"] == records[str(128 << 20)]
    assert records["350"][1] == {"INVALID_ACCOUNT": 1, "DUPLICATE_ID": 2}


def test_a_new_run_of_a_failed_job_reuses_the_chunks_it_finished(aws, settings):
    settings(CHUNK_BYTES="300")
    event = put_incoming(aws, job_id="rerun", body=good_file(40))
    real_validate = validate.lambda_handler
    seen = []

    def third_chunk_fails(event, context):
        seen.append(event["chunk"]["index"])
        if event["chunk"]["index"] == 2 and seen.count(2) == 1:
            raise ConnectionError("chunk 2 fails for good")
        return real_validate(event, context)

    with mock.patch.object(validate, "lambda_handler", third_chunk_fails), pytest.raises(ConnectionError):
        run_chain(event)
    job = get_job("rerun")
    invoke(failure, {"jobId": "rerun", "runId": job["runId"], "error": {"Error": "ConnectionError"}})
    summaries = f"{layout.plan_prefix('rerun', job['plan']['planId'])}/"
    before = {key: n for key, n in versions(aws, summaries).items() if key.endswith("summary.json")}
    assert outputs_loaded(run_chain(event)) == 40
    after = {key: n for key, n in versions(aws, summaries).items() if key.endswith("summary.json")}
    # Every chunk's result was written once: the finished ones were not validated again.
    assert set(before) < set(after) and set(after.values()) == {1}


def outputs_loaded(outputs: list[dict]) -> int:
    assert outputs[-1]["status"] == "LOADED"
    return outputs[-1]["rows"]
