"""The data and work buckets, their access-log bucket, the job table and the key that encrypts them.

The data bucket is the regulated record (sources, rejects, published tables, manifests): kept
seven years, under Object Lock in production. The work bucket holds what a job makes on its way
(lake/layout.py's WORK prefixes): expired after days and never locked, so a production
environment does not keep several copies of every file for seven years.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTableGlobalSecondaryIndex,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)

from lake import layout
from pipeline_constructs.catalog import DataCatalog
from pipeline_constructs.encryption_key import EncryptionKey
from pipeline_constructs.framework import Construct
from pipeline_constructs.iam import Condition, Statement, policy_document, service_trust
from pipeline_constructs.secure_bucket import SecureBucket
from stacks import parameters
from stacks.base import LayerStack
from stacks.config import LifecycleSettings, PipelineConfig

JOB_TABLE_KEY = "jobId"
# The admission queue's index (handlers/dal/admission.py): only waiting jobs carry its keys.
QUEUE_INDEX = ("queue-index", "queue", "ticket")


class StorageStack(LayerStack):
    def __init__(self, scope: Construct, *, config: PipelineConfig) -> None:
        super().__init__(scope, config=config, layer="storage")
        self.key = EncryptionKey(
            self,
            "data-key",
            alias=f"alias/{self.name('data')}",
            description="Encrypts the pipeline's data, job table, function settings, logs and alerts",
            account_id=self.account_id,
            region=config.region,
            # CloudWatch alarms publish to the encrypted alert topic (the SNS guide recommends
            # aws:SourceAccount for them); EventBridge writes undeliverable events to the encrypted
            # dead-letter queue and sends no aws:SourceAccount to KMS (docs/security.md).
            service_principals=["cloudwatch.amazonaws.com"],
            sourceless_service_principals=["events.amazonaws.com"],
        )
        # Bucket names are global: the account id keeps two accounts' environments apart.
        access_logs_name = f"{self.name('access-logs')}-{self.account_id}"
        data_name = f"{self.name('data')}-{self.account_id}"
        work_name = f"{self.name('work')}-{self.account_id}"
        access_logs = SecureBucket(
            self,
            "access-logs",
            bucket_name=access_logs_name,
            kms_key_arn=None,
            lifecycle_rules=[
                _expire_rule("expire-access-logs", config.lifecycle.access_logs_expire_after_days, config.lifecycle),
                _abort_multipart_rule(config.lifecycle),
            ],
            extra_policy_statements=[
                self._allow_log_delivery(into=access_logs_name, source=source, sid=sid)
                for sid, source in (("Data", data_name), ("Work", work_name))
            ],
            force_destroy=config.force_destroy_buckets,
        )
        self.data = SecureBucket(
            self,
            "data",
            bucket_name=data_name,
            kms_key_arn=self.key.arn,
            access_logs=access_logs,
            object_lock_years=config.object_lock_retention_years,
            lifecycle_rules=_data_lifecycle(config.lifecycle),
            force_destroy=config.force_destroy_buckets and not config.records_retention_enabled,
        )
        self.work = SecureBucket(
            self,
            "work",
            bucket_name=work_name,
            kms_key_arn=self.key.arn,
            access_logs=access_logs,
            lifecycle_rules=_work_lifecycle(config.lifecycle),
            force_destroy=config.force_destroy_buckets,
        )
        self.table = DynamodbTable(
            self,
            "jobs",
            name=self.name("jobs"),
            billing_mode="PAY_PER_REQUEST",
            hash_key=JOB_TABLE_KEY,
            attribute=[
                DynamodbTableAttribute(name=JOB_TABLE_KEY, type="S"),
                DynamodbTableAttribute(name=QUEUE_INDEX[1], type="S"),
                DynamodbTableAttribute(name=QUEUE_INDEX[2], type="N"),
            ],
            global_secondary_index=[
                DynamodbTableGlobalSecondaryIndex(
                    name=QUEUE_INDEX[0], hash_key=QUEUE_INDEX[1], range_key=QUEUE_INDEX[2], projection_type="KEYS_ONLY"
                )
            ],
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=self.key.arn),
            deletion_protection_enabled=config.table_deletion_protection,
        )
        database_name = self.name("catalog").replace("-", "_")  # Athena prefers no hyphens in names
        catalog = DataCatalog(
            self,
            "catalog",
            database_name=database_name,
            workgroup_name=self.name("analytics"),
            bucket_name=self.data.name,
            results_bucket_name=self.work.name,
            kms_key_arn=self.key.arn,
            bytes_scanned_cutoff=config.monitoring.athena_bytes_scanned_cutoff,
            audit_bytes_scanned_cutoff=config.monitoring.audit_bytes_scanned_cutoff,
            environment=config.environment_suffix,
            optimizer_role_arn=self._table_optimizer_role(database_name).arn,
            snapshot_retention_days=config.lifecycle.snapshot_retention_days,
            force_destroy=config.force_destroy_buckets,
        )
        self.export(parameters.BUCKET_NAME, self.data.name, description="Data bucket")
        self.export(parameters.BUCKET_ARN, self.data.arn, description="Data bucket ARN")
        self.export(parameters.WORK_BUCKET_NAME, self.work.name, description="Work bucket (a job's own files)")
        self.export(parameters.WORK_BUCKET_ARN, self.work.arn, description="Work bucket ARN")
        self.export(parameters.TABLE_NAME, self.table.name, description="Job metadata table")
        self.export(parameters.TABLE_ARN, self.table.arn, description="Job metadata table ARN")
        self.export(parameters.KMS_KEY_ARN, self.key.arn, description="Customer-managed key of the pipeline")
        self.export(
            parameters.GLUE_DATABASE, catalog.database.name, description="Glue database of the published tables"
        )
        self.export(parameters.ATHENA_WORKGROUP, catalog.workgroup.name, description="Athena workgroup for the tables")
        self.export(
            parameters.AUDIT_WORKGROUP, catalog.audit_workgroup.name, description="Athena workgroup of the daily audit"
        )

    def _table_optimizer_role(self, database_name: str) -> IamRole:
        """The role Glue's table optimizers run as (Glue's "table optimization prerequisites"): the
        tables' files and metadata, the tables themselves, the key, and their own logs."""
        region, account = self.config.region, self.account_id
        role = IamRole(
            self,
            "table-optimizer-role",
            name=self.name("table-optimizer"),
            assume_role_policy=service_trust(
                self, "table-optimizer-trust", service="glue.amazonaws.com", account_id=account
            ).json,
        )
        tables = f"arn:aws:glue:{region}:{account}:table/{database_name}/*"
        IamRolePolicy(
            self,
            "table-optimizer-policy",
            role=role.id,
            name="optimize-tables",
            policy=policy_document(
                self,
                "table-optimizer-permissions",
                statements=[
                    Statement(
                        sid="RewriteTableFiles",
                        actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                        resources=[f"{self.data.arn}/{layout.PROCESSED}/*"],
                    ),
                    Statement(
                        sid="ListTableFiles",
                        actions=["s3:ListBucket"],
                        resources=[self.data.arn],
                        conditions=[
                            Condition(test="StringLike", variable="s3:prefix", values=[f"{layout.PROCESSED}/*"])
                        ],
                    ),
                    Statement(
                        sid="CommitToTables",
                        actions=["glue:GetTable", "glue:UpdateTable"],
                        resources=[
                            f"arn:aws:glue:{region}:{account}:catalog",
                            f"arn:aws:glue:{region}:{account}:database/{database_name}",
                            tables,
                        ],
                    ),
                    Statement(
                        sid="UseDataKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.arn]
                    ),
                    Statement(
                        sid="WriteOptimizerLogs",
                        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                        resources=[
                            f"arn:aws:logs:{region}:{account}:log-group:/aws-glue/iceberg-{kind}/logs:*"
                            for kind in ("compaction", "retention", "orphan-file-deletion")
                        ],
                    ),
                ],
            ).json,
        )
        return role

    def _allow_log_delivery(self, *, into: str, source: str, sid: str) -> Statement:
        # One statement per source bucket: moto accepts log delivery only from a statement whose
        # Resource is that one prefix (AWS takes a list too).
        return Statement(
            sid=f"S3ServerAccessLogDelivery{sid}",
            actions=["s3:PutObject"],
            # The prefix SecureBucket gives the source bucket's access logging.
            resources=[f"arn:aws:s3:::{into}/s3/{source}/*"],
            principals={"Service": ["logging.s3.amazonaws.com"]},
            conditions=[Condition(test="StringEquals", variable="aws:SourceAccount", values=[self.account_id])],
        )


