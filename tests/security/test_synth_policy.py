"""The synth-time policy (pipeline_constructs/policy.py): probes that break one rule each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
)
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTableServerSideEncryption,
)
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue

from pipeline_constructs.framework import App, Aspects, TerraformStack
from pipeline_constructs.policy import SecurityPolicy
from pipeline_constructs.tagging import FinOpsTagging

TAGS = {"Environment": "t", "Project": "p", "CostCenter": "c", "Owner": "o", "ManagedBy": "cdktf", "Layer": "x"}
KEY = "arn:aws:kms:us-east-2:111122223333:key/probe"


def _synth(tmp_path: Path, build: Callable[[TerraformStack], None], *, tagged: bool = True) -> None:
    application = App(outdir=str(tmp_path))
    stack = TerraformStack(application, "probe")
    AwsProvider(stack, "aws", region="us-east-2")
    build(stack)
    if tagged:
        Aspects.of(stack).add(FinOpsTagging(TAGS))
    Aspects.of(stack).add(SecurityPolicy(TAGS))
    application.synth()


def _encrypted_bucket(stack: TerraformStack) -> None:
    bucket = S3Bucket(stack, "bucket", bucket="probe-t")
    S3BucketServerSideEncryptionConfigurationA(
        stack,
        "sse",
        bucket=bucket.id,
        rule=[
            S3BucketServerSideEncryptionConfigurationRuleA(
                apply_server_side_encryption_by_default=(
                    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=KEY
                    )
                )
            )
        ],
    )


def _document(effect: str, actions: list[str]) -> Callable[[TerraformStack], None]:
    def build(stack: TerraformStack) -> None:
        DataAwsIamPolicyDocument(
            stack,
            "doc",
            statement=[
                DataAwsIamPolicyDocumentStatement(
                    sid="Probe", effect=effect, actions=actions, resources=["arn:aws:s3:::probe-t/*"]
                )
            ],
        )

    return build


def _table(sse: DynamodbTableServerSideEncryption | None) -> Callable[[TerraformStack], None]:
    def build(stack: TerraformStack) -> None:
        DynamodbTable(
            stack,
            "table",
            name="probe-t",
            billing_mode="PAY_PER_REQUEST",
            hash_key="k",
            attribute=[DynamodbTableAttribute(name="k", type="S")],
            server_side_encryption=sse,
        )

    return build


VIOLATIONS = {
    "untagged": (lambda s: _encrypted_bucket(s), False, "probe/bucket", "finops-tags"),
    "wildcard-action": (_document("Allow", ["s3:Get*"]), True, "probe/doc", "no-wildcard-action"),
    "unencrypted-bucket": (lambda s: S3Bucket(s, "bucket", bucket="probe-t"), True, "probe/bucket", "encrypted-bucket"),
    "table-without-sse": (_table(None), True, "probe/table", "encrypted-table"),
    "table-sse-without-key": (
        _table(DynamodbTableServerSideEncryption(enabled=True)),
        True,
        "probe/table",
        "encrypted-table",
    ),
    "topic": (lambda s: SnsTopic(s, "topic", name="probe-t"), True, "probe/topic", "encrypted-topic"),
    "queue": (lambda s: SqsQueue(s, "queue", name="probe-t"), True, "probe/queue", "encrypted-queue"),
    "log-group": (lambda s: CloudwatchLogGroup(s, "logs", name="/probe/t"), True, "probe/logs", "encrypted-log-group"),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_a_violation_stops_synthesis_naming_the_resource_and_the_rule(tmp_path: Path, case: str) -> None:
    build, tagged, path, rule = VIOLATIONS[case]
    with pytest.raises(RuntimeError, match=rf"{path} breaks security rule {rule}"):
        _synth(tmp_path, build, tagged=tagged)


def test_compliant_resources_synthesize(tmp_path: Path) -> None:
    def build(stack: TerraformStack) -> None:
        _encrypted_bucket(stack)
        _document("Deny", ["s3:*"])(stack)  # a Deny may be as wide as it likes
        _table(DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=KEY))(stack)
        SnsTopic(stack, "topic", name="probe-t", kms_master_key_id=KEY)
        SqsQueue(stack, "queue", name="probe-t", sqs_managed_sse_enabled=True)
        CloudwatchLogGroup(stack, "logs", name="/probe/t", kms_key_id=KEY)

    _synth(tmp_path, build)
    assert (tmp_path / "stacks" / "probe" / "cdk.tf.json").exists()


def test_the_real_stacks_synthesize_under_the_policy(synthesized, prod_synthesized) -> None:  # noqa: ANN001
    # Both fixtures synthesize through app.build_app, whose LayerStack registers the policy.
    assert set(synthesized.stacks) == set(prod_synthesized.stacks) == {"network", "storage", "compute", "orchestration"}
