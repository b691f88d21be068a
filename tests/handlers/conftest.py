"""Fixtures: fake credentials, moto-backed bucket and jobs table shaped like the real ones."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from handlers.config import get_settings
from handlers.dal.clients import reset_clients

BUCKET = "test-data-bucket"
TABLE = "test-jobs"
HEADER = "transaction_id,account_id,booked_at,amount,currency,direction,description"


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DATA_BUCKET": BUCKET,
        "JOBS_TABLE": TABLE,
        "REJECT_THRESHOLD": "0.05",
        "CODE_VERSION": "test-version",
        "POWERTOOLS_SERVICE_NAME": "pipeline-test",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "WORK_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    get_settings.cache_clear()
    reset_clients()
    yield
    get_settings.cache_clear()
    reset_clients()


@pytest.fixture
def aws(aws_env):
    """A data bucket and the jobs table (hash key jobId:S only, no sort key, no GSI)."""
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def good_row(
    n: int,
    *,
    amount: str = "10.00",
    currency: str = "USD",
    direction: str = "CREDIT",
    booked_at: str = "2024-03-01T10:00:00Z",
    account: str = "ACC1",
) -> str:
    return f"T{n:05d},{account},{booked_at},{amount},{currency},{direction},row {n}"


def put_incoming(s3, *, job_id: str, body: str | bytes, name: str = "tx.csv") -> dict:
    key = f"incoming/{job_id}/{name}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return {"jobId": job_id, "source": {"bucket": BUCKET, "key": key}}


def get_job(job_id: str) -> dict:
    return boto3.resource("dynamodb").Table(TABLE).get_item(Key={"jobId": job_id}, ConsistentRead=True)["Item"]


def read_object(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def run_chain(event: dict) -> list[dict]:
    """ingest -> validate -> (Choice) -> transform -> load, in process, like the state machine."""
    from handlers import ingest, load, transform, validate

    outputs = [ingest.lambda_handler(event, None)]
    outputs.append(validate.lambda_handler(outputs[-1], None))
    if outputs[-1]["status"] == "REJECTED":
        return outputs
    outputs.append(transform.lambda_handler(outputs[-1], None))
    outputs.append(load.lambda_handler(outputs[-1], None))
    return outputs
