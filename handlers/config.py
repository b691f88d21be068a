"""The functions' settings, from the environment the compute layer sets, read once on first use."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from decimal import Decimal

from handlers.errors import InvalidInputError
from handlers.logic.values import parse_positive, parse_threshold


@dataclass(frozen=True)
class Settings:
    # The record (sources, quarantine, published tables, manifests: retained, locked in production)
    # and the work files (staging, curated: expired after days): lake/layout.py says which prefix is where.
    data_bucket: str
    work_bucket: str
    glue_database: str  # the published tables' database (Iceberg tables, committed by load)
    jobs_table: str
    environment: str
    reject_threshold: Decimal
    code_version: str
    chunk_bytes: int
    dedup_partition_records: int
    transform_item_rows: int  # rows of one booking date per transform item
    max_running_jobs: int
    # Seconds without progress after which a running job counts as abandoned (its slot is freed
    # and a new start may take it over).
    job_lease_seconds: int
    work_dir: str


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise InvalidInputError(f"environment variable {name} is not set")
    return value


@functools.cache
def get_settings() -> Settings:
    return Settings(
        data_bucket=_required("DATA_BUCKET"),
        work_bucket=_required("WORK_BUCKET"),
        glue_database=_required("GLUE_DATABASE"),
        jobs_table=_required("JOBS_TABLE"),
        environment=_required("ENVIRONMENT_SUFFIX"),
        reject_threshold=parse_threshold(_required("REJECT_THRESHOLD"), setting="REJECT_THRESHOLD"),
        code_version=os.environ.get("CODE_VERSION", "unknown"),
        chunk_bytes=parse_positive(_required("CHUNK_BYTES"), setting="CHUNK_BYTES"),
        dedup_partition_records=parse_positive(_required("DEDUP_PARTITION_RECORDS"), setting="DEDUP_PARTITION_RECORDS"),
        transform_item_rows=parse_positive(_required("TRANSFORM_ITEM_ROWS"), setting="TRANSFORM_ITEM_ROWS"),
        max_running_jobs=parse_positive(_required("MAX_RUNNING_JOBS"), setting="MAX_RUNNING_JOBS"),
        job_lease_seconds=parse_positive(_required("JOB_LEASE_SECONDS"), setting="JOB_LEASE_SECONDS"),
        work_dir=os.environ.get("WORK_DIR", "/tmp"),  # noqa: S108 - Lambda's only writable disk
    )
