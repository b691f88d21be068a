"""The Glue tables the storage layer synthesizes describe the Parquet that transform and load write:
column by column, and the partition projection's template matches the keys load publishes."""

from __future__ import annotations

import io
import re

import pyarrow as pa
import pyarrow.parquet as pq

from lake import layout
from tests.handlers.conftest import BUCKET, csv_text, good_row, put_incoming, run_chain
from tests.infra.synth import Synth

# How Athena names the Arrow types transform writes.
HIVE_NAMES = {
    pa.string(): "string",
    pa.int64(): "bigint",
    pa.int8(): "tinyint",
    pa.timestamp("us", tz="UTC"): "timestamp",
}


def _synthesized_tables(synthesized: Synth) -> dict[str, dict]:
    return {t["name"]: t for t in synthesized.resources("storage", "aws_glue_catalog_table").values()}


def test_published_files_match_the_synthesized_tables(aws, synthesized: Synth):
    rows = [good_row(n, booked_at=f"2024-03-0{1 + n % 3}T10:00:00Z") for n in range(1, 20)]
    assert run_chain(put_incoming(aws, job_id="catalogued", body=csv_text(*rows)))[-1]["status"] == "LOADED"
    published = [
        item["Key"]
        for item in aws.list_objects_v2(Bucket=BUCKET, Prefix=f"{layout.PROCESSED}/")["Contents"]
        if item["Key"].endswith(".parquet")
    ]
    tables = _synthesized_tables(synthesized)
    assert sorted(tables) == sorted([layout.TRANSACTIONS_TABLE, layout.DAILY_TOTALS_TABLE])
    for name, table in tables.items():
        location = table["storage_descriptor"]["location"]
        template = table["parameters"]["storage.location.template"]
        # Terraform reads "$${" as a literal "${", the placeholder Athena fills with the date.
        assert template.count("$${") == 1 and template.startswith(location)
        pattern = re.escape(template.removeprefix(location)).replace(
            re.escape("$${booking_date}"), r"(?P<date>\d{4}-\d{2}-\d{2})"
        )
        relative = location.split("}/", 1)[1]  # after the bucket's reference
        files = [key for key in published if key.startswith(relative)]
        assert len(files) >= 3 if name == layout.DAILY_TOTALS_TABLE else files, name
        for key in files:
            assert re.match(pattern + r"[^/]+\.parquet$", key.removeprefix(relative)), key
            schema = pq.read_schema(io.BytesIO(aws.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
            written = [(field.name, HIVE_NAMES[field.type]) for field in schema]
            columns = [(c["name"], c["type"]) for c in table["storage_descriptor"]["columns"]]
            assert written == columns, key
        assert [(k["name"], k["type"]) for k in table["partition_keys"]] == [(layout.PARTITION_KEY, "date")]
