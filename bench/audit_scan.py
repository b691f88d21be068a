"""Bytes a row of the two columns the duplicate audit reads (docs/operations.md#duplicate-transactions):
1,000,000 rows of `job_id` and `transaction_id` written as transform writes the published Parquet.

    python bench/audit_scan.py
"""

from __future__ import annotations

import io
import random
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from handlers.logic.curated import PARQUET_OPTIONS, ROW_GROUP_ROWS

ROWS = 1_000_000
JOB = "partner-a-daily-2026-11-30-0d4c1e2f"


def bytes_a_row(ids: list[str]) -> dict[str, float]:
    table = pa.table({"job_id": [JOB] * len(ids), "transaction_id": ids})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=ROW_GROUP_ROWS, **PARQUET_OPTIONS)
    metadata = pq.ParquetFile(io.BytesIO(buffer.getvalue())).metadata
    return {
        metadata.schema.column(c).name: sum(
            metadata.row_group(r).column(c).total_compressed_size for r in range(metadata.num_row_groups)
        )
        / len(ids)
        for c in range(metadata.num_columns)
    }


def main() -> None:
    rng = random.Random(7)  # noqa: S311 - sample data
    cases = {
        "sequential ids (the sample generator's TX-0000000001)": [f"TX-{n:010d}" for n in range(1, ROWS + 1)],
        "random 24-character ids": [uuid.UUID(int=rng.getrandbits(128)).hex[:24].upper() for _ in range(ROWS)],
        "random 64-character ids (the contract's longest)": [
            "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-", k=64))
            for _ in range(ROWS)
        ],
    }
    for name, ids in cases.items():
        sizes = bytes_a_row(ids)
        print(f"{name}: transaction_id {sizes['transaction_id']:.2f} B/row, job_id {sizes['job_id']:.2f} B/row")


if __name__ == "__main__":
    main()
