"""S3 checks checkov has no built-in for.

CKV_FIN_3: a bucket policy (an aws_iam_policy_document with principals whose resources
are S3 buckets) denies every request not made over TLS, on the bucket and its objects.
tests/security checks that every bucket has such a policy attached.
CKV_FIN_4: an aws_s3_bucket_object_lock_configuration is COMPLIANCE mode with a default
retention of at least seven years (SEC 17a-4 records).
CKV_FIN_5: in a production-like environment (Environment tag `prod` or `prod-*`) every
bucket except an access-log target and the work bucket is created with Object Lock enabled.
The work bucket holds no record (lake/layout.py): locked, its files could not expire. Dev and
test environments keep it off on purpose so they can be destroyed (docs/security.md).
"""

from __future__ import annotations

import re
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.data.base_check import BaseDataCheck
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from fin_conf import blocks, first, flat, is_production_like

SEVEN_YEARS_DAYS = 7 * 365
_S3_RESOURCE = re.compile(r"^(\$\{aws_s3_bucket\.[^}]+\.arn\}|arn:aws:s3:::)")


def _denies_insecure_transport(statement: dict[str, Any], bucket_arns: set[str]) -> bool:
    if first(statement.get("effect")) != "Deny":
        return False
    actions = set(flat(statement.get("actions", [])))
    if not actions & {"s3:*", "*"}:
        return False
    principals = blocks(statement.get("principals", []))
    if not any(first(p.get("type")) in {"AWS", "*"} and "*" in flat(p.get("identifiers", [])) for p in principals):
        return False
    secure_transport_false = any(
        first(c.get("test")) == "Bool"
        and first(c.get("variable")) == "aws:SecureTransport"
        and [str(v).lower() for v in flat(c.get("values", []))] == ["false"]
        for c in blocks(statement.get("condition", []))
    )
    resources = set(flat(statement.get("resources", [])))
    covers = all(arn in resources and f"{arn}/*" in resources for arn in bucket_arns)
    return secure_transport_false and covers


class BucketPolicyDeniesInsecureTransport(BaseDataCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure an S3 bucket policy denies requests not made over TLS (aws:SecureTransport)",
            id="CKV_FIN_3",
            categories=[CheckCategories.ENCRYPTION],
            supported_data=["aws_iam_policy_document"],
        )

    def scan_data_conf(self, conf: dict[str, Any]) -> CheckResult:
        statements = blocks(conf.get("statement", []))
        resource_policy = [s for s in statements if s.get("principals")]
        buckets = {
            r.split("/", 1)[0]
            for s in resource_policy
            for r in flat(s.get("resources", []))
            if isinstance(r, str) and _S3_RESOURCE.match(r)
        }
        if not buckets:
            return CheckResult.PASSED  # not a bucket policy
        own = {b for b in buckets if b.startswith("${aws_s3_bucket.")} or buckets
        if any(_denies_insecure_transport(s, own) for s in statements):
            return CheckResult.PASSED
        return CheckResult.FAILED


class ObjectLockIsComplianceForSevenYears(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure S3 Object Lock is COMPLIANCE mode with a default retention of at least 7 years",
            id="CKV_FIN_4",
            categories=[CheckCategories.BACKUP_AND_RECOVERY],
            supported_resources=["aws_s3_bucket_object_lock_configuration"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        for rule in blocks(conf.get("rule", [])):
            for retention in blocks(rule.get("default_retention", [])):
                years = first(retention.get("years")) or 0
                days = first(retention.get("days")) or 0
                if first(retention.get("mode")) == "COMPLIANCE" and (int(years) >= 7 or int(days) >= SEVEN_YEARS_DAYS):
                    return CheckResult.PASSED
        return CheckResult.FAILED


class ProductionBucketsHaveObjectLock(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure production buckets (Environment prod, prod-*) other than access-log targets and "
            "work files are created with Object Lock enabled",
            id="CKV_FIN_5",
            categories=[CheckCategories.BACKUP_AND_RECOVERY],
            supported_resources=["aws_s3_bucket"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if not is_production_like(conf):
            return CheckResult.PASSED  # dev/test stay destroyable (docs/security.md)
        name = str(first(conf.get("bucket", [""])))
        if "access-logs" in name:
            return CheckResult.PASSED  # log target: 365-day expiry, no records
        if name.startswith("pipeline-work-"):
            return CheckResult.PASSED  # work files: expired after days, no records

        return CheckResult.PASSED if first(conf.get("object_lock_enabled")) is True else CheckResult.FAILED


bucket_policy_denies_insecure_transport = BucketPolicyDeniesInsecureTransport()
object_lock_is_compliance_for_seven_years = ObjectLockIsComplianceForSevenYears()
production_buckets_have_object_lock = ProductionBucketsHaveObjectLock()
