"""The published data as Apache Iceberg tables: a Glue database, one Iceberg table per published
data set, Glue's table optimizers that compact them and expire old snapshots and orphan files, and
an Athena workgroup (engine version 3) that keeps queries cheap and results safe.

Each table is declared here, from lake/schema.py through lake/iceberg.py: its first metadata file
(schema, field ids, identity partitioning on the booking date, no snapshot) is an S3 object, and the
Glue table points at it (`table_type=ICEBERG`, `metadata_location`), which is how Athena and pyiceberg
find an Iceberg table. Every commit of the load function writes a new metadata file and moves the
Glue table's `metadata_location` (and rewrites its columns): Terraform ignores those fields, so a
plan after loads shows no change.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws import glue_catalog_table_optimizer as optimizer
from cdktf_cdktf_provider_aws.athena_workgroup import (
    AthenaWorkgroup,
    AthenaWorkgroupConfiguration,
    AthenaWorkgroupConfigurationEngineVersion,
    AthenaWorkgroupConfigurationResultConfiguration,
    AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration,
)
from cdktf_cdktf_provider_aws.glue_catalog_database import GlueCatalogDatabase
from cdktf_cdktf_provider_aws.glue_catalog_table import (
    GlueCatalogTable,
    GlueCatalogTableStorageDescriptor,
    GlueCatalogTableStorageDescriptorColumns,
)
from cdktf_cdktf_provider_aws.s3_object import S3Object

from lake import iceberg, layout, schema
from pipeline_constructs.framework import Construct, TerraformResourceLifecycle

ATHENA_ENGINE = "Athena engine version 3"
# What a commit of pyiceberg rewrites on the Glue table: its metadata location, its columns, and the
# description, which its UpdateTable leaves out (Glue replaces the whole table input).
COMMITTED_FIELDS = ["parameters", "storage_descriptor", "description"]
# Files in a table's location that no snapshot names (a commit that lost its race, a crashed load)
# are deleted after this many days: longer than any load runs.
ORPHAN_FILE_DAYS = 3


class DataCatalog(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        database_name: str,
        workgroup_name: str,
        bucket_name: str,
        results_bucket_name: str,
        kms_key_arn: str,
        bytes_scanned_cutoff: int,
        audit_bytes_scanned_cutoff: int,
        environment: str,
        optimizer_role_arn: str,
        snapshot_retention_days: int,
        force_destroy: bool,
    ) -> None:
        super().__init__(scope, id_)
        self.database = GlueCatalogDatabase(
            self, "database", name=database_name, description="Published transactions of the pipeline"
        )
        self.tables = {
            table.name: self._table(table, bucket_name=bucket_name, environment=environment)
            for table in schema.TABLES
        }
        for name, table in self.tables.items():
            self._optimizers(
                name,
                table,
                role_arn=optimizer_role_arn,
                # The data files only: files a deployment published before the ledger sit beside
                # data/ under the table's prefix and must not be swept as orphans.
                location=f"s3://{bucket_name}/{layout.table_prefix(name)}/data",
                retention_days=snapshot_retention_days,
            )
        results = f"s3://{results_bucket_name}/{layout.ATHENA_RESULTS}"
        self.workgroup = self._workgroup(
            "workgroup",
            name=workgroup_name,
            description="Queries of the pipeline's tables: results encrypted, bytes scanned capped",
            cutoff=bytes_scanned_cutoff,
            results=f"{results}/",
            kms_key_arn=kms_key_arn,
            force_destroy=force_destroy,
        )
        # The daily duplicate audit reads a whole booking date: its own limit, its own results.
        self.audit_workgroup = self._workgroup(
            "audit-workgroup",
            name=f"{workgroup_name}-audit",
            description="The daily duplicate audit's queries: a whole booking date, two columns",
            cutoff=audit_bytes_scanned_cutoff,
            results=f"{results}/audit/",
            kms_key_arn=kms_key_arn,
            force_destroy=force_destroy,
        )

    def _workgroup(
        self, id_: str, *, name: str, description: str, cutoff: int, results: str, kms_key_arn: str, force_destroy: bool
    ) -> AthenaWorkgroup:
        return AthenaWorkgroup(
            self,
            id_,
            name=name,
            description=description,
            force_destroy=force_destroy or None,
            configuration=AthenaWorkgroupConfiguration(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=cutoff,
                # Iceberg tables, time travel and MERGE need engine version 3.
                engine_version=AthenaWorkgroupConfigurationEngineVersion(selected_engine_version=ATHENA_ENGINE),
                result_configuration=AthenaWorkgroupConfigurationResultConfiguration(
                    output_location=results,
                    encryption_configuration=AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration(
                        encryption_option="SSE_KMS", kms_key_arn=kms_key_arn
                    ),
                ),
            ),
        )

    def _table(self, table: schema.Table, *, bucket_name: str, environment: str) -> GlueCatalogTable:
        location = f"s3://{bucket_name}/{layout.table_prefix(table.name)}"
        key = iceberg.first_metadata_key(table, environment=environment)
        first = S3Object(
            self,
            f"first-metadata-{table.name}",
            bucket=bucket_name,
            key=key,
            content=iceberg.first_metadata(table=table, location=location, environment=environment),
            content_type="application/json",
            checksum_algorithm="SHA256",  # a bucket under Object Lock refuses writes without one
        )
        return GlueCatalogTable(
            self,
            f"table-{table.name}",
            name=table.name,
            database_name=self.database.name,
            description=table.description,
            table_type="EXTERNAL_TABLE",
            parameters=iceberg.glue_parameters(f"s3://{bucket_name}/{key}"),
            storage_descriptor=GlueCatalogTableStorageDescriptor(
                location=location,
                columns=[
                    GlueCatalogTableStorageDescriptorColumns(
                        name=column.name, type=schema.GLUE_TYPES[column.type], comment=column.comment
                    )
                    for column in table.columns
                ],
            ),
            lifecycle=TerraformResourceLifecycle(ignore_changes=COMMITTED_FIELDS),
            depends_on=[first],
        )

    def _optimizers(
        self, name: str, table: GlueCatalogTable, *, role_arn: str, location: str, retention_days: int
    ) -> None:
        """Glue's own compaction, snapshot retention and orphan file deletion: the small files of many
        jobs a day are rewritten into large ones, and snapshots older than the audit window go."""
        retention = optimizer.GlueCatalogTableOptimizerConfigurationRetentionConfiguration(
            iceberg_configuration=[
                optimizer.GlueCatalogTableOptimizerConfigurationRetentionConfigurationIcebergConfiguration(
                    snapshot_retention_period_in_days=retention_days,
                    number_of_snapshots_to_retain=1,
                    clean_expired_files=True,
                )
            ]
        )
        orphans = optimizer.GlueCatalogTableOptimizerConfigurationOrphanFileDeletionConfiguration(
            iceberg_configuration=[
                optimizer.GlueCatalogTableOptimizerConfigurationOrphanFileDeletionConfigurationIcebergConfiguration(
                    orphan_file_retention_period_in_days=ORPHAN_FILE_DAYS, location=location
                )
            ]
        )
        for kind, settings in (
            ("compaction", {}),
            ("retention", {"retention_configuration": [retention]}),
            ("orphan_file_deletion", {"orphan_file_deletion_configuration": [orphans]}),
        ):
            optimizer.GlueCatalogTableOptimizer(
                self,
                f"{name}-{kind}",
                catalog_id=self.database.catalog_id,
                database_name=self.database.name,
                table_name=table.name,
                type=kind,
                configuration=[
                    optimizer.GlueCatalogTableOptimizerConfiguration(role_arn=role_arn, enabled=True, **settings)
                ],
            )
