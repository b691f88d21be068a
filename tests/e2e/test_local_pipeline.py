"""The whole pipeline on a fresh local emulator: real Terraform, the real handlers, Step Functions'
own Distributed Map, S3 -> EventBridge -> Step Functions.

The tests run in file order against the "main" group's deployment (tests/e2e/conftest.py); the one
marked `last` destroys it. Run alone with `make test-e2e` or `pytest -m e2e`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from handlers.logic.curated import arrow_schema
from lake import layout, metrics, schema
from local.workspace import SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.progress import follow
from pipeline_cli.samples import write_transactions
from pipeline_cli.validate_cmd import validate_file
from tests.e2e.jobs import (
    DAYS,
    assert_reconciled,
    execution_story,
    published_table,
    published_versions,
    quarantined,
    run_file,
    run_job,
    settled,
    upload_only,
    wait_for_job,
)

# Every test here runs against the group's deployment; the first one to run deploys it.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]
LAYERS = ("network", "storage", "compute", "orchestration")


def test_one_layer_alone_names_the_missing_parameter(target: Target) -> None:
    # An environment of which nothing is deployed, beside the shared one.
    result = target.other("lone", CDKTF_OUT="cdktf.out-lone").make("deploy-compute", check=False)
    assert result.returncode != 0
    assert "/pipeline/lone/" in result.stdout + result.stderr


def test_deploy_all_four_layers(target: Target) -> None:
    for layer in LAYERS:
        assert target.state_file(layer).exists()


def test_seed_commands_work_against_the_local_deployment(target: Target) -> None:
    output = target.terraform("orchestration", "output", "-raw", "state_machine_arn")
    assert output.returncode == 0, output.stderr
    arn = output.stdout.strip()
    assert arn == Deployment.discover(SUFFIX).state_machine_arn
    sfn = target.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"jobId": "test-123", "data": {"sample": "data"}})
    )
    status = follow(execution["executionArn"], say=lambda _line: None, timeout_seconds=300)
    assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == status == "SUCCEEDED"


def test_seed_payload_ends_rejected_with_its_record_quarantined(target: Target) -> None:
    job, deployment = run_job({"jobId": "seed-payload", "data": {"sample": "data"}})
    assert job["status"] == "REJECTED"
    assert job["counts"]["received"] == job["counts"]["rejected"] == 1
    assert job["counts"]["reasons"]["MISSING_FIELD"] == 1
    assert quarantined(target, deployment, job)[0]["reasons"] == ["MISSING_FIELD"]


# --- unattended -----------------------------------------------------------------------------------


def test_an_upload_starts_its_job_with_no_start_call(target: Target, tmp_path: Path) -> None:
    sample = write_transactions(tmp_path / "upload.csv", rows=600, bad_every=150, days=DAYS, seed=3)
    job_id = upload_only(target, "incoming/partner-a/2026-12-01.csv", sample.read_bytes())
    deployment = Deployment.discover(SUFFIX)
    job = wait_for_job(deployment, job_id)
    assert job["status"] == "LOADED" and job["trigger"] == "s3-eventbridge"
    assert job["counts"]["received"] == 600 and job["counts"]["rejected"] == 4
    assert_reconciled(target, job, deployment)


def test_the_jobs_metrics_were_emitted(target: Target) -> None:
    cloudwatch = target.client("cloudwatch")
    dimensions = [{"Name": "service", "Value": metrics.SERVICE}, {"Name": "environment", "Value": SUFFIX}]
    now = datetime.now(UTC)

    def total(name: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace=metrics.NAMESPACE,
            MetricName=name,
            Dimensions=dimensions,
            StartTime=now - timedelta(hours=2),
            EndTime=now + timedelta(minutes=5),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        return sum(point["Sum"] for point in points)

    assert total(metrics.ROWS_RECEIVED) >= 600 + 1  # the upload's job and the sample payload
    assert total(metrics.ROWS_LOADED) >= 596
    assert total(metrics.ROWS_REJECTED) >= 4 + 1
    assert total(metrics.JOBS_LOADED) >= 1 and total(metrics.JOBS_REJECTED) >= 1
    assert total(metrics.BYTES_PROCESSED) > 0 and total(metrics.JOB_DURATION) > 0


def _execution_of(target: Target, job_id: str) -> dict[str, Any]:
    sfn = target.client("stepfunctions")
    arn = Deployment.discover(SUFFIX).state_machine_arn
    for execution in sfn.list_executions(stateMachineArn=arn)["executions"]:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if job_id in described.get("output", "") and '"trigger"' in described["input"]:
            return described
    raise AssertionError(f"no execution started by the upload of {job_id}")


def test_the_same_event_delivered_twice_starts_one_job(target: Target, tmp_path: Path) -> None:
    deployment = Deployment.discover(SUFFIX)
    sample = write_transactions(tmp_path / "twice.csv", rows=50, days=DAYS, seed=4)
    job_id = upload_only(target, "incoming/partner-a/twice.csv", sample.read_bytes())
    job = wait_for_job(deployment, job_id)
    before = published_versions(target, deployment, job_id)
    delivered = _execution_of(target, job_id)
    # EventBridge delivers at least once: a second delivery is a second StartExecution with the same input.
    sfn = target.client("stepfunctions")
    again = sfn.start_execution(stateMachineArn=deployment.state_machine_arn, input=delivered["input"])
    assert follow(again["executionArn"], say=lambda _line: None) == "SUCCEEDED"
    output = json.loads(sfn.describe_execution(executionArn=again["executionArn"])["output"])
    assert output["status"] == "REPLAY" and output["jobId"] == job_id
    assert deployment.job(job_id)["runId"] == job["runId"]
    assert published_versions(target, deployment, job_id) == before


def test_an_upload_outside_incoming_starts_nothing(target: Target) -> None:
    deployment = Deployment.discover(SUFFIX)
    sfn = target.client("stepfunctions")
    count = len(sfn.list_executions(stateMachineArn=deployment.state_machine_arn)["executions"])
    s3 = target.client("s3")
    keys = ("raw/elsewhere.csv", "processed/elsewhere.csv", "incomingx/y.csv")  # none under incoming/
    written = [s3.put_object(Bucket=deployment.bucket, Key=key, Body=b"transaction_id\nT1\n") for key in keys]
    time.sleep(5)
    for key, put in zip(keys, written, strict=True):  # nothing stays in the data set's prefixes
        s3.delete_object(Bucket=deployment.bucket, Key=key, VersionId=put["VersionId"])
    executions = sfn.list_executions(stateMachineArn=deployment.state_machine_arn)["executions"]
    new = executions[: len(executions) - count]  # newest first
    started = [e for e in new if "drain" not in sfn.describe_execution(executionArn=e["executionArn"])["input"]]
    assert started == []


def test_the_tables_describe_the_files_load_wrote(target: Target, tmp_path: Path) -> None:
    """The Iceberg tables Terraform declared, as Athena and pyiceberg find them after loads: the Glue
    columns and the committed schema are lake/schema.py's, and every data file is of that schema."""
    deployment = Deployment.discover(SUFFIX)
    glue = target.client("glue")
    for table in schema.TABLES:
        described = glue.get_table(DatabaseName=deployment.database, Name=table.name)["Table"]
        assert described["Parameters"]["table_type"].upper() == "ICEBERG"
        committed = published_table(deployment, table.name)
        assert [(f.name, f.required) for f in committed.schema().fields] == [(c.name, True) for c in table.columns]
        files = committed.inspect.files().to_pylist()
        assert files, table.name  # the earlier tests' jobs loaded
        for entry in files:
            assert entry["file_path"].startswith(f"s3://{deployment.bucket}/{layout.table_prefix(table.name)}/data/")
        rows = committed.scan().to_arrow()
        assert rows.num_rows > 0
        expected = arrow_schema(table)
        assert rows.schema.names == expected.names
        for field in expected:  # strings may come back as large strings; the rest exactly
            got = rows.schema.field(field.name).type
            assert got == field.type or (pa.types.is_large_string(got) and field.type == pa.string()), field.name


