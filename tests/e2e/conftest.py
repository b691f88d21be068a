"""One local deployment shared by the end-to-end suites that do not interfere with each other.

Every end-to-end test is pinned to an xdist group: `make test` runs with `--dist loadgroup`,
so each group runs on one worker, in file order, beside the other suites. A group that needs
an emulator of its own (several environments, IAM settings) starts it in its own workspace.
The shared deployment (group "main") is deployed on first use and torn down by the test marked
`last`, which runs after every other test of the group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.workspace import SUFFIX, Emulator, Target, Workspace

MAIN_GROUP = "main"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(MAIN_GROUP))
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)  # stable: file order kept


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    """The main workspace's emulator, with AWS clients of this process pointed at it."""
    workspace = Workspace(MAIN_GROUP).create()
    emulator = Emulator.start(workspace)
    target = Target(emulator=emulator, workspace=workspace)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**target.aws_env, "ENVIRONMENT_SUFFIX": SUFFIX}.items():
            patch.setenv(key, value)
        yield target
    emulator.stop()
    target.write_timings()


@pytest.fixture(scope="session")
def deployed(target: Target) -> Target:
    """All four layers of the `e2e` environment, deployed once for the session."""
    target.make("deploy")
    return target


@pytest.fixture(scope="session")
def alerts(deployed: Target) -> Any:
    """An SQS queue subscribed to the alert topic, to count alerts per job."""
    sqs = deployed.client("sqs")
    queue_url = sqs.create_queue(QueueName="e2e-alert-observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = deployed.client("ssm").get_parameter(Name=f"/pipeline/{SUFFIX}/alert-topic-arn")["Parameter"]["Value"]
    deployed.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    received: list[dict[str, Any]] = []

    def for_job(job_id: str) -> list[dict[str, Any]]:
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            for message in batch:
                received.append(json.loads(json.loads(message["Body"])["Message"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [alert for alert in received if alert.get("jobId") == job_id]

    return for_job
