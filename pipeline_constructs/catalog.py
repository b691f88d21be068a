"""The published data as tables: a Glue database, a table per published data set with partition
projection on the booking date, and an Athena workgroup that keeps queries cheap and results safe.

Partition projection declares how a booking date maps to a prefix, so Athena needs neither a
crawler nor ``MSCK REPAIR`` after a load. The columns come from lake/schema.py, the definition
transform writes its Parquet from.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.athena_workgroup import (
    AthenaWorkgroup,
    AthenaWorkgroupConfiguration,
    AthenaWorkgroupConfigurationResultConfiguration,
    AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration,
)
from cdktf_cdktf_provider_aws.glue_catalog_database import GlueCatalogDatabase
from cdktf_cdktf_provider_aws.glue_catalog_table import (
    GlueCatalogTable,
    GlueCatalogTablePartitionKeys,
    GlueCatalogTableStorageDescriptor,
    GlueCatalogTableStorageDescriptorColumns,
    GlueCatalogTableStorageDescriptorSerDeInfo,
)

from lake import layout, schema
from pipeline_constructs.framework import Construct

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def projection_parameters(*, bucket: str, table: schema.Table, first_date: str) -> dict[str, str]:
    """Athena partition projection of ``booking_date`` (a date per day, up to a year ahead)."""
    key = schema.BOOKING_DATE.name
    return {
        "EXTERNAL": "TRUE",
        "classification": "parquet",
        "projection.enabled": "true",
        f"projection.{key}.type": "date",
        f"projection.{key}.format": "yyyy-MM-dd",
        f"projection.{key}.range": f"{first_date},NOW+1YEARS",
        f"projection.{key}.interval": "1",
        f"projection.{key}.interval.unit": "DAYS",
        # "$${" is Terraform's escape for the literal "${" Athena reads; the bucket is a reference.
        "storage.location.template": f"s3://{bucket}/" + layout.partition_template(table.name).replace("${", "$${"),
    }


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
        first_date: str,
        force_destroy: bool,
    ) -> None:
        super().__init__(scope, id_)
        self.database = GlueCatalogDatabase(
            self, "database", name=database_name, description="Published transactions of the pipeline"
        )
        self.tables = [self._table(table, bucket_name=bucket_name, first_date=first_date) for table in schema.TABLES]
        self.workgroup = AthenaWorkgroup(
            self,
            "workgroup",
            name=workgroup_name,
            description="Queries of the pipeline's tables: results encrypted, bytes scanned capped",
            force_destroy=force_destroy or None,
            configuration=AthenaWorkgroupConfiguration(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=bytes_scanned_cutoff,
                result_configuration=AthenaWorkgroupConfigurationResultConfiguration(
                    output_location=f"s3://{results_bucket_name}/{layout.ATHENA_RESULTS}/",
                    encryption_configuration=AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration(
                        encryption_option="SSE_KMS", kms_key_arn=kms_key_arn
                    ),
                ),
            ),
        )

    def _table(self, table: schema.Table, *, bucket_name: str, first_date: str) -> GlueCatalogTable:
        return GlueCatalogTable(
            self,
            f"table-{table.name}",
            name=table.name,
            database_name=self.database.name,
            description=table.description,
            table_type="EXTERNAL_TABLE",
            parameters=projection_parameters(bucket=bucket_name, table=table, first_date=first_date),
            partition_keys=[
                GlueCatalogTablePartitionKeys(
                    name=schema.BOOKING_DATE.name,
                    type=schema.GLUE_TYPES[schema.BOOKING_DATE.type],
                    comment=schema.BOOKING_DATE.comment,
                )
            ],
            storage_descriptor=GlueCatalogTableStorageDescriptor(
                location=f"s3://{bucket_name}/{layout.table_prefix(table.name)}/",
                input_format=PARQUET_INPUT,
                output_format=PARQUET_OUTPUT,
                ser_de_info=GlueCatalogTableStorageDescriptorSerDeInfo(serialization_library=PARQUET_SERDE),
                columns=[
                    GlueCatalogTableStorageDescriptorColumns(
                        name=column.name, type=schema.GLUE_TYPES[column.type], comment=column.comment
                    )
                    for column in table.columns
                ],
            ),
        )
