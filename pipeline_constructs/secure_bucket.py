"""An S3 bucket locked down the same way every time.

Versioned, encrypted, every kind of public access blocked, ACLs disabled, and a policy
that denies any request not made over TLS.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_object_lock_configuration import (
    S3BucketObjectLockConfigurationA,
    S3BucketObjectLockConfigurationRuleA,
    S3BucketObjectLockConfigurationRuleDefaultRetentionA,
)
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)

from pipeline_constructs.framework import Construct
from pipeline_constructs.iam import Condition, Statement, policy_document


class SecureBucket(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        bucket_name: str,
        kms_key_arn: str | None,
        lifecycle_rules: Sequence[S3BucketLifecycleConfigurationRule],
        access_logs: SecureBucket | None = None,
        object_lock_years: int | None = None,
        extra_policy_statements: Sequence[Statement] = (),
        force_destroy: bool = False,
    ) -> None:
        """`kms_key_arn=None` means SSE-S3, which S3 server access logging requires of its target."""
        super().__init__(scope, id_)
        self.bucket = S3Bucket(
            self,
            "bucket",
            bucket=bucket_name,
            object_lock_enabled=True if object_lock_years else None,
            force_destroy=force_destroy or None,
        )
        versioning = S3BucketVersioningA(
            self,
            "versioning",
            bucket=self.bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="aws:kms" if kms_key_arn else "AES256",
                            kms_master_key_id=kms_key_arn,
                        )
                    ),
                    bucket_key_enabled=True if kms_key_arn else None,
                )
            ],
        )
        public_access = S3BucketPublicAccessBlock(
            self,
            "public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=self.bucket.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        self.policy = S3BucketPolicy(
            self,
            "policy",
            bucket=self.bucket.id,
            policy=policy_document(
                self, "policy-document", statements=[self._deny_insecure_transport(), *extra_policy_statements]
            ).json,
            depends_on=[public_access],
        )
        S3BucketLifecycleConfiguration(
            self, "lifecycle", bucket=self.bucket.id, rule=list(lifecycle_rules), depends_on=[versioning]
        )
        if access_logs:
            S3BucketLoggingA(
                self,
                "access-logging",
                bucket=self.bucket.id,
                target_bucket=access_logs.name,
                target_prefix=f"s3/{bucket_name}/",
                depends_on=[access_logs.policy],  # S3 checks that the target lets log delivery write
            )
        # Every bucket's events go to EventBridge, where rules pick what they act on (an upload to
        # incoming/ starts a job); events no rule matches cost nothing.
        S3BucketNotification(self, "notifications", bucket=self.bucket.id, eventbridge=True)
        if object_lock_years:
            S3BucketObjectLockConfigurationA(
                self,
                "object-lock",
                bucket=self.bucket.id,
                rule=S3BucketObjectLockConfigurationRuleA(
                    default_retention=S3BucketObjectLockConfigurationRuleDefaultRetentionA(
                        mode="COMPLIANCE", years=object_lock_years
                    )
                ),
                depends_on=[versioning],
            )

    def _deny_insecure_transport(self) -> Statement:
        return Statement(
            sid="DenyInsecureTransport",
            effect="Deny",
            actions=["s3:*"],  # a Deny: the wider, the safer
            resources=[self.bucket.arn, f"{self.bucket.arn}/*"],
            principals={"AWS": ["*"]},
            conditions=[Condition(test="Bool", variable="aws:SecureTransport", values=["false"])],
        )

    @property
    def name(self) -> str:
        return self.bucket.bucket

    @property
    def arn(self) -> str:
        return self.bucket.arn