# --- by hand, and chunked ----------------------------------------------------------------------


def test_clean_file_loads_every_row(target: Target, tmp_path: Path) -> None:
    job, deployment = run_file(tmp_path, "clean-file", rows=300)
    assert job["status"] == "LOADED"
    assert job["counts"]["loaded"] == 300 and job["counts"]["rejected"] == 0
    assert_reconciled(target, job, deployment)


def test_file_over_the_reject_threshold_loads_nothing(target: Target, tmp_path: Path) -> None:
    job, deployment = run_file(tmp_path, "over-threshold", rows=100, bad_every=10, seed=12)
    assert job["status"] == "REJECTED"
    listing = target.client("s3").list_objects_v2(Bucket=deployment.bucket, Prefix=layout.manifest_key(job["jobId"]))
    assert listing.get("KeyCount", 0) == 0


def _chunked_file(path: Path) -> Path:
    """About 1.5 MB: duplicates across chunks, and a quoted field long enough to straddle every
    possible chunk boundary near it. Booked over four weeks: every chunk holds rows of every
    date, which the transform merges across chunks."""
    sample = write_transactions(path, rows=12_000, bad_every=400, days=28, seed=21)
    lines = sample.read_text().splitlines(keepends=True)
    long_text = "x" * 300_000  # longer than a chunk: some chunk's nominal end falls inside it
    lines.insert(6000, f'TX-9999999999,ACC1,2026-01-01T00:00:00Z,1.00,USD,DEBIT,"{long_text}\nTX-8888,fake,row"\n')
    lines.append(lines[20])  # a duplicate of a row of the first chunk, in the last
    lines.append(lines[7001])  # one of the middle, in the last
    sample.write_text("".join(lines))
    return sample


