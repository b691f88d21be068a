import json

import pyarrow.parquet as pq

from tests.handlers.conftest import BUCKET, csv_text, get_job, good_row, put_incoming, read_object, run_chain


def test_chain_loads_good_file_and_reconciles(aws, tmp_path):
    rows = [good_row(i, amount=f"{i}.5", booked_at=f"2024-03-0{1 + i % 3}T23:30:00-02:00") for i in range(1, 41)]
    rows.append(good_row(99, amount="1000", currency="JPY", direction="DEBIT"))
    event = put_incoming(aws, job_id="job-good", body=csv_text(*rows))

    outputs = run_chain(event)

    assert [o["status"] for o in outputs] == ["RECEIVED", "VALIDATED", "TRANSFORMED", "LOADED"]
    job = get_job("job-good")
    assert job["status"] == "LOADED"
    assert job["counts"]["received"] == 41 and job["counts"]["loaded"] == 41 and job["counts"]["rejected"] == 0
    assert job["totals"]["valid"] == {"JPY": "1000", "USD": "840.00"}
    assert job["totals"]["loaded"] == job["totals"]["valid"]
    assert job["codeVersion"] == "test-version"
    assert set(job["stageTimes"]) >= {"received", "validate", "transform", "load"}
    manifest = json.loads(read_object(aws, "manifests/job-good.json"))
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
    assert table.column("amount").to_pylist()[0].endswith(".50")
    assert str(table.schema.field("booked_at").type) == "timestamp[us, tz=UTC]"
    assert manifest["source"]["bucket"] == BUCKET


def test_seed_sample_payload_is_rejected_not_crashing(aws):
    outputs = run_chain({"jobId": "test-123", "data": {"sample": "data"}})

    assert outputs[-1]["status"] == "REJECTED"
    job = get_job("test-123")
    assert job["status"] == "REJECTED"
    assert job["unknownColumns"] == ["sample"]
    assert job["counts"]["reasons"] == {"MISSING_FIELD": 1}
    quarantined = [json.loads(line) for line in read_object(aws, job["outputs"]["quarantine"]).splitlines()]
    assert quarantined[0]["reasons"] == ["MISSING_FIELD"]
    assert quarantined[0]["record"]["sample"] == "data"
    assert "staging" not in job["outputs"]
