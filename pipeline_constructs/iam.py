"""IAM policy documents built as data, so scanners and tests can read every statement.

A statement whose resources include "*" must say why: AWS offers no narrower resource
for some actions (X-Ray segments, ENI management, log delivery), and that reason is kept
next to the statement rather than in a reviewer's memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals,
)

from pipeline_constructs.framework import Construct


@dataclass(frozen=True, kw_only=True)
class Condition:
    test: str
    variable: str
    values: Sequence[str]


@dataclass(frozen=True, kw_only=True)
class Statement:
    sid: str
    actions: Sequence[str]
    resources: Sequence[str]
    effect: str = "Allow"
    principals: dict[str, Sequence[str]] = field(default_factory=dict)
    conditions: Sequence[Condition] = ()
    any_resource_reason: str | None = None

    def __post_init__(self) -> None:
        wildcard_actions = [a for a in self.actions if "*" in a]
        if wildcard_actions and self.effect == "Allow":
            raise ValueError(f"IAM statement {self.sid}: wildcard action {wildcard_actions} is not allowed")
        # In a resource policy (one with principals) "*" means the resource the policy is on.
        if "*" in self.resources and self.effect == "Allow" and not self.principals and not self.any_resource_reason:
            raise ValueError(
                f'IAM statement {self.sid}: "Resource": "*" needs any_resource_reason '
                "(allowed only where AWS gives no narrower resource)"
            )


# What a state machine's execution logging needs (Step Functions' "IAM policies for CloudWatch Logs").
DELIVER_EXECUTION_LOGS = Statement(
    sid="DeliverExecutionLogs",
    actions=[
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    ],
    resources=["*"],
    any_resource_reason="CloudWatch Logs vended-log delivery APIs have no resource-level permissions "
    "(Step Functions logging documentation)",
)

# What active tracing needs, for a function or a state machine (AWSXRayDaemonWriteAccess).
WRITE_TRACES = Statement(
    sid="WriteTraces",
    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"],
    resources=["*"],
    any_resource_reason="X-Ray trace APIs have no resource-level permissions",
)


def policy_document(scope: Construct, id_: str, *, statements: Sequence[Statement]) -> DataAwsIamPolicyDocument:
    return DataAwsIamPolicyDocument(
        scope,
        id_,
        statement=[
            DataAwsIamPolicyDocumentStatement(
                sid=s.sid,
                effect=s.effect,
                actions=list(s.actions),
                resources=list(s.resources) or None,
                principals=[
                    DataAwsIamPolicyDocumentStatementPrincipals(type=kind, identifiers=list(ids))
                    for kind, ids in s.principals.items()
                ]
                or None,
                condition=[
                    DataAwsIamPolicyDocumentStatementCondition(test=c.test, variable=c.variable, values=list(c.values))
                    for c in s.conditions
                ]
                or None,
            )
            for s in statements
        ],
    )


def service_trust(scope: Construct, id_: str, *, service: str, account_id: str) -> DataAwsIamPolicyDocument:
    """Trust policy letting one AWS service assume a role, only on behalf of this account."""
    return policy_document(
        scope,
        id_,
        statements=[
            Statement(
                sid="TrustService",
                actions=["sts:AssumeRole"],
                resources=[],
                principals={"Service": [service]},
                conditions=[Condition(test="StringEquals", variable="aws:SourceAccount", values=[account_id])],
            )
        ],
    )