def test_a_file_of_many_chunks_gives_the_answers_of_one(target: Target, tmp_path: Path) -> None:
    sample = _chunked_file(tmp_path / "chunked.csv")
    expected, rejects = validate_file(path=str(sample), fmt="csv", jobs=1, chunk_bytes=1 << 40)
    job, deployment = run_job(_upload(sample))
    assert job["status"] == "LOADED" and int(job["plan"]["chunks"]) >= 6 and int(job["plan"]["partitions"]) > 1
    assert job["counts"]["reasons"] == expected.to_dict()["reasons"]
    assert job["totals"]["valid"] == expected.to_dict()["totals"]["valid"]
    assert job["totals"]["rejected"] == expected.to_dict()["totals"]["rejected"]
    assert [(q["line"], q["transaction_id"], q["reasons"]) for q in quarantined(target, deployment, job)] == [
        (r["line"], r["transaction_id"], r["reasons"]) for r in rejects
    ]
    assert expected.reasons["DUPLICATE_ID"] == 2
    assert_reconciled(target, job, deployment)


def _upload(sample: Path, **options: Any) -> dict[str, Any]:
    from pipeline_cli.run_cmd import job_id_of, upload

    source = upload(Deployment.discover(SUFFIX), file=sample)
    return {"jobId": job_id_of(source, None), "source": source, **options}


def test_a_transient_fault_in_one_chunk_is_retried(target: Target, tmp_path: Path) -> None:
    target.emulator.inject(f"pipeline-validate-{SUFFIX}", "Lambda.ServiceException", times=1)
    target.emulator.inject(f"pipeline-transform-{SUFFIX}", "Lambda.TooManyRequestsException", times=2)
    sample = write_transactions(tmp_path / "transient.csv", rows=6000, days=DAYS, seed=13)
    job, deployment = run_job(_upload(sample))
    assert job["status"] == "LOADED" and int(job["plan"]["chunks"]) > 1
    assert_reconciled(target, job, deployment)


