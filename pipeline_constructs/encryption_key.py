"""A customer-managed KMS key with rotation and a key policy that names its users."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey

from pipeline_constructs.framework import Construct
from pipeline_constructs.iam import Condition, Statement, policy_document

_KEY_USE = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
]
# Spelled out instead of "kms:*": the account keeps full control (so it can never lock
# itself out), and no statement in the project uses a wildcard action.
_ADMIN_ACTIONS = [
    *_KEY_USE,
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]


class EncryptionKey(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        alias: str,
        description: str,
        account_id: str,
        region: str,
        service_principals: Sequence[str] = (),
        sourceless_service_principals: Sequence[str] = (),
        deletion_window_days: int = 30,
    ) -> None:
        super().__init__(scope, id_)
        account_root = f"arn:aws:iam::{account_id}:root"
        statements = [
            # Delegates to IAM: roles get key use only through their own least-privilege policies.
            # In a key policy "*" means this key.
            Statement(
                sid="AccountAdministersKeyThroughIam",
                actions=_ADMIN_ACTIONS,
                resources=["*"],
                principals={"AWS": [account_root]},
            ),
            Statement(
                sid="CloudWatchLogsEncryptsThisAccountsLogGroups",
                # Not kms:DescribeKey: its requests carry no encryption context, so under this
                # condition it would grant nothing (parliament).
                actions=[action for action in _KEY_USE if action != "kms:DescribeKey"],
                resources=["*"],
                principals={"Service": [f"logs.{region}.amazonaws.com"]},
                conditions=[
                    Condition(
                        test="ArnLike",
                        variable="kms:EncryptionContext:aws:logs:arn",
                        values=[f"arn:aws:logs:{region}:{account_id}:log-group:*"],
                    )
                ],
            ),
        ]
        if service_principals:
            statements.append(
                Statement(
                    sid="AwsServicesOfThisAccountUseKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],
                    principals={"Service": list(service_principals)},
                    conditions=[Condition(test="StringEquals", variable="aws:SourceAccount", values=[account_id])],
                )
            )
        if sourceless_service_principals:
            # Services that do not send aws:SourceAccount with their KMS calls: a condition on it would
            # refuse them. The SNS guide says so of EventBridge delivering to encrypted targets, and
            # EventBridge's own key policy for encrypted targets has none. What the service may deliver
            # to is narrowed by the target's own policy (the dead-letter queue's aws:SourceArn).
            statements.append(
                Statement(
                    sid="AwsServicesThatSendNoSourceUseKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],
                    principals={"Service": list(sourceless_service_principals)},
                )
            )
        self.key = KmsKey(
            self,
            "key",
            description=description,
            enable_key_rotation=True,
            deletion_window_in_days=deletion_window_days,
            policy=policy_document(self, "policy", statements=statements).json,
        )
        KmsAlias(self, "alias", name=alias, target_key_id=self.key.key_id)

    @property
    def arn(self) -> str:
        return self.key.arn
