"""The Iceberg tables the storage layer synthesizes describe the Parquet that transform and load write:
column by column, in Glue's columns and in the first metadata file, and a job's commits keep them."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from handlers.dal import ledger
from lake import layout, schema
from tests.handlers.conftest import BUCKET, DATABASE, csv_text, good_row, put_incoming, run_chain
from tests.infra.synth import Synth

# How Athena names the Arrow types transform writes, and how Iceberg does.
ATHENA_NAMES = {
    pa.string(): ("string", "string"),
    pa.int64(): ("bigint", "long"),
    pa.int32(): ("int", "int"),
    pa.date32(): ("date", "date"),
    pa.timestamp("us", tz="UTC"): ("timestamp", "timestamptz"),
    pa.decimal128(38, 4): ("decimal(38,4)", "decimal(38, 4)"),
}


def _synthesized(synthesized: Synth) -> dict[str, tuple[dict, dict]]:
    """Each table's Glue resource and the first metadata file it points at (the S3 object's content)."""
    objects = {o["key"]: o for o in synthesized.resources("storage", "aws_s3_object").values()}
    tables = {}
    for table in synthesized.resources("storage", "aws_glue_catalog_table").values():
        key = table["parameters"]["metadata_location"].split("}/", 1)[1]  # after the bucket's reference
        tables[table["name"]] = (table, json.loads(objects[key]["content"]))
    return tables


def test_published_files_match_the_synthesized_tables(aws, synthesized: Synth):
    rows = [good_row(n, booked_at=f"2024-03-0{1 + n % 3}T10:00:00Z") for n in range(1, 20)]
    assert run_chain(put_incoming(aws, job_id="catalogued", body=csv_text(*rows)))[-1]["status"] == "LOADED"
    published = [
        item["Key"]
        for item in aws.list_objects_v2(Bucket=BUCKET, Prefix=f"{layout.PROCESSED}/")["Contents"]
        if item["Key"].endswith(".parquet")
    ]
    tables = _synthesized(synthesized)
    assert sorted(tables) == sorted(table.name for table in schema.TABLES)
    for name, (table, metadata) in tables.items():
        assert table["parameters"]["table_type"] == "ICEBERG"
        assert metadata["format-version"] == 2 and metadata.get("current-snapshot-id") in (None, -1)  # empty
        location = table["storage_descriptor"]["location"]
        assert metadata["location"] == location
        columns = [(c["name"], c["type"]) for c in table["storage_descriptor"]["columns"]]
        fields = [(f["name"], f["type"]) for f in metadata["schemas"][0]["fields"]]
        assert all(f["required"] for f in metadata["schemas"][0]["fields"])
        relative = location.split("}/", 1)[1]
        files = [key for key in published if key.startswith(f"{relative}/data/")]
        if name == layout.JOB_QUALITY_TABLE:
            assert metadata["partition-specs"][0]["fields"] == []
        else:
            (partition,) = metadata["partition-specs"][0]["fields"]
            assert (partition["transform"], partition["name"]) == ("identity", layout.PARTITION_KEY)
            assert len(files) >= 3, name  # three booking dates
        assert files, name
        for key in files:
            written = pq.read_schema(io.BytesIO(aws.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
            assert [(f.name, ATHENA_NAMES[f.type][0]) for f in written] == columns, key
            assert [(f.name, ATHENA_NAMES[f.type][1]) for f in written] == fields, key
        # The job's commits left the schema as the storage layer declared it.
        committed = ledger.catalog().load_table((DATABASE, name))
        assert [(f.name, str(f.field_type)) for f in committed.schema().fields] == fields
