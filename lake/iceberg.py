"""The published tables as Apache Iceberg tables (format v2), from their one definition (lake/schema.py).

The storage layer writes each table's first metadata file and registers it in the Glue Data
Catalog (pipeline_constructs/catalog.py); the load function commits to it with pyiceberg. Both
build the table from here, so the schema, its field ids and the partitioning are written once.
"""

from __future__ import annotations

import uuid

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    DateType,
    DecimalType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from lake import layout, schema

_TYPES: dict[str, IcebergType] = {
    schema.STRING: StringType(),
    schema.INT64: LongType(),
    schema.INT32: IntegerType(),
    schema.TIMESTAMP: TimestamptzType(),
    schema.DATE: DateType(),
    schema.AMOUNT: DecimalType(schema.AMOUNT_PRECISION, schema.AMOUNT_SCALE),
}
FORMAT_VERSION = 2
# Partition field ids start at 1000, as Iceberg's own specs number them.
_PARTITION_FIELD_ID = 1000
PROPERTIES = {"write.parquet.compression-codec": "zstd"}
# The first metadata file names no moment of its build, so synthesizing twice gives the same bytes.
_CREATED_MS = 0


def iceberg_schema(table: schema.Table) -> Schema:
    """Every column required: a published row has every field (description and extra may be empty
    text, never null)."""
    fields = [
        NestedField(number, column.name, _TYPES[column.type], required=True, doc=column.comment)
        for number, column in enumerate(table.columns, start=1)
    ]
    return Schema(*fields, schema_id=0)


def partition_spec(table: schema.Table) -> PartitionSpec:
    if table.partition_by is None:
        return PartitionSpec(spec_id=0)
    source_id = table.names.index(table.partition_by) + 1
    return PartitionSpec(
        PartitionField(
            source_id=source_id, field_id=_PARTITION_FIELD_ID, transform=IdentityTransform(), name=table.partition_by
        ),
        spec_id=0,
    )


def table_uuid(*, environment: str, table: schema.Table) -> str:
    """Stable per environment and table, so the first metadata file is the same at every synth."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"financial-pipeline/{environment}/{table.name}"))


def first_metadata(*, table: schema.Table, location: str, environment: str) -> str:
    """The table's first metadata file (JSON): its schema, partitioning and properties, no snapshot."""
    metadata = new_table_metadata(
        schema=iceberg_schema(table),
        partition_spec=partition_spec(table),
        sort_order=UNSORTED_SORT_ORDER,
        location=location,
        properties={**PROPERTIES, "format-version": str(FORMAT_VERSION)},
        table_uuid=uuid.UUID(table_uuid(environment=environment, table=table)),
    )
    metadata = metadata.model_copy(update={"last_updated_ms": _CREATED_MS})
    return metadata.model_dump_json()


def first_metadata_key(table: schema.Table, *, environment: str) -> str:
    """Where the storage layer writes it, under the table's own prefix (lake/layout.py)."""
    name = f"00000-{table_uuid(environment=environment, table=table)}.metadata.json"
    return f"{layout.table_prefix(table.name)}/metadata/{name}"


def glue_parameters(metadata_location: str) -> dict[str, str]:
    """What makes a Glue table an Iceberg table for Athena and pyiceberg."""
    return {"table_type": "ICEBERG", "metadata_location": metadata_location}
