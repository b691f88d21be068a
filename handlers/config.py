"""Configuration from environment variables, read once on first use."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from handlers.errors import InvalidInputError

DEFAULT_REJECT_THRESHOLD = "0.05"


@dataclass(frozen=True)
class Settings:
    data_bucket: str
    jobs_table: str
    reject_threshold: Decimal
    code_version: str
    # Transaction ids kept in memory before duplicate detection spills to local disk.
    dedup_memory_entries: int
    # Seconds without progress after which an in-progress job may be taken over by a new start.
    job_lease_seconds: int
    work_dir: str


def parse_threshold(value: object, *, setting: str) -> Decimal:
    """A rejected-row share between 0 and 1, exact. ``setting`` names the source in errors."""
    if isinstance(value, bool) or value is None:
        raise InvalidInputError(f"{setting} must be a number between 0 and 1, got {value!r}")
    try:
        threshold = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInputError(f"{setting} must be a number between 0 and 1, got {value!r}") from None
    if not threshold.is_finite() or not Decimal(0) <= threshold <= Decimal(1):
        raise InvalidInputError(f"{setting} must be a number between 0 and 1, got {value!r}")
    return threshold


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise InvalidInputError(f"environment variable {name} is not set")
    return value


@functools.cache
def get_settings() -> Settings:
    return Settings(
        data_bucket=_required("DATA_BUCKET"),
        jobs_table=_required("JOBS_TABLE"),
        reject_threshold=parse_threshold(
            os.environ.get("REJECT_THRESHOLD", DEFAULT_REJECT_THRESHOLD), setting="REJECT_THRESHOLD"
        ),
        code_version=os.environ.get("CODE_VERSION", "unknown"),
        dedup_memory_entries=int(os.environ.get("DEDUP_MEMORY_ENTRIES", "1000000")),
        job_lease_seconds=int(os.environ.get("JOB_LEASE_SECONDS", "1800")),
        work_dir=os.environ.get("WORK_DIR", "/tmp"),  # noqa: S108 - Lambda's only writable disk
    )
