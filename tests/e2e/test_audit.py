"""A re-send nobody declared, found by the duplicate audit on the local deployment, raises its alarm.

Two files that share transaction ids on one booking date load as two jobs (their bytes differ, so
neither is refused as a re-send), then the deployed audit state machine runs its Athena query for
that date: the metric counts the shared ids, the alert topic gets one message naming both jobs,
and the alarm `pipeline-duplicate-transactions-e2e` is in ALARM once the emulator evaluates alarms
(local/alarms.py). A date that only one job booked gives 0 and no message. Runs on the deployment
the "capacity" group shares (tests/e2e/conftest.py), after the suites that only read it.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lake import metrics
from local.workspace import SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.run_cmd import job_id_of, upload
from pipeline_cli.samples import HEADER
from stacks import parameters
from tests.e2e.conftest import CAPACITY_GROUP
from tests.e2e.jobs import run_job

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(CAPACITY_GROUP), pytest.mark.usefixtures("deployed")]
SHARED_DATE, OWN_DATE = "2026-07-20", "2026-07-21"
ALARM = f"pipeline-duplicate-transactions-{SUFFIX}"


def _file(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """(transaction id, booking date, amount) rows as a contract CSV."""
    lines = [
        f"{tid},ACC{n:08d},{day}T10:{n % 60:02d}:00Z,{amount},USD,DEBIT,audit {path.stem}"
        for n, (tid, day, amount) in enumerate(rows, start=1)
    ]
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def _load(tmp: Path, name: str, rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    deployment = Deployment.discover(SUFFIX)
    source = upload(deployment, file=_file(tmp / f"{name}.csv", rows))
    job, _ = run_job({"jobId": job_id_of(source, None), "source": source})
    assert job["status"] == "LOADED", job
    return job


@pytest.fixture(scope="module")
def topic_messages(target: Target) -> Callable[[], list[dict[str, Any]]]:
    """Every message the alert topic gets from now on (a queue subscribed to it)."""
    sqs = target.client("sqs")
    queue = sqs.create_queue(QueueName=f"e2e-audit-observer-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = target.client("ssm").get_parameter(Name=parameters.name(SUFFIX, parameters.ALERT_TOPIC_ARN))["Parameter"][
        "Value"
    ]
    target.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    def received() -> list[dict[str, Any]]:
        found = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                body = json.loads(message["Body"])
                found.append({"subject": body.get("Subject"), "message": json.loads(body["Message"])})
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    return received


def _audit(target: Target, booking_date: str) -> dict[str, Any]:
    sfn = target.client("stepfunctions")
    (machine,) = [
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"] == f"pipeline-duplicate-audit-{SUFFIX}"
    ]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"bookingDate": booking_date}))["executionArn"]
    deadline = time.monotonic() + 300
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"the audit of {booking_date} still runs after 300 s"
        time.sleep(1)
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    return described


def _audited(target: Target) -> list[float]:
    """Every DuplicateTransactions value put in the last hour, oldest first."""
    now = int(time.time())
    points = target.client("cloudwatch").get_metric_statistics(
        Namespace=metrics.NAMESPACE,
        MetricName=metrics.DUPLICATE_TRANSACTIONS,
        Dimensions=[{"Name": "service", "Value": metrics.SERVICE}, {"Name": "environment", "Value": SUFFIX}],
        StartTime=now - 3600,
        EndTime=now + 60,
        Period=1,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    return [p["Maximum"] for p in sorted(points, key=lambda p: p["Timestamp"]) for _ in range(int(p["SampleCount"]))]


def _evaluate_alarms(target: Target) -> dict[str, Any]:
    request = urllib.request.Request(f"{target.emulator.url}/_pipeline/alarms/evaluate", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the emulator on loopback
        return json.loads(response.read())


def test_a_resend_found_by_the_audit_raises_its_alarm(target: Target, topic_messages: Any, tmp_path: Path) -> None:
    shared = [(f"AUD-{n:04d}", SHARED_DATE, f"{n}.00") for n in range(1, 5)]
    first = _load(
        tmp_path,
        "partner-a-0720",
        [*shared, *((f"AUD-{n:04d}", SHARED_DATE, "7.00") for n in range(5, 11)), ("AUD-0100", OWN_DATE, "3.50")],
    )
    # The same four transactions again in another file (other bytes: a new one beside them), not
    # declared as a correction: a job of its own that loads them a second time.
    second = _load(tmp_path, "partner-a-0720-again", [*shared, ("AUD-0200", SHARED_DATE, "9.99")])
    assert first["jobId"] != second["jobId"]
    jobs = sorted([first["jobId"], second["jobId"]])

    before = len(_audited(target))
    _audit(target, SHARED_DATE)
    assert _audited(target)[before:] == [4.0]
    alerts = [m for m in topic_messages() if m["message"].get("audit") == "duplicate-transactions"]
    (alert,) = alerts
    assert alert["subject"] == f"Transactions loaded by two jobs, booking date {SHARED_DATE}"
    report = alert["message"]
    assert (report["bookingDate"], report["duplicates"]) == (SHARED_DATE, 4)
    expected_jobs = "[" + ", ".join(jobs) + "]"
    assert report["first"] == [{"transactionId": tid, "jobs": expected_jobs} for tid, _, _ in shared]
    # The audit's own workgroup writes its results under athena-results/audit/.
    assert report["results"].endswith(f"/athena-results/audit/{report['queryExecutionId']}.csv")

    # A date only the first job booked: 0, and nothing on the topic.
    _audit(target, OWN_DATE)
    assert _audited(target)[before:] == [4.0, 0.0]
    assert [m for m in topic_messages() if m["message"].get("audit") == "duplicate-transactions"] == []

    # CloudWatch's evaluation (the emulator's, on demand): the day's largest count is above 0.
    evaluated = {e["alarm"]: e for e in _evaluate_alarms(target)["evaluated"]}
    assert evaluated[ALARM]["state"] == "ALARM", evaluated[ALARM]
    (described,) = target.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    assert described["StateValue"] == "ALARM"
    (paged,) = [m for m in topic_messages() if m["message"].get("AlarmName") == ALARM]
    assert paged["message"]["NewStateValue"] == "ALARM"
    assert paged["message"]["AlarmDescription"].endswith("Runbook: docs/operations.md#duplicate-transactions")