def _expire_rule(
    rule_id: str, days: int, lifecycle: LifecycleSettings, *, prefix: str = ""
) -> S3BucketLifecycleConfigurationRule:
    return S3BucketLifecycleConfigurationRule(
        id=rule_id,
        status="Enabled",
        filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=prefix)],
        expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=days)],
        noncurrent_version_expiration=[
            S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                noncurrent_days=lifecycle.noncurrent_versions_expire_after_days
            )
        ],
    )


def _abort_multipart_rule(lifecycle: LifecycleSettings) -> S3BucketLifecycleConfigurationRule:
    return S3BucketLifecycleConfigurationRule(
        id="abort-incomplete-multipart-uploads",
        status="Enabled",
        filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
        abort_incomplete_multipart_upload=[
            S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                days_after_initiation=lifecycle.abort_incomplete_multipart_after_days
            )
        ],
    )


def _data_lifecycle(lifecycle: LifecycleSettings) -> list[S3BucketLifecycleConfigurationRule]:
    """The record: kept seven years. Only the sources go to Glacier (the seed): Athena skips objects in
    Glacier Flexible Retrieval without an error, so the published tables and manifests stay where it reads."""
    keep_the_record = _expire_rule("expire-record", lifecycle.expire_after_days, lifecycle)
    archive_sources = [
        S3BucketLifecycleConfigurationRule(
            id=f"archive-{prefix}",
            status="Enabled",
            filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=f"{prefix}/")],
            transition=[
                S3BucketLifecycleConfigurationRuleTransition(
                    days=lifecycle.glacier_after_days, storage_class="GLACIER"
                )
            ],
        )
        for prefix in layout.SOURCES
    ]
    return [keep_the_record, *archive_sources, _abort_multipart_rule(lifecycle)]


def _work_lifecycle(lifecycle: LifecycleSettings) -> list[S3BucketLifecycleConfigurationRule]:
    """A job's work files, kept a while to investigate a failure; the layer's upload is kept (its
    object is what the compute layer's state names), only its old versions go."""
    work_files = [
        _expire_rule(f"expire-{prefix}", lifecycle.work_files_expire_after_days, lifecycle, prefix=f"{prefix}/")
        for prefix in layout.INTERMEDIATE
    ]
    query_results = _expire_rule(
        "expire-athena-results",
        lifecycle.query_results_expire_after_days,
        lifecycle,
        prefix=f"{layout.ATHENA_RESULTS}/",
    )
    artifacts = S3BucketLifecycleConfigurationRule(
        id="expire-old-artifacts",
        status="Enabled",
        filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=f"{layout.ARTIFACTS}/")],
        noncurrent_version_expiration=[
            S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                noncurrent_days=lifecycle.noncurrent_versions_expire_after_days
            )
        ],
    )
    return [*work_files, query_results, artifacts, _abort_multipart_rule(lifecycle)]
