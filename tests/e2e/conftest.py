"""Local deployments shared by the end-to-end suites that do not interfere with each other.

Every end-to-end test is pinned to an xdist group: `make test` runs with `--dist loadgroup`,
so each group runs on one worker, in file order, beside the other suites. Each group has its
own workspace and emulator (local/workspace.py); a module of a group that shares a deployment
asks for `deployed`, and the group's `e2e` environment is deployed on its first use:

* "main" (test_local_pipeline.py): the pipeline's scenarios; the test marked `last` destroys it.
* "capacity" (test_audit.py, test_burst.py, test_iam_denials.py): the duplicate audit (two jobs
  of its own dates), the burst, then the denial suite, which only reads the deployment. Apart from
  "main", so the burst runs beside the pipeline's scenarios.

A group that needs environments of its own (test_environments.py) starts its emulator itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.workspace import SUFFIX, Emulator, Target, Workspace

MAIN_GROUP = "main"
CAPACITY_GROUP = "capacity"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(MAIN_GROUP))
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)  # stable: file order kept


def group_of(node: pytest.Item | pytest.Module) -> str:
    marker = node.get_closest_marker("xdist_group")
    if marker is None:
        return MAIN_GROUP
    return str(marker.args[0] if marker.args else marker.kwargs["name"])


@dataclass
class Shared:
    """The groups' emulators this worker has started, and which of them are deployed."""

    targets: dict[str, Target] = field(default_factory=dict)
    deployed: set[str] = field(default_factory=set)

    def target(self, group: str) -> Target:
        if group not in self.targets:
            workspace = Workspace(group).create()
            self.targets[group] = Target(emulator=Emulator.start(workspace), workspace=workspace)
        return self.targets[group]


@pytest.fixture(scope="session")
def shared() -> Iterator[Shared]:
    started = Shared()
    yield started
    for target in started.targets.values():
        target.emulator.stop()
        target.write_timings()


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest, shared: Shared) -> Iterator[Target]:
    """The emulator of the module's group, with AWS clients of this process pointed at it."""
    target = shared.target(group_of(request.node))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**target.aws_env, "ENVIRONMENT_SUFFIX": SUFFIX}.items():
            patch.setenv(key, value)
        yield target


@pytest.fixture(scope="module")
def deployed(target: Target, shared: Shared) -> Target:
    """All four layers of the `e2e` environment on the group's emulator, deployed once."""
    if target.workspace.name not in shared.deployed:
        target.make("deploy")
        shared.deployed.add(target.workspace.name)
    return target


@pytest.fixture(scope="module")
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
