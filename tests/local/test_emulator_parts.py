"""The emulator's pure parts, in process: EventBridge input transformers, EMF extraction into
CloudWatch, the Lambda concurrency count. The end-to-end suite runs them through a deployment."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from moto import mock_aws

from local import lambda_runner, metrics

EVENT = {
    "version": "0",
    "id": "6f1c",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2026-12-01T03:00:00Z",
    "region": "us-east-2",
    "resources": ["arn:aws:s3:::data"],
    "detail": {"bucket": {"name": "data"}, "object": {"key": 'incoming/a "b".csv', "version-id": "v1"}},
}


def test_a_json_template_gets_strings_escaped_and_the_whole_event():
    target = {
        "InputTransformer": {
            "InputPathsMap": {"key": "$.detail.object.key"},
            "InputTemplate": '{"key": "<key>", "rule": "<aws.events.rule-name>", "event": <aws.events.event.json>}',
        }
    }
    given = json.loads(transformed(target))
    assert given["key"] == 'incoming/a "b".csv'
    assert given["rule"] == "uploads"
    assert given["event"] == EVENT


def test_a_missing_path_is_null_and_a_constant_input_wins():
    target = {"InputTransformer": {"InputPathsMap": {"x": "$.detail.nothing"}, "InputTemplate": '{"x": <x>}'}}
    assert json.loads(transformed(target)) == {"x": None}
    assert transformed({"Input": '{"drain": true}'}) == '{"drain": true}'


def transformed(target):
    from local.events import target_input

    return target_input(target, EVENT, "arn:aws:events:us-east-2:123456789012:rule/uploads", "uploads")


def _powertools_output() -> str:
    emitter = Metrics(namespace="FinancialPipeline", service="financial-pipeline")
    emitter.add_dimension(name="environment", value="dev")
    emitter.add_metric(name="RowsReceived", unit=MetricUnit.Count, value=600)
    emitter.add_metric(name="RowsReceived", unit=MetricUnit.Count, value=4)
    out = io.StringIO()
    with redirect_stdout(out):
        emitter.flush_metrics()
    return "START RequestId: 1\n" + out.getvalue() + "END RequestId: 1\n"


def test_powertools_emf_lines_become_datums():
    (namespace, datum), *rest = metrics.emf_datums(_powertools_output().splitlines()[1])
    assert not rest and namespace == "FinancialPipeline"
    assert datum["MetricName"] == "RowsReceived" and datum["Values"] == [600.0, 4.0]
    assert {d["Name"] for d in datum["Dimensions"]} == {"service", "environment"}
    assert metrics.emf_datums("plain log line") == []
    assert metrics.emf_datums('{"_aws": "not a directive"}') == []


@mock_aws
def test_recorded_points_answer_get_metric_statistics():
    assert metrics.record(_powertools_output(), account_id="123456789012", region="us-east-2") == 2
    now = datetime.now(UTC)
    points = boto3.client("cloudwatch", region_name="us-east-2").get_metric_statistics(
        Namespace="FinancialPipeline",
        MetricName="RowsReceived",
        Dimensions=[{"Name": "service", "Value": "financial-pipeline"}, {"Name": "environment", "Value": "dev"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    assert sum(p["Sum"] for p in points) == 604


def test_concurrency_beyond_the_limit_or_the_reservation_is_throttled(monkeypatch):
    monkeypatch.setattr(lambda_runner.CONFIG, "concurrency", 2)
    slots = lambda_runner.ConcurrencySlots()
    slots.acquire("validate", reserved=None)
    with pytest.raises(lambda_runner.Throttled) as refused:
        slots.acquire("validate", reserved=1)
    assert refused.value.reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    slots.acquire("load", reserved=None)
    with pytest.raises(lambda_runner.Throttled) as refused:
        slots.acquire("ingest", reserved=None)
    assert refused.value.reason == "ConcurrentInvocationLimitExceeded"
    slots.release("validate")
    slots.acquire("ingest", reserved=None)
    assert slots.snapshot() == {"limit": 2, "running": 2, "peak": 2, "throttled": 2}


def _pages(s3, **request) -> list[list[tuple]]:
    """Every page of a versions listing: (key, latest, etag or marker, size) per entry."""
    pages = []
    while True:
        page = s3.list_object_versions(Bucket="versions-bucket", **request)
        pages.append(
            [(v["Key"], v["IsLatest"], v["ETag"], v["Size"]) for v in page.get("Versions", [])]
            + [(m["Key"], m["IsLatest"], "marker", 0) for m in page.get("DeleteMarkers", [])]
        )
        if not page.get("IsTruncated"):
            return pages
        request = {**request, "KeyMarker": page["NextKeyMarker"]}
        if page.get("NextVersionIdMarker"):
            request["VersionIdMarker"] = page["NextVersionIdMarker"]


def _versions_listing(*, patched: bool) -> tuple[list, bytes]:
    import gc

    from moto.s3 import models

    original = models.copy, models.S3Backend.list_object_versions
    try:
        with mock_aws():
            if patched:
                from local.moto_patches import apply_s3_version_listing

                apply_s3_version_listing()
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="versions-bucket")
            s3.put_bucket_versioning(Bucket="versions-bucket", VersioningConfiguration={"Status": "Enabled"})
            for n in range(9):
                s3.put_object(
                    Bucket="versions-bucket", Key=f"dir-{n % 2}/key-{n % 4}", Body=f"body {n}".encode() * 1000
                )
            s3.delete_object(Bucket="versions-bucket", Key="dir-0/key-0")
            listings = [_pages(s3, MaxKeys=size) for size in (1, 2, 3, 1000)]
            listings.append(_pages(s3, MaxKeys=2, Prefix="dir-1/"))
            listings.append(_pages(s3, KeyMarker="dir-0/key-2"))
            listings.append(_pages(s3, Delimiter="/"))  # moto's own
            gc.collect()  # the listing's copies are gone: the stored objects must still be readable
            body = s3.get_object(Bucket="versions-bucket", Key="dir-1/key-1")["Body"].read()
            return listings, body
    finally:
        models.copy, models.S3Backend.list_object_versions = original


def test_listing_versions_page_by_page_answers_as_moto_does():
    unpatched = _versions_listing(patched=False)
    assert _versions_listing(patched=True) == unpatched
    assert [len(page) for page in unpatched[0][1]] == [2, 2, 2, 2, 2]  # 9 versions and a delete marker


@mock_aws
def test_tags_named_by_account_less_arns_reach_the_resource():
    from local.emulator import _patch_account_less_arns

    _patch_account_less_arns()  # as the provider names them when it runs without an account id
    glue = boto3.client("glue", region_name="us-east-2")
    glue.create_database(DatabaseInput={"Name": "catalog"}, Tags={"Layer": "storage"})
    local_arn = "arn:aws:glue:us-east-2::database/catalog"
    assert glue.get_tags(ResourceArn=local_arn)["Tags"] == {"Layer": "storage"}
    glue.tag_resource(ResourceArn=local_arn, TagsToAdd={"Owner": "platform"})
    glue.untag_resource(ResourceArn=local_arn, TagsToRemove=["Layer"])
    assert glue.get_tags(ResourceArn="arn:aws:glue:us-east-2:123456789012:database/catalog")["Tags"] == {
        "Owner": "platform"
    }
    athena = boto3.client("athena", region_name="us-east-2")
    athena.create_work_group(Name="analytics", Tags=[{"Key": "Layer", "Value": "storage"}])
    tags = athena.list_tags_for_resource(ResourceARN="arn:aws:athena:us-east-2::workgroup/analytics")["Tags"]
    assert tags == [{"Key": "Layer", "Value": "storage"}]


def test_access_log_records_wait_for_their_batch() -> None:
    from local.moto_patches import ACCESS_LOG_BATCH_SECONDS, AccessLogBatches

    batches = AccessLogBatches()
    target = ("logs", "data/")
    assert [batches.add(target, f"r{n}", now=100.0 + n) for n in range(3)] == [None, None, None]
    assert batches.add(("logs", "other/"), "x", now=100.0) is None  # each target its own batch
    assert batches.add(target, "r3", now=100.0 + ACCESS_LOG_BATCH_SECONDS) == ["r0", "r1", "r2", "r3"]
    assert batches.add(target, "r4", now=100.0 + ACCESS_LOG_BATCH_SECONDS) is None  # a new batch


def test_server_access_logs_are_delivered_many_records_to_an_object(monkeypatch) -> None:
    from moto.s3 import models

    from local import moto_patches

    monkeypatch.setattr(models.S3Backend, "log_incoming_request", models.S3Backend.log_incoming_request)
    monkeypatch.setattr(moto_patches, "ACCESS_LOG_BATCH_RECORDS", 5)
    moto_patches.apply_s3_access_log_batching()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("source", "access-logs"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(
            Bucket="access-logs",
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "logging.s3.amazonaws.com"},
                            "Action": "s3:PutObject",
                            "Resource": "arn:aws:s3:::access-logs/*",
                        }
                    ],
                }
            ),
        )
        s3.put_bucket_logging(
            Bucket="source",
            BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": "access-logs", "TargetPrefix": "source/"}},
        )
        for n in range(12):
            s3.put_object(Bucket="source", Key=f"key-{n}", Body=b"x")
        delivered = s3.list_objects_v2(Bucket="access-logs", Prefix="source/").get("Contents", [])
        records = [
            line
            for o in delivered
            for line in s3.get_object(Bucket="access-logs", Key=o["Key"])["Body"].read().decode().splitlines()
        ]
    # 12 requests: two objects of five records, two records still waiting (moto wrote twelve objects).
    assert len(delivered) == 2
    assert len(records) == 10 and all(" source [" in r and '"PUT ' in r for r in records)


class _ReadSpy:
    """An object's buffer that records the size of every read from it."""

    def __init__(self, buffer) -> None:
        self.buffer, self.reads = buffer, []

    def read(self, size: int = -1) -> bytes:
        data = self.buffer.read(size)
        self.reads.append(len(data))
        return data

    def __getattr__(self, name: str):
        return getattr(self.buffer, name)


