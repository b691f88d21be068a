"""CloudWatch alarms evaluated on demand (local/alarms.py, POST /_pipeline/alarms/evaluate): the
state the stored datapoints give, and on a change the message CloudWatch sends to the actions."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest


def evaluate(emulator) -> dict:
    request = urllib.request.Request(f"{emulator.url}/_pipeline/alarms/evaluate", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the emulator on loopback
        return json.loads(response.read())


@pytest.fixture
def observed(emulator):
    """A topic with a queue subscribed to it: (topic arn, the messages published since)."""
    name = f"alarms-{uuid.uuid4().hex[:8]}"
    sqs, sns = emulator.client("sqs"), emulator.client("sns")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=name)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    def messages() -> list[dict]:
        found = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                body = json.loads(message["Body"])
                found.append({"Subject": body.get("Subject"), **json.loads(body["Message"])})
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return found

    return topic, messages


def alarm(emulator, topic: str, *, metric: str, missing: str = "notBreaching", **overrides) -> str:
    name = f"{metric}-{uuid.uuid4().hex[:6]}"
    emulator.client("cloudwatch").put_metric_alarm(
        **{
            "AlarmName": name,
            "AlarmDescription": f"{metric} above zero. Runbook: docs/operations.md#x",
            "Namespace": "Tests",
            "MetricName": metric,
            "Dimensions": [{"Name": "environment", "Value": "t"}],
            "Statistic": "Maximum",
            "Period": 86400,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": missing,
            "AlarmActions": [topic],
            "OKActions": [topic],
            **overrides,
        }
    )
    return name


def put(emulator, metric: str, value: float, *, environment: str = "t") -> None:
    emulator.client("cloudwatch").put_metric_data(
        Namespace="Tests",
        MetricData=[
            {"MetricName": metric, "Dimensions": [{"Name": "environment", "Value": environment}], "Value": value}
        ],
    )


def state(emulator, name: str) -> str:
    (found,) = emulator.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return found["StateValue"]


def test_a_breaching_datapoint_sets_alarm_and_notifies_the_topic_once(emulator, observed):
    topic, messages = observed
    metric = f"Found{uuid.uuid4().hex[:6]}"
    name = alarm(emulator, topic, metric=metric)
    put(emulator, metric, 0)
    put(emulator, metric, 3)
    put(emulator, metric, 5, environment="other")  # another dimension value: not this alarm's metric

    result = {e["alarm"]: e for e in evaluate(emulator)["evaluated"]}
    assert result[name]["state"] == "ALARM" and result[name]["datapoints"] == [3.0]
    assert state(emulator, name) == "ALARM"
    (message,) = [m for m in messages() if m["AlarmName"] == name]
    assert message["Subject"] == f'ALARM: "{name}" in us-east-2'
    assert (message["NewStateValue"], message["OldStateValue"]) == ("ALARM", "OK")
    assert message["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [3.0]")
    assert message["AlarmDescription"].endswith("Runbook: docs/operations.md#x")
    trigger = message["Trigger"]
    assert (trigger["MetricName"], trigger["Namespace"], trigger["Statistic"]) == (metric, "Tests", "MAXIMUM")
    assert trigger["Dimensions"] == [{"value": "t", "name": "environment"}]
    assert (trigger["Period"], trigger["Threshold"], trigger["ComparisonOperator"]) == (
        86400,
        0.0,
        "GreaterThanThreshold",
    )

    # Evaluated again with nothing new: no change, no second message.
    assert {e["alarm"]: e["changed"] for e in evaluate(emulator)["evaluated"]}[name] is False
    assert [m for m in messages() if m["AlarmName"] == name] == []


def test_no_data_follows_treat_missing_data(emulator, observed):
    topic, messages = observed
    quiet = alarm(emulator, topic, metric=f"Quiet{uuid.uuid4().hex[:6]}", missing="notBreaching")
    late = alarm(
        emulator,
        topic,
        metric=f"Late{uuid.uuid4().hex[:6]}",
        missing="breaching",
        Statistic="Sum",
        Period=3600,
        EvaluationPeriods=3,
        DatapointsToAlarm=3,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    unknown = alarm(emulator, topic, metric=f"Unknown{uuid.uuid4().hex[:6]}", missing="missing")
    result = {e["alarm"]: e for e in evaluate(emulator)["evaluated"]}
    assert result[quiet]["state"] == "OK" and result[quiet]["changed"] is False  # moto starts alarms OK
    assert result[late]["state"] == "ALARM" and result[late]["datapoints"] == [None, None, None]
    assert result[unknown]["state"] == "INSUFFICIENT_DATA"
    sent = {m["AlarmName"]: m["NewStateValue"] for m in messages()}
    assert sent[late] == "ALARM"
    assert unknown not in sent  # no InsufficientDataActions
    assert quiet not in sent


def test_back_to_ok_notifies_the_ok_actions(emulator, observed):
    topic, messages = observed
    name = alarm(emulator, topic, metric=f"Recover{uuid.uuid4().hex[:6]}")
    emulator.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="by hand")
    result = {e["alarm"]: e for e in evaluate(emulator)["evaluated"]}
    assert (result[name]["state"], result[name]["changed"]) == ("OK", True)  # no data, not breaching
    (message,) = [m for m in messages() if m["AlarmName"] == name]
    assert (message["OldStateValue"], message["NewStateValue"]) == ("ALARM", "OK")
    assert message["Subject"] == f'OK: "{name}" in us-east-2'
