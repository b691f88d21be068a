"""Corrections replace: a corrected file names the job it replaces; its load removes that job's rows and
adds its own in one commit per table, and the replaced job becomes SUPERSEDED, naming its successor."""

from __future__ import annotations

from decimal import Decimal

import pytest

from handlers.dal import ledger
from handlers.errors import InvalidInputError, JobConflictError
from tests.handlers.conftest import (
    BUCKET,
    DATABASE,
    csv_text,
    get_job,
    good_row,
    put_incoming,
    run_chain,
)


def _rows(table: str) -> list[dict]:
    return ledger.catalog().load_table((DATABASE, table)).scan().to_arrow().to_pylist()


def _broken_then_fixed() -> tuple[str, str]:
    """A file with one rejected row (loads: 1 of 20 is under the 5% threshold), and its correction."""
    rows = [good_row(n, booked_at=f"2024-03-0{1 + n % 2}T10:00:00Z") for n in range(1, 20)]
    broken = csv_text(*rows, good_row(20, amount="12.345"))  # USD has 2 minor units: rejected
    fixed = csv_text(*rows, good_row(20, amount="12.35"))
    return broken, fixed


def test_a_corrected_file_replaces_its_job_in_one_commit_and_supersedes_it(aws):
    broken, fixed = _broken_then_fixed()
    assert run_chain(put_incoming(aws, job_id="daily-1", body=broken))[-1]["status"] == "LOADED"
    assert get_job("daily-1")["counts"]["rejected"] == 1
    before = {t: len(ledger.catalog().load_table((DATABASE, t)).metadata.snapshots) for t in ("transactions",)}

    event = {**put_incoming(aws, job_id="daily-1-fix", body=fixed, name="fixed.csv"), "replaces": "daily-1"}
    assert run_chain(event)[-1]["status"] == "LOADED"

    replaced, successor = get_job("daily-1"), get_job("daily-1-fix")
    assert replaced["status"] == "SUPERSEDED" and replaced["supersededBy"] == "daily-1-fix"
    assert successor["replaces"] == "daily-1"
    # Only the correction's rows remain: every transaction once, the fixed row included.
    transactions = _rows("transactions")
    assert {r["job_id"] for r in transactions} == {"daily-1-fix"}
    assert sorted(r["transaction_id"] for r in transactions) == sorted(f"T{n:05d}" for n in range(1, 21))
    assert sum(r["amount"] for r in transactions) == Decimal("190.00") + Decimal("12.35")
    assert {r["job_id"] for r in _rows("daily_totals")} == {"daily-1-fix"}
    assert sum(r["credit_total"] for r in _rows("daily_totals")) == Decimal("202.35")
    # One commit: the delete of daily-1 and the correction's files became visible together, their
    # snapshots carrying the correction's marks.
    table = ledger.catalog().load_table((DATABASE, "transactions"))
    new = table.metadata.snapshots[before["transactions"] :]
    assert {s.summary.additional_properties["pipeline.job-id"] for s in new} == {"daily-1-fix"}
    assert {s.summary.additional_properties["pipeline.replaces"] for s in new} == {"daily-1"}
    assert {s.summary.operation.value for s in new} == {"delete", "append"}
    # The quality history keeps both jobs' figures.
    quality = _rows("job_quality")
    rejected = {q["job_id"]: q["value"] for q in quality if q["measure"] == "rows_rejected"}
    assert rejected == {"daily-1": 1, "daily-1-fix": 0}


def test_a_correction_of_a_job_that_did_not_load_is_refused_naming_it(aws):
    _, fixed = _broken_then_fixed()
    event = {**put_incoming(aws, job_id="orphan-fix", body=fixed), "replaces": "never-loaded"}
    with pytest.raises(InvalidInputError, match="replaces job never-loaded, which does not exist"):
        run_chain(event)
    assert _rows("transactions") == []


def test_a_job_is_replaced_once(aws):
    broken, fixed = _broken_then_fixed()
    run_chain(put_incoming(aws, job_id="d2", body=broken))
    run_chain({**put_incoming(aws, job_id="d2-fix", body=fixed, name="f.csv"), "replaces": "d2"})
    again = fixed.replace("12.35", "12.36")
    event = {**put_incoming(aws, job_id="d2-fix-2", body=again, name="g.csv"), "replaces": "d2"}
    with pytest.raises(InvalidInputError, match="which is SUPERSEDED \\(replaced by d2-fix\\)"):
        run_chain(event)
    assert {r["job_id"] for r in _rows("transactions")} == {"d2-fix"}


def test_an_upload_names_the_job_it_replaces_in_its_metadata(aws):
    broken, fixed = _broken_then_fixed()
    run_chain(put_incoming(aws, job_id="d3", body=broken))
    aws.put_object(
        Bucket=BUCKET,
        Key="incoming/fix.csv",
        Body=fixed.encode(),
        Metadata={"job-id": "d3-fix", "replaces-job": "d3"},
    )
    event = {"jobId": "d3-fix", "source": {"bucket": BUCKET, "key": "incoming/fix.csv"}}
    assert run_chain(event)[-1]["status"] == "LOADED"
    assert get_job("d3")["status"] == "SUPERSEDED"
    assert {r["job_id"] for r in _rows("transactions")} == {"d3-fix"}


def test_a_superseded_job_is_not_run_again_even_forced(aws):
    broken, fixed = _broken_then_fixed()
    original = put_incoming(aws, job_id="d4", body=broken)
    run_chain(original)
    run_chain({**put_incoming(aws, job_id="d4-fix", body=fixed, name="f.csv"), "replaces": "d4"})
    with pytest.raises(JobConflictError, match="job d4 was replaced by job d4-fix"):
        run_chain({**original, "force": True})
    assert {r["job_id"] for r in _rows("transactions")} == {"d4-fix"}