def test_one_booking_date_of_several_transform_items_loads_whole(target: Target, tmp_path: Path) -> None:
    """A file of one booking date, larger than the local TRANSFORM_ITEM_ROWS: several transform
    items, one of which fails once and is retried alone; the date loads every row in source order
    and one daily totals row per account and currency."""
    sample = write_transactions(tmp_path / "one-date.csv", rows=9000, days=1, seed=31)
    target.emulator.inject(f"pipeline-transform-{SUFFIX}", "Lambda.ServiceException", times=1)
    try:
        job, deployment = run_job(_upload(sample))
    finally:
        target.emulator.clear_faults()
    assert job["status"] == "LOADED" and job["counts"]["loaded"] + job["counts"]["rejected"] == 9000
    assert_reconciled(target, job, deployment)
    s3, job_id, plan_id = target.client("s3"), job["jobId"], job["plan"]["planId"]
    items = json.loads(
        s3.get_object(Bucket=deployment.work_bucket, Key=layout.dates_key(job_id, plan_id))["Body"].read()
    )
    ((day,),) = {tuple(entry["bookingDate"] for entry in item["dates"]) for item in items}
    assert len(items) >= 2 and [item["dates"][0]["item"] for item in items] == list(range(len(items)))
    for number in range(len(items)):  # every item written once: the failed one retried, none redone
        key = layout.curated_index_key(job_id, day, number)
        versions = s3.list_object_versions(Bucket=deployment.work_bucket, Prefix=key).get("Versions", [])
        assert len([v for v in versions if v["Key"] == key]) == 1, key
    manifest = json.loads(s3.get_object(Bucket=deployment.bucket, Key=layout.manifest_key(job_id))["Body"].read())
    lines = [
        line
        for entry in manifest["files"]  # the date's files in their published order
        for line in pq.read_table(
            pa.BufferReader(s3.get_object(Bucket=deployment.bucket, Key=entry["key"])["Body"].read())
        )
        .column("source_line")
        .to_pylist()
    ]
    assert len(lines) == job["counts"]["loaded"] and lines == sorted(set(lines))  # every row, in source order
    daily = published_table(deployment, schema.DAILY_TOTALS.name).scan(row_filter=f"job_id = '{job_id}'").to_arrow()
    groups = list(zip(daily.column("account_id").to_pylist(), daily.column("currency").to_pylist(), strict=True))
    assert len(groups) == len(set(groups))  # the items' partial sums merged: one row a group
    assert sum(daily.column("row_count").to_pylist()) == job["counts"]["loaded"]


def test_a_chunk_that_fails_for_good_fails_the_job_then_a_rerun_completes_it(
    target: Target, alerts: Any, tmp_path: Path
) -> None:
    sample = write_transactions(tmp_path / "fails.csv", rows=8000, days=DAYS, seed=14)
    job_input = _upload(sample)
    # More faults than every chunk's attempts together: one chunk exhausts its retries for sure.
    target.emulator.inject(f"pipeline-validate-{SUFFIX}", "Lambda.ServiceException", times=100)
    try:
        job, deployment = run_job(job_input)
    finally:
        target.emulator.clear_faults()
    story = execution_story(target, deployment, job["jobId"])
    assert job["status"] == "FAILED" and job["error"]["Error"] == "Lambda.ServiceException", story
    settled(target, deployment, job["jobId"])
    assert len(alerts(job["jobId"])) == 1, story
    s3 = target.client("s3")
    assert (
        s3.list_objects_v2(Bucket=deployment.bucket, Prefix=layout.manifest_key(job["jobId"])).get("KeyCount", 0) == 0
    )
    assert published_versions(target, deployment, job["jobId"]) == []

    rerun, _ = run_job(job_input, replacing=job["runId"])  # a new start of a FAILED job takes it over
    assert rerun["status"] == "LOADED" and rerun["runId"] != job["runId"]
    assert_reconciled(target, rerun, deployment)
    plan_id = rerun["plan"]["planId"]
    # Each chunk's summary written once over both runs: the chunks the failed run finished are reused.
    # (Listed key by key: the plan's prefix can hold more than a page of versions, a part per date.)
    written = [
        len(
            s3.list_object_versions(
                Bucket=deployment.work_bucket, Prefix=layout.chunk_summary_key(job["jobId"], plan_id, chunk)
            ).get("Versions", [])
        )
        for chunk in range(int(rerun["plan"]["chunks"]))
    ]
    assert written == [1] * int(rerun["plan"]["chunks"]), written


