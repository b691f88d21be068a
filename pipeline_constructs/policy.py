"""The synth-time security policy: a stack that breaks a rule does not synthesize.

An aspect registered on every layer (stacks/base.py), after the FinOps tagging aspect so
tags are in place when it looks (cdktf applies a node's aspects in the order they were
added, parents before children). Each violation is an error annotation on the offending
construct, naming its path and the rule; cdktf's synth throws on error annotations.

Rules:
  finops-tags          every taggable resource carries the FinOps tags
  no-wildcard-action   no Allow statement of an aws_iam_policy_document has "*" in an action
                       (a Deny may be as wide as it likes, e.g. s3:* in the TLS-only policy)
  encrypted-bucket     an aws_s3_bucket has an aws_s3_bucket_server_side_encryption_configuration
                       for it in the same stack
  encrypted-table      an aws_dynamodb_table has server_side_encryption enabled with a KMS key
  encrypted-topic      an aws_sns_topic has kms_master_key_id
  encrypted-queue      an aws_sqs_queue has kms_master_key_id or sqs_managed_sse_enabled
  encrypted-log-group  an aws_cloudwatch_log_group has kms_key_id
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jsii
from cdktf import DefaultTokenResolver, StringConcat, Tokenization
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import DataAwsIamPolicyDocument
from cdktf_cdktf_provider_aws.dynamodb_table import DynamodbTable
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue

from pipeline_constructs.framework import Annotations, Aspects, IAspect, IConstruct, TerraformStack
from pipeline_constructs.tagging import is_taggable


def _as_list(value: object) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]  # an IResolvable: a token we cannot look into


def _resolved(stack: TerraformStack, value: object) -> str:
    """A token as Terraform will see it: ${aws_s3_bucket.<id>.id}, whichever token object carries it."""
    resolver = DefaultTokenResolver(StringConcat())
    return str(Tokenization.resolve(value, scope=stack, preparing=False, resolver=resolver))


@jsii.implements(IAspect)
class SecurityPolicy:
    def __init__(self, required_tags: Iterable[str]) -> None:
        self._required_tags = sorted(required_tags)
        self._encrypted_buckets: dict[str, set[str]] = {}

    def visit(self, node: IConstruct) -> None:
        for rule, problem in self.violations(node):
            Annotations.of(node).add_error(f"{node.node.path} breaks security rule {rule}: {problem}")

    def violations(self, node: IConstruct) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if is_taggable(node):
            absent = sorted(set(self._required_tags) - set(node.tags_input or {}))  # type: ignore[attr-defined]
            if absent:
                found.append(("finops-tags", f"lacks FinOps tags {', '.join(absent)}"))
        if isinstance(node, DataAwsIamPolicyDocument):
            for statement in _as_list(node.statement_input):
                effect = getattr(statement, "effect", None) or "Allow"
                actions = [a for a in _as_list(getattr(statement, "actions", None)) if isinstance(a, str)]
                wildcards = [a for a in actions if "*" in a]
                if effect == "Allow" and wildcards:
                    sid = getattr(statement, "sid", None) or "(no sid)"
                    found.append(("no-wildcard-action", f"Allow statement {sid} has wildcard actions {wildcards}"))
        elif isinstance(node, S3Bucket):
            if not self._has_encryption_configuration(node):
                found.append(
                    ("encrypted-bucket", "no aws_s3_bucket_server_side_encryption_configuration for it in this stack")
                )
        elif isinstance(node, DynamodbTable):
            sse = node.server_side_encryption_input
            if sse is None or getattr(sse, "enabled", None) is not True or not getattr(sse, "kms_key_arn", None):
                found.append(("encrypted-table", "server_side_encryption must be enabled with a KMS key"))
        elif isinstance(node, SnsTopic):
            if not node.kms_master_key_id_input:
                found.append(("encrypted-topic", "kms_master_key_id is not set"))
        elif isinstance(node, SqsQueue):
            if not node.kms_master_key_id_input and node.sqs_managed_sse_enabled_input is not True:
                found.append(("encrypted-queue", "neither kms_master_key_id nor sqs_managed_sse_enabled is set"))
        elif isinstance(node, CloudwatchLogGroup):
            if not node.kms_key_id_input:
                found.append(("encrypted-log-group", "kms_key_id is not set"))
        return found

    def _has_encryption_configuration(self, bucket: S3Bucket) -> bool:
        stack = TerraformStack.of(bucket)
        encrypted = self._encrypted_buckets.get(stack.node.path)
        if encrypted is None:
            encrypted = {
                _resolved(stack, c.bucket_input)
                for c in stack.node.find_all()
                if isinstance(c, S3BucketServerSideEncryptionConfigurationA)
            }
            self._encrypted_buckets[stack.node.path] = encrypted
        return any(_resolved(stack, ref) in encrypted for ref in (bucket.id, bucket.bucket))


def register(stack: TerraformStack, required_tags: Mapping[str, str] | Iterable[str]) -> SecurityPolicy:
    """Add the policy to a stack; call after the tagging aspect is added."""
    policy = SecurityPolicy(required_tags)
    Aspects.of(stack).add(policy)
    return policy
