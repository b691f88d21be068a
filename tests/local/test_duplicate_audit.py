"""The duplicate audit's definition (pipeline_constructs/audit.py) run by the emulator's Step
Functions, on a role holding exactly the audit's statements (IAM enforced), against an Iceberg
`transactions` table: its query in the emulator's Athena, the metric, the alert."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date

import pyarrow as pa
import pytest
from iceberg_helpers import glue_catalog, new_lake
from local_emu_helpers import ACCOUNT, REGION

from pipeline_constructs.audit import METRIC, DuplicateAudit, build_audit_definition
from pipeline_constructs.iam import Statement
from pipeline_constructs.workflow import Retries, RetryPolicy

SCHEMA = pa.schema(
    [
        pa.field("job_id", pa.string(), nullable=False),
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("booking_date", pa.date32(), nullable=False),
    ]
)
NAMESPACE = "AuditTests"


def _policy(statements: list[Statement]) -> dict:
    def one(values):
        return values[0] if len(values) == 1 else list(values)

    rendered = []
    for s in statements:
        statement = {"Sid": s.sid, "Effect": s.effect, "Action": one(s.actions), "Resource": one(s.resources)}
        if s.conditions:
            statement["Condition"] = {c.test: {c.variable: one(c.values)} for c in s.conditions}
        rendered.append(statement)
    return {"Version": "2012-10-17", "Statement": rendered}


@pytest.fixture(scope="module")
def audit(emulator):
    """(machine arn, topic's messages, database) over a table where t1 and t2 of 2024-03-01 were
    loaded by two jobs, t3 by one, and 2024-03-02 has no duplicate."""
    bucket, database = new_lake(emulator, "audit")
    work = f"{bucket}-work"
    emulator.client("s3").create_bucket(Bucket=work, CreateBucketConfiguration={"LocationConstraint": REGION})
    table = glue_catalog(emulator.url).create_table(
        f"{database}.transactions", schema=SCHEMA, location=f"s3://{bucket}/processed/transactions"
    )

    def rows(job: str, day: str, *ids: str) -> pa.Table:
        return pa.table(
            {
                "job_id": [job] * len(ids),
                "transaction_id": list(ids),
                "booking_date": [date.fromisoformat(day)] * len(ids),
            },
            schema=SCHEMA,
        )

    table.append(rows("partner-a-1", "2024-03-01", "t1", "t2", "t3"))
    table.append(rows("partner-a-2", "2024-03-01", "t2", "t1"))
    table.append(rows("partner-b-1", "2024-03-01", "t1"))
    table.append(rows("partner-a-1", "2024-03-02", "t4", "t5"))
    workgroup = f"wg-{database}"
    emulator.client("athena").create_work_group(
        Name=workgroup,
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{work}/athena-results/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )
    sqs, sns = emulator.client("sqs"), emulator.client("sns")
    queue = sqs.create_queue(QueueName=database)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=database)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    iam = emulator.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "states.amazonaws.com"}}
        ],
    }
    role = iam.create_role(RoleName=database, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    statements = DuplicateAudit._statements(
        workgroup_arn=f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{workgroup}",
        glue_resources=[f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog"],
        data_bucket_arn=f"arn:aws:s3:::{bucket}",
        work_bucket_arn=f"arn:aws:s3:::{work}",
        kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/none",
        topic_arn=topic,
        namespace=NAMESPACE,
    )
    iam.put_role_policy(RoleName=database, PolicyName="audit", PolicyDocument=json.dumps(_policy(statements)))
    policy = RetryPolicy(interval_seconds=1, max_attempts=1)
    definition = build_audit_definition(
        database=database,
        table="transactions",
        workgroup=workgroup,
        topic_arn=topic,
        namespace=NAMESPACE,
        dimensions={"service": "financial-pipeline", "environment": database},
        retries=Retries(transient=policy, throttling=policy),
    )
    machine = emulator.client("stepfunctions").create_state_machine(
        name=database, definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]

    def messages() -> list[dict]:
        found = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                body = json.loads(message["Body"])
                found.append({"subject": body.get("Subject"), "message": json.loads(body["Message"])})
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    return machine, messages, database


def run(emulator, machine: str, execution_input: dict) -> dict:
    sfn = emulator.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(execution_input))[
        "executionArn"
    ]
    deadline = time.monotonic() + 120
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the audit did not finish"
        time.sleep(0.2)
    return described


def audited(emulator, environment: str) -> dict[str, float]:
    """The audit's metric over the last hour: how many values, the largest and the smallest."""
    now = int(time.time())
    stats = emulator.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=METRIC,
        Dimensions=[{"Name": "service", "Value": "financial-pipeline"}, {"Name": "environment", "Value": environment}],
        StartTime=now - 3600,
        EndTime=now + 60,
        Period=3660,
        Statistics=["Maximum", "Minimum", "SampleCount"],
    )["Datapoints"]
    (point,) = stats or [{"SampleCount": 0, "Maximum": None, "Minimum": None}]
    return {"count": point["SampleCount"], "max": point["Maximum"], "min": point["Minimum"]}


