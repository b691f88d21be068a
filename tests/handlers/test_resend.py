"""A re-sent file: the same bytes under another key, after the first one loaded or while it runs.

Invariant: one job per file content. The re-send ends RESENT naming the job that holds the content,
with its source and digest recorded; it publishes nothing (no manifest, no processed file, no
staging file), frees its slot at once, counts in JobsResent and never in JobsFailed, and sends no
failure notification (it never takes the failure path). A corrected file (other bytes) is a load of
its own.
"""

from __future__ import annotations

import json

import pytest

from handlers import admit, failure, ingest, plan
from handlers.config import get_settings
from handlers.dal import admission
from lake import layout, metrics
from tests.handlers.conftest import (
    BUCKET,
    WORK_BUCKET,
    csv_text,
    get_job,
    good_row,
    invoke,
    put_incoming,
    run_chain,
)


def a_file(rows: int = 6) -> str:
    return csv_text(*(good_row(n, amount=f"{n}.25") for n in range(1, rows + 1)))


def listed(s3, bucket: str, prefix: str) -> list[tuple[str, str]]:
    versions = s3.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", [])
    return sorted((v["Key"], v["VersionId"]) for v in versions)


def emitted(capsys) -> list[dict]:
    """The embedded-metric-format documents Powertools printed (one per flush)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def metric_values(documents: list[dict], name: str) -> list[float]:
    values = []
    for document in documents:
        if name in document:
            value = document[name]
            values.extend(value if isinstance(value, list) else [value])
    return values


@pytest.fixture
def one_slot(monkeypatch):
    monkeypatch.setenv("MAX_RUNNING_JOBS", "1")
    get_settings.cache_clear()


def test_a_resent_file_ends_resent_naming_the_original_and_publishes_nothing(aws):
    assert run_chain(put_incoming(aws, job_id="original", body=a_file()))[-1]["status"] == "LOADED"
    published = listed(aws, BUCKET, f"{layout.PROCESSED}/") + listed(aws, BUCKET, layout.MANIFESTS)

    outputs = run_chain(put_incoming(aws, job_id="again", body=a_file(), name="other-name.csv"))

    assert outputs[-1]["status"] == "RESENT" and outputs[-1]["originalJobId"] == "original"
    job, original = get_job("again"), get_job("original")
    assert job["status"] == "RESENT" and job["originalJobId"] == "original"
    assert job["source"]["key"] == "incoming/again/other-name.csv"  # what was sent, recorded
    assert job["source"]["sha256"] == original["source"]["sha256"]
    assert "error" not in job and job.get("outputs") == {}
    assert listed(aws, BUCKET, f"{layout.PROCESSED}/") + listed(aws, BUCKET, layout.MANIFESTS) == published
    assert listed(aws, WORK_BUCKET, f"{layout.STAGING}/again/") == []  # not even a plan to clean up
    assert listed(aws, BUCKET, f"{layout.QUARANTINE}/again/") == []
    assert original["status"] == "LOADED" and original["runId"] == get_job("original")["runId"]


def test_a_file_resent_while_the_first_still_runs_names_it(aws):
    first = invoke(ingest, put_incoming(aws, job_id="running", body=a_file()))
    invoke(admit, {"action": "arrive", **first})
    invoke(plan, first)  # the first holds the content from its plan on
    outputs = run_chain(put_incoming(aws, job_id="meanwhile", body=a_file()))
    assert outputs[-1] == {
        "jobId": "meanwhile",
        "runId": get_job("meanwhile")["runId"],
        "status": "RESENT",
        "originalJobId": "running",
    }
    assert get_job("running")["status"] == "RECEIVED"  # the first goes on, untouched


def test_the_resend_metric_is_emitted_once_per_environment_and_no_failure_counted(aws, capsys):
    run_chain(put_incoming(aws, job_id="first", body=a_file()))
    queued = invoke(ingest, put_incoming(aws, job_id="second", body=a_file()))
    invoke(admit, {"action": "arrive", **queued})
    capsys.readouterr()

    result = invoke(plan, queued)
    documents = emitted(capsys)
    assert result["status"] == "RESENT"
    assert metric_values(documents, metrics.JOBS_RESENT) == [1.0]
    assert metric_values(documents, metrics.JOBS_FAILED) == []
    (document,) = [d for d in documents if metrics.JOBS_RESENT in d]
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == metrics.NAMESPACE
    assert {"service", "environment"} <= set(directive["Dimensions"][0])  # as the other business metrics
    assert document["service"] == metrics.SERVICE

    assert invoke(plan, queued) == result  # a retried plan returns its stored result...
    assert metric_values(emitted(capsys), metrics.JOBS_RESENT) == []  # ...and counts nothing again


def test_a_resend_frees_its_slot_at_once_for_the_next_waiting_job(aws, one_slot):
    run_chain(put_incoming(aws, job_id="loaded", body=a_file()))
    resent = invoke(ingest, put_incoming(aws, job_id="resent", body=a_file()))
    waiting = invoke(ingest, put_incoming(aws, job_id="waiting", body=a_file(7)))
    assert invoke(admit, {"action": "arrive", **resent})["admitted"] is True
    assert invoke(admit, {"action": "arrive", **waiting})["admitted"] is False

    assert invoke(plan, resent)["status"] == "RESENT"
    # The state machine's next step after a RESENT plan is the release (tests/infra/test_orchestration.py).
    released = invoke(admit, {"action": "release", "jobId": "resent"})
    assert [s["input"]["jobId"] for s in released["start"]] == ["waiting"]
    assert admission.holders() == {"waiting"}


def test_a_slot_a_resend_kept_is_freed_by_the_next_admission(aws, one_slot):
    """Should the release step be lost, RESENT is not a running status: the next admission frees it."""
    run_chain(put_incoming(aws, job_id="loaded", body=a_file()))
    resent = invoke(ingest, put_incoming(aws, job_id="resent", body=a_file()))
    invoke(admit, {"action": "arrive", **resent})
    assert invoke(plan, resent)["status"] == "RESENT"
    later = invoke(ingest, put_incoming(aws, job_id="later", body=a_file(8)))
    assert invoke(admit, {"action": "arrive", **later})["admitted"] is True


def test_a_late_failure_of_a_resent_job_neither_fails_it_nor_counts(aws, capsys):
    run_chain(put_incoming(aws, job_id="first", body=a_file()))
    run_chain(put_incoming(aws, job_id="second", body=a_file()))
    capsys.readouterr()
    recorded = invoke(
        failure,
        {"jobId": "second", "runId": get_job("second")["runId"], "error": {"Error": "States.Timeout", "Cause": "x"}},
    )
    assert recorded["recorded"] == "not-owner"
    assert get_job("second")["status"] == "RESENT" and "error" not in get_job("second")
    assert metric_values(emitted(capsys), metrics.JOBS_FAILED) == []


def test_a_second_start_of_a_resent_job_is_a_replay(aws):
    run_chain(put_incoming(aws, job_id="first", body=a_file()))
    event = put_incoming(aws, job_id="second", body=a_file())
    run_chain(event)
    run_id = get_job("second")["runId"]
    assert run_chain(event) == [{"jobId": "second", "runId": run_id, "status": "REPLAY", "jobStatus": "RESENT"}]


def test_force_loads_a_resent_file_again(aws):
    run_chain(put_incoming(aws, job_id="first", body=a_file()))
    event = put_incoming(aws, job_id="second", body=a_file())
    run_chain(event)
    assert run_chain({**event, "force": True})[-1]["status"] == "LOADED"
    assert get_job("second")["counts"]["loaded"] == 6 and "originalJobId" not in get_job("second")


def test_a_corrected_file_is_not_a_resend(aws):
    run_chain(put_incoming(aws, job_id="first", body=a_file()))
    corrected = a_file().replace("3.25", "3.50")  # other bytes: a load of its own (the ledger's correction)
    assert run_chain(put_incoming(aws, job_id="corrected", body=corrected))[-1]["status"] == "LOADED"


@pytest.mark.parametrize("ended", ["REJECTED", "FAILED"])
def test_content_of_a_job_that_did_not_load_is_taken_over_not_resent(aws, ended):
    body = a_file() if ended == "FAILED" else csv_text(good_row(1), "X,ACC1,not-a-time,1,USD,CREDIT,")
    event = put_incoming(aws, job_id="first", body=body)
    if ended == "FAILED":
        queued = invoke(ingest, event)
        invoke(admit, {"action": "arrive", **queued})
        invoke(plan, queued)
        invoke(failure, {**queued, "error": {"Error": "States.Timeout", "Cause": "slow"}})
    else:
        run_chain(event)
    assert get_job("first")["status"] == ended
    outputs = run_chain(put_incoming(aws, job_id="second", body=body))
    assert outputs[-1]["status"] == ("REJECTED" if ended == "REJECTED" else "LOADED")
    assert get_job("second")["status"] != "RESENT"
