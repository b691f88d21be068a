import json
from decimal import Decimal

import pyarrow.parquet as pq

from handlers.dal import ledger
from lake.layout import manifest_key
from tests.handlers.conftest import (
    BUCKET,
    DATABASE,
    csv_text,
    get_job,
    good_row,
    put_incoming,
    quarantined,
    read_object,
    run_chain,
)


def test_chain_loads_good_file_and_reconciles(aws, tmp_path):
    rows = [good_row(i, amount=f"{i}.5", booked_at=f"2024-03-0{1 + i % 3}T23:30:00-02:00") for i in range(1, 41)]
    rows.append(good_row(99, amount="1000", currency="JPY", direction="DEBIT"))
    event = put_incoming(aws, job_id="job-good", body=csv_text(*rows))

    outputs = run_chain(event)

    assert [o.get("status") for o in outputs] == ["QUEUED", None, None, "VALIDATED", "LOADED"]
    assert outputs[1]["admitted"] is True and outputs[2]["chunks"] == 1
    job = get_job("job-good")
    assert job["status"] == "LOADED"
    assert job["counts"]["received"] == 41 and job["counts"]["loaded"] == 41 and job["counts"]["rejected"] == 0
    assert job["totals"]["valid"] == {"JPY": "1000", "USD": "840.00"}
    assert job["totals"]["loaded"] == job["totals"]["valid"]
    assert job["codeVersion"] == "test-version"
    assert set(job["stageTimes"]) >= {"queued", "admitted", "plan", "summarize", "load"}
    manifest = json.loads(read_object(aws, manifest_key("job-good")))
    assert manifest["rows"] == 41 and manifest["reconciliation"]["balanced"]
    # -02:00 at 23:30 books on the next UTC day; the JPY row is 2024-03-01T10:00Z
    assert [f["bookingDate"] for f in manifest["files"]] == [
        "2024-03-01",
        "2024-03-02",
        "2024-03-03",
        "2024-03-04",
    ]
    local = tmp_path / "p.parquet"
    local.write_bytes(read_object(aws, manifest["files"][1]["key"]))
    table = pq.read_table(local)
    assert table.column("amount").to_pylist()[0] % 1 == Decimal("0.5")
    assert str(table.schema.field("amount").type) == "decimal128(38, 4)"
    assert str(table.schema.field("booked_at").type) == "timestamp[us, tz=UTC]"
    assert manifest["source"]["bucket"] == BUCKET
    # Published: the Iceberg table holds the job's rows in one commit, its snapshot naming the job,
    # and sums exactly to what validation counted.
    transactions = ledger.catalog().load_table((DATABASE, "transactions"))
    (snapshot,) = transactions.metadata.snapshots
    assert snapshot.snapshot_id == manifest["snapshots"]["transactions"]
    assert snapshot.summary.additional_properties["pipeline.job-id"] == "job-good"
    assert snapshot.summary.additional_properties["pipeline.code-version"] == "test-version"
    rows = transactions.scan().to_arrow()
    assert rows.num_rows == 41
    sums = {
        c: sum(a for a, cur in zip(rows["amount"].to_pylist(), rows["currency"].to_pylist(), strict=True) if cur == c)
        for c in ("JPY", "USD")
    }
    assert sums == {"JPY": Decimal("1000"), "USD": Decimal("840.00")}
    quality = ledger.catalog().load_table((DATABASE, "job_quality")).scan().to_arrow().to_pylist()
    figures = {(q["measure"], q["key"]): q["value"] for q in quality}
    assert figures[("rows_received", "")] == 41 and figures[("total_valid", "USD")] == Decimal("840.00")
    assert {q["verdict"] for q in quality} == {"LOADED"}


def test_seed_sample_payload_is_rejected_not_crashing(aws):
    outputs = run_chain({"jobId": "test-123", "data": {"sample": "data"}})

    assert outputs[-1]["status"] == "REJECTED"
    job = get_job("test-123")
    assert job["status"] == "REJECTED"
    assert job["unknownColumns"] == ["sample"]
    assert job["counts"]["reasons"] == {"MISSING_FIELD": 1}
    rejected = quarantined(aws, "test-123")
    assert rejected[0]["reasons"] == ["MISSING_FIELD"]
    assert rejected[0]["record"]["sample"] == "data"
    assert "manifest" not in job["outputs"]
