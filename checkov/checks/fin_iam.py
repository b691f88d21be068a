"""IAM checks checkov lacks or over-applies, on aws_iam_policy_document data sources.

CKV_FIN_1: no Allow statement has a wildcard action (checkov's own check flags only a
bare "*"; "s3:*" or "s3:Get*" pass it). A Deny may be as wide as it likes.
CKV_FIN_2: cloudsplaining's three analyses behind CKV_AWS_109/111/356 (permissions
management, write access and restrictable actions on "*"), on identity statements only.
A statement with principals belongs to a resource policy (key, bucket, topic), where
"*" means the resource the policy is attached to.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.data.base_check import BaseDataCheck
from checkov.terraform.checks.data.base_cloudsplaining_data_iam_check import BaseTerraformCloudsplainingDataIAMCheck
from fin_conf import blocks, first, flat


def statements(conf: dict[str, Any]) -> list[dict[str, Any]]:
    return blocks(conf.get("statement", []))


class NoWildcardAllowAction(BaseDataCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure no IAM Allow statement uses a wildcard in an action",
            id="CKV_FIN_1",
            categories=[CheckCategories.IAM],
            supported_data=["aws_iam_policy_document"],
        )

    def scan_data_conf(self, conf: dict[str, Any]) -> CheckResult:
        for statement in statements(conf):
            if first(statement.get("effect", ["Allow"])) != "Allow":
                continue
            actions = [a for a in flat(statement.get("actions", [])) if isinstance(a, str)]
            if statement.get("not_actions") or any("*" in a for a in actions):
                return CheckResult.FAILED
        return CheckResult.PASSED


class IdentityStatementsAreConstrained(BaseTerraformCloudsplainingDataIAMCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure identity policy statements allow no permissions management, write access or "
            'restrictable action on "*" (CKV_AWS_109/111/356 without resource-policy statements)',
            id="CKV_FIN_2",
        )

    @property
    def cache_key(self) -> str:
        # The parent caches converted documents per entity; ours drops statements, so keep apart.
        return f"CKV_FIN_2:{self.entity_path}"

    def should_scan_conf(self, conf: dict[str, Any]) -> bool:
        return any(not s.get("principals") for s in statements(conf))

    def convert_to_iam_policy(self, conf: dict[str, Any]):  # type: ignore[no-untyped-def]
        identity_only = {**conf, "statement": [s for s in statements(conf) if not s.get("principals")]}
        return super().convert_to_iam_policy(identity_only)

    def cloudsplaining_analysis(self, policy):  # type: ignore[no-untyped-def]
        return sorted(
            {
                *policy.permissions_management_without_constraints,
                *policy.write_actions_without_constraints,
                *policy.all_allowed_unrestricted_actions,
            }
        )


no_wildcard_allow_action = NoWildcardAllowAction()
identity_statements_are_constrained = IdentityStatementsAreConstrained()