def test_ids_under_two_jobs_are_counted_and_alerted_with_their_jobs(emulator, audit):
    machine, messages, database = audit
    done = run(emulator, machine, {"bookingDate": "2024-03-01"})
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"), messages())
    assert audited(emulator, database) == {"count": 1, "max": 2, "min": 2}
    (alert,) = messages()
    assert alert["subject"] == "Transactions loaded by two jobs, booking date 2024-03-01"
    report = alert["message"]
    assert report["audit"] == "duplicate-transactions"
    assert (report["bookingDate"], report["duplicates"]) == ("2024-03-01", 2)
    assert report["first"] == [
        {"transactionId": "t1", "jobs": "[partner-a-1, partner-a-2, partner-b-1]"},
        {"transactionId": "t2", "jobs": "[partner-a-1, partner-a-2]"},
    ]
    # The whole list is the query's CSV, named in the alert.
    results = report["results"]
    assert results.endswith(f"athena-results/{report['queryExecutionId']}.csv")
    bucket, key = results.removeprefix("s3://").split("/", 1)
    csv = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    assert csv[0] == '"booking_date","duplicates","transaction_id","jobs"'
    assert csv[1:] == [
        '"2024-03-01","2","t1","[partner-a-1, partner-a-2, partner-b-1]"',
        '"2024-03-01","2","t2","[partner-a-1, partner-a-2]"',
    ]


def test_a_date_without_duplicates_gives_zero_and_no_alert(emulator, audit):
    machine, messages, database = audit
    before = audited(emulator, database)["count"]
    done = run(emulator, machine, {"bookingDate": "2024-03-02"})
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"), messages())
    after = audited(emulator, database)
    assert (after["count"], after["min"]) == (before + 1, 0)
    assert messages() == []
    # Started with no date (as the schedule does): yesterday, which has no rows here.
    yesterday = run(emulator, machine, {"trigger": "schedule"})
    assert yesterday["status"] == "SUCCEEDED", messages()
    assert messages() == []


def test_a_date_that_is_not_one_fails_the_audit_with_an_alert(emulator, audit):
    machine, messages, _ = audit
    quoted = run(emulator, machine, {"bookingDate": "2024-03-01' OR '1'='1"})
    assert (quoted["status"], quoted["error"]) == ("FAILED", "AuditBadBookingDate")
    wrong = run(emulator, machine, {"bookingDate": "2024-13-01"})
    assert (wrong["status"], wrong["error"]) == ("FAILED", "DuplicateAuditFailed")
    (alert,) = messages()
    assert alert["subject"] == "Duplicate audit failed"
    assert alert["message"]["bookingDate"] == "2024-13-01"
    assert alert["message"]["error"]["Error"] == "States.TaskFailed"  # the query FAILED in Athena
