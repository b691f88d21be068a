"""Fixtures: fake credentials, moto-backed bucket and jobs table shaped like the real ones."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from handlers.config import get_settings
from handlers.dal import ledger
from handlers.dal.clients import reset_clients

BUCKET = "test-data-bucket"
DATABASE = "test_catalog"
WORK_BUCKET = "test-work-bucket"
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
        "WORK_BUCKET": WORK_BUCKET,
        "GLUE_DATABASE": DATABASE,
        "JOBS_TABLE": TABLE,
        "REJECT_THRESHOLD": "0.05",
        "ENVIRONMENT_SUFFIX": "test",
        "CHUNK_BYTES": str(128 << 20),
        "DEDUP_PARTITION_RECORDS": "4000000",
        "TRANSFORM_ITEM_ROWS": "25000000",
        "MAX_RUNNING_JOBS": "4",
        "JOB_LEASE_SECONDS": "1800",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "FinancialPipeline",
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
    ledger.reset()
    yield
    get_settings.cache_clear()
    reset_clients()
    ledger.reset()


@pytest.fixture
def aws(aws_env):
    """The versioned data and work buckets and the jobs table with its queue index, as the storage layer makes them."""
    from local import moto_patches

    moto_patches.apply_s3_checksums()
    moto_patches.apply_atomic_dynamodb_writes()
    moto_patches.apply_s3_version_listing()
    moto_patches.apply_s3_ranged_reads()
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (BUCKET, WORK_BUCKET):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        create_jobs_table()
        create_tables(s3)
        yield s3


def create_tables(s3, bucket: str = BUCKET) -> None:
    """The published Iceberg tables, registered as the storage layer registers them."""
    from tests.tables import register_tables

    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    register_tables(s3=s3, glue=glue, bucket=bucket, database=DATABASE, environment="test")


def create_jobs_table() -> None:
    """The jobs table with its queue index, as the storage layer makes it."""
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "jobId", "AttributeType": "S"},
            {"AttributeName": "queue", "AttributeType": "S"},
            {"AttributeName": "ticket", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "queue-index",
                "KeySchema": [
                    {"AttributeName": "queue", "KeyType": "HASH"},
                    {"AttributeName": "ticket", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


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


def bucket_of(key: str) -> str:
    """The bucket a key of the pipeline's lives in (lake/layout.py)."""
    from lake.layout import WORK

    return WORK_BUCKET if key.split("/", 1)[0] in WORK else BUCKET


def read_object(s3, key: str) -> bytes:
    return s3.get_object(Bucket=bucket_of(key), Key=key)["Body"].read()


def quarantined(s3, job_id: str) -> list[dict]:
    """The job's rejected rows, in line order (its quarantine parts, chunk by chunk)."""
    from lake.layout import quarantine_keys

    plan = get_job(job_id)["plan"]
    return [
        json.loads(line)
        for key in quarantine_keys(job_id, plan["planId"], int(plan["chunks"]))
        for line in read_object(s3, key).splitlines()
    ]


class Context:
    """What Powertools' inject_lambda_context reads from a Lambda context."""

    function_name = "pipeline-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:pipeline-test"
    memory_limit_in_mb = 1024
    aws_request_id = "test-request"
    log_group_name = "/aws/lambda/pipeline-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


CONTEXT = Context()


def invoke(module, event: dict) -> dict:
    """A handler called the way Lambda calls it (JSON in, JSON out)."""
    return json.loads(json.dumps(module.lambda_handler(json.loads(json.dumps(event)), CONTEXT)))


def map_items(s3, key: str) -> list[dict]:
    return json.loads(read_object(s3, key))


def run_job(event: dict, *, s3=None) -> list[dict]:
    """The state machine's path for one job, in process: ingest, admission, plan (a re-sent file ends
    there), the chunk map,
    the duplicate map and second pass when there is more than one chunk, the verdict, the date map,
    load, and the release of the slot. Returns the stage outputs in order."""
    from handlers import admit, dedupe, ingest, load, plan, summarize, transform, validate

    s3 = s3 or boto3.client("s3")
    outputs = [invoke(ingest, {"input": event, "executionArn": "arn:test"})]
    if outputs[-1]["status"] != "QUEUED":
        return outputs
    job = {"jobId": outputs[-1]["jobId"], "runId": outputs[-1]["runId"]}
    outputs.append(invoke(admit, {"action": "arrive", **job}))
    if not outputs[-1]["admitted"]:
        return outputs
    try:
        planned = invoke(plan, job)
        outputs.append(planned)
        if planned.get("status") == "RESENT":  # the file of another job: straight to the release
            return outputs
        ids = {**job, "planId": planned["planId"]}
        for item in map_items(s3, planned["chunksKey"]):
            invoke(validate, {**ids, "chunk": item})
        if planned["chunks"] > 1:
            for item in map_items(s3, planned["partitionsKey"]):
                invoke(dedupe, {**ids, "partition": item})
        verdict = invoke(summarize, ids)
        while verdict["status"] == "REVALIDATE":
            for item in map_items(s3, verdict["revalidateKey"]):
                invoke(validate, {**ids, "chunk": item})
            verdict = invoke(summarize, ids)
        outputs.append(verdict)
        if verdict["status"] == "VALIDATED":
            for item in map_items(s3, verdict["datesKey"]):
                invoke(transform, {**ids, "item": item})
            outputs.append(invoke(load, ids))
    finally:
        invoke(admit, {"action": "release", **job})
    return outputs


run_chain = run_job
