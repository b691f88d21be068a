from tests.handlers.conftest import csv_text, get_job, good_row, put_incoming, run_job


def test_smoke(aws, monkeypatch):
    rows = [good_row(i, amount=f"{i}.01") for i in range(1, 200)] + [good_row(5)]
    event = put_incoming(aws, job_id="smoke", body=csv_text(*rows))
    monkeypatch.setenv("CHUNK_BYTES", "1000")
    from handlers.config import get_settings
    get_settings.cache_clear()
    outputs = run_job(event)
    print(outputs)
    job = get_job("smoke")
    print({k: job[k] for k in ("status", "counts", "totals")})
    assert job["status"] == "LOADED"
