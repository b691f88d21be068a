"""The load function's commits (handlers/dal/ledger.py) against the emulator's Glue, which refuses a
stale VersionId as Glue does: jobs committing at the same moment all land, each once, and no state a
reader could have seen holds part of a job or both a corrected job and its correction."""

from __future__ import annotations

import io
import threading
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from local_emu_helpers import REGION

from handlers.dal import ledger
from handlers.dal.clients import reset_clients
from handlers.logic.curated import TRANSACTION_SCHEMA
from lake import layout, schema
from tests.tables import register_tables

ROWS_PER_JOB = 7
DAY = date(2024, 3, 1)


@pytest.fixture
def lake(emulator, monkeypatch):
    """The real `transactions` table, registered as the storage layer registers it, in a fresh database."""
    for name, value in {
        "AWS_ENDPOINT_URL": emulator.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    ledger.reset()
    reset_clients()
    suffix = uuid.uuid4().hex[:8]
    bucket, database = f"ledger-{suffix}", f"ledger_{suffix}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": database})
    register_tables(
        s3=s3, glue=glue, bucket=bucket, database=database, environment=suffix, tables=(schema.TRANSACTIONS,)
    )
    yield bucket, database
    ledger.reset()
    reset_clients()


def _data_file(bucket: str, job_id: str, tag: str = "") -> str:
    """A job's Parquet file under the table's location, as load copies it there."""
    rows = pa.table(
        {
            "job_id": [job_id] * ROWS_PER_JOB,
            "source_line": list(range(2, 2 + ROWS_PER_JOB)),
            "transaction_id": [f"{job_id}{tag}-T{n}" for n in range(ROWS_PER_JOB)],
            "account_id": ["ACC1"] * ROWS_PER_JOB,
            "booked_at": [datetime(2024, 3, 1, 10, tzinfo=UTC)] * ROWS_PER_JOB,
            "amount": [Decimal("10.5000")] * ROWS_PER_JOB,
            "signed_amount": [Decimal("10.5000")] * ROWS_PER_JOB,
            "currency": ["USD"] * ROWS_PER_JOB,
            "minor_units": [2] * ROWS_PER_JOB,
            "direction": ["CREDIT"] * ROWS_PER_JOB,
            "description": [""] * ROWS_PER_JOB,
            "extra": ["{}"] * ROWS_PER_JOB,
            "booking_date": [DAY] * ROWS_PER_JOB,
        },
        schema=TRANSACTION_SCHEMA,
    )
    buffer = io.BytesIO()
    pq.write_table(rows, buffer)
    key = layout.processed_rows_key(job_id, "plan1", DAY.isoformat(), 0)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue(), ChecksumAlgorithm="SHA256")
    return f"s3://{bucket}/{key}"


def _commit(bucket: str, database: str, job_id: str, *, replaces: str | None = None, tag: str = "") -> int:
    marks = ledger.summary(job_id=job_id, run_id="run1", plan_id="plan1")
    return ledger.commit_job(
        database=database,
        table=schema.TRANSACTIONS.name,
        files=[_data_file(bucket, job_id, tag)],
        marks=marks,
        properties={**marks, **ledger.summary(replaces=replaces)},
        remove_jobs=[job_id, *([replaces] if replaces else [])],
    )


def _visible_states(database: str) -> list[dict[str, int]]:
    """Rows per job in every state a reader could have seen: each metadata file the table pointed at,
    its current snapshot (not the snapshots a commit wrote on the way)."""
    from pyiceberg.table import StaticTable

    table = ledger.catalog().load_table((database, schema.TRANSACTIONS.name))
    locations = [entry.metadata_file for entry in table.metadata.metadata_log] + [table.metadata_location]
    states = []
    for location in locations:
        seen = StaticTable.from_metadata(location, {"py-io-impl": "handlers.dal.iceberg_io.Boto3FileIO"})
        if seen.current_snapshot() is None:
            states.append({})
            continue
        jobs = seen.scan(selected_fields=("job_id",)).to_arrow().column("job_id").to_pylist()
        states.append({job: jobs.count(job) for job in set(jobs)})
    return states


def test_jobs_committing_at_once_all_land_whole_each_once(lake):
    bucket, database = lake
    jobs, errors = [f"job-{n}" for n in range(6)], []

    def commit(job_id: str) -> None:
        try:
            _commit(bucket, database, job_id)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"{job_id}: {error!r}")

    started = time.monotonic()
    threads = [threading.Thread(target=commit, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    elapsed = time.monotonic() - started
    assert not errors, errors

    table = ledger.catalog().load_table((database, schema.TRANSACTIONS.name))
    landed = table.scan().to_arrow().column("job_id").to_pylist()
    assert {job: landed.count(job) for job in jobs} == dict.fromkeys(jobs, ROWS_PER_JOB)
    committed = [s.summary.additional_properties.get("pipeline.job-id") for s in table.metadata.snapshots]
    assert sorted(committed) == sorted(jobs)  # one snapshot each: no commit made twice, none lost
    for state in _visible_states(database):
        assert all(count == ROWS_PER_JOB for count in state.values()), state  # never part of a job
    print(f"{len(jobs)} concurrent job commits in {elapsed:.1f} s")


def test_a_commit_retried_after_it_landed_is_not_made_twice(lake):
    bucket, database = lake
    first = _commit(bucket, database, "job-once")
    assert _commit(bucket, database, "job-once") == first  # the retry finds its own snapshot
    table = ledger.catalog().load_table((database, schema.TRANSACTIONS.name))
    assert len(table.metadata.snapshots) == 1
    assert table.scan().to_arrow().num_rows == ROWS_PER_JOB


def test_a_correction_replaces_its_job_in_one_visible_step_while_others_commit(lake):
    bucket, database = lake
    _commit(bucket, database, "original")
    errors: list[str] = []

    def commit(job_id: str, replaces: str | None = None) -> None:
        try:
            _commit(bucket, database, job_id, replaces=replaces, tag="-fixed" if replaces else "")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"{job_id}: {error!r}")

    threads = [threading.Thread(target=commit, args=("correction", "original"))] + [
        threading.Thread(target=commit, args=(f"other-{n}",)) for n in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors

    table = ledger.catalog().load_table((database, schema.TRANSACTIONS.name))
    jobs = table.scan().to_arrow().column("job_id").to_pylist()
    assert "original" not in jobs and jobs.count("correction") == ROWS_PER_JOB
    states = _visible_states(database)
    since_original = states[next(n for n, state in enumerate(states) if "original" in state) :]
    for state in since_original:
        # Either the original or its correction, whole; never both, never neither once the original was in.
        assert ("original" in state) != ("correction" in state), state
        assert all(count == ROWS_PER_JOB for count in state.values()), state