def test_replaying_a_finished_job_writes_nothing_new(target: Target, tmp_path: Path) -> None:
    job, deployment = run_file(tmp_path, "replayed", rows=200)
    before = published_versions(target, deployment, job["jobId"])
    assert before
    again, _ = run_job({"jobId": job["jobId"], "source": job["source"]})
    assert again["runId"] == job["runId"] and again["status"] == "LOADED"
    assert published_versions(target, deployment, job["jobId"]) == before


def test_exhausted_retries_fail_the_job_with_one_alert(target: Target, alerts: Any, tmp_path: Path) -> None:
    target.emulator.inject(f"pipeline-load-{SUFFIX}", "Lambda.ServiceException", times=20)
    try:
        job, deployment = run_file(tmp_path, "exhausted-retries", rows=50, seed=15)
    finally:
        target.emulator.clear_faults()
    assert job["status"] == "FAILED" and job["error"]["Error"] == "Lambda.ServiceException"
    settled(target, deployment, job["jobId"])
    assert len(alerts(job["jobId"])) == 1
    assert (
        target.client("s3")
        .list_objects_v2(Bucket=deployment.bucket, Prefix=layout.manifest_key(job["jobId"]))
        .get("KeyCount", 0)
        == 0
    )


def test_a_task_timeout_fails_the_job_with_one_alert(target: Target, alerts: Any, tmp_path: Path) -> None:
    target.emulator.inject(f"pipeline-transform-{SUFFIX}", "timeout", times=1)
    job, deployment = run_file(tmp_path, "timed-out", rows=50, seed=16)
    assert job["status"] == "FAILED" and job["error"]["Error"] == "Sandbox.Timedout"
    settled(target, deployment, job["jobId"])
    assert len(alerts(job["jobId"])) == 1


def test_a_second_plan_shows_no_changes(target: Target) -> None:
    for layer in LAYERS:
        result = target.terraform(layer, "plan", "-detailed-exitcode", "-input=false", "-no-color")
        assert result.returncode == 0, f"{layer} drifts:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"


def test_compute_only_redeploy_after_a_handler_change(target: Target, tmp_path: Path) -> None:
    functions = target.client("lambda")
    name = f"pipeline-validate-{SUFFIX}"
    before = functions.get_function_configuration(FunctionName=name)["Environment"]["Variables"]["CODE_VERSION"]
    # The workspace is a copy of the project: the change stays out of the working tree.
    (target.root / "handlers" / "_e2e_change.py").write_text('"""A handler change made by the end-to-end test."""\n')
    target.make("deploy-compute")
    after = functions.get_function_configuration(FunctionName=name)["Environment"]["Variables"]["CODE_VERSION"]
    assert after != before
    job, _ = run_file(tmp_path, "after-redeploy", rows=100, seed=17)
    assert job["status"] == "LOADED" and job["codeVersion"] == after


@pytest.mark.last
def test_destroy_in_reverse_order_leaves_nothing_behind(target: Target) -> None:
    target.make("destroy")
    assert target.client("s3").list_buckets()["Buckets"] == []
    assert target.client("dynamodb").list_tables()["TableNames"] == []
    assert target.client("lambda").list_functions()["Functions"] == []
    assert target.client("lambda").list_layers()["Layers"] == []
    assert target.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert target.client("sns").list_topics()["Topics"] == []
    queues = target.client("sqs").list_queues().get("QueueUrls", [])
    assert [url for url in queues if "e2e-alert-observer" not in url] == []  # the test's own observer stays
    assert target.client("events").list_rules()["Rules"] == []
    assert target.client("glue").get_databases()["DatabaseList"] == []
    assert [w["Name"] for w in target.client("athena").list_work_groups()["WorkGroups"]] == ["primary"]
    assert target.client("ssm").get_parameters_by_path(Path=f"/pipeline/{SUFFIX}", Recursive=True)["Parameters"] == []
    assert target.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Environment", "Values": [SUFFIX]}])["Vpcs"] == []
    roles = [r["RoleName"] for r in target.client("iam").list_roles()["Roles"]]
    assert [r for r in roles if r.endswith(f"-{SUFFIX}") or f"-{SUFFIX}-" in r] == []
    groups = target.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups if f"-{SUFFIX}" in g["logGroupName"]] == []