RANGES = ("bytes=0-9", "bytes=5-", "bytes=10-10", "bytes=990-2000", "bytes=999-", "bytes=0-999", "bytes=-7")
RANGES_MOTO_SERVES = ("bytes=0-1,5-6", "bytes=9-3", "bytes=1000-", "bytes=x-")  # and answers as before


def _ranged_answers(s3, etag: str) -> list:
    from botocore.exceptions import ClientError

    answers = []
    for header in RANGES + RANGES_MOTO_SERVES:
        try:
            got = s3.get_object(Bucket="ranges", Key="source.csv", Range=header, IfMatch=etag)
        except ClientError as error:
            answers.append((header, error.response["Error"]["Code"]))
            continue
        answers.append(
            (header, got["ResponseMetadata"]["HTTPStatusCode"], got.get("ContentRange"), got["ContentLength"])
            + (got["Body"].read(),)
        )
    return answers


def test_a_ranged_get_reads_only_its_range_and_answers_as_moto_does(monkeypatch) -> None:
    import os

    from moto.s3 import models, responses

    from local import moto_patches

    moto_patches.apply_s3_ranged_reads()
    moto_value, moto_key_response, moto_range = responses.S3Response.key_response.moto
    body = os.urandom(1000)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="ranges")
        etag = s3.put_object(Bucket="ranges", Key="source.csv", Body=body)["ETag"]
        answers = _ranged_answers(s3, etag)
        assert answers[0] == ("bytes=0-9", 206, "bytes 0-9/1000", 10, body[:10])
        assert answers[3] == ("bytes=990-2000", 206, "bytes 990-999/1000", 10, body[990:])

        key = models.s3_backends["123456789012"]["aws"].get_object("ranges", "source.csv")
        spy = key._value_buffer = _ReadSpy(key._value_buffer)
        got = s3.get_object(Bucket="ranges", Key="source.csv", Range="bytes=100-199")["Body"].read()
        assert (got, spy.reads) == (body[100:200], [100])  # not the whole object, then a slice

        with monkeypatch.context() as moto_own:
            moto_own.setattr(models.FakeKey, "value", moto_value)
            moto_own.setattr(responses.S3Response, "key_response", moto_key_response)
            moto_own.setattr(responses.S3Response, "_handle_range_header", moto_range)
            assert _ranged_answers(s3, etag) == answers
            assert s3.get_object(Bucket="ranges", Key="source.csv", Range="bytes=100-199")["Body"].read() == got
            assert spy.reads[-1] == 1000  # moto's own read: the whole object
