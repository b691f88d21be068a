"""The published tables, as a ledger: each job committed to each Iceberg table in one snapshot.

A commit registers the data files a job's load has put under the table's location (`add_files`:
no data is rewritten) and, in the same commit, removes the rows of the job it replaces and of any
earlier run of the same job. A reader sees all of a job or none of it. The snapshot's summary names
the job, its run and plan, the source's SHA-256 and the code version, so the table's history
answers "which job loaded this, and when".

Commits are optimistic: Glue refuses an update whose VersionId is stale, pyiceberg raises
CommitFailedException, and the commit is made again on the table as it now is. Before each try
the table's history is read, so a commit that landed but whose answer was lost is not made twice.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Mapping, Sequence

import pyarrow as pa
from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import In
from pyiceberg.table import Table

SUMMARY_PREFIX = "pipeline."
COMMIT_ATTEMPTS = 12
_BACKOFF_SECONDS = 0.2


@functools.cache
def catalog() -> GlueCatalog:
    # boto3 everywhere: Glue through the functions' own endpoint settings, S3 through our FileIO.
    return GlueCatalog("pipeline", **{"py-io-impl": "handlers.dal.iceberg_io.Boto3FileIO"})


def reset() -> None:
    catalog.cache_clear()


def summary(**fields: str | None) -> dict[str, str]:
    """The snapshot summary's own keys: `pipeline.job-id` and so on, empty fields left out."""
    return {f"{SUMMARY_PREFIX}{name.replace('_', '-')}": value for name, value in fields.items() if value}


def _committed(table: Table, marks: Mapping[str, str]) -> int | None:
    """The snapshot that already carries this commit's marks (job, run, plan), if one does."""
    for snapshot in reversed(table.metadata.snapshots):
        properties = snapshot.summary.additional_properties if snapshot.summary else {}
        if all(properties.get(key) == value for key, value in marks.items()):
            return snapshot.snapshot_id
    return None


def commit_job(
    *,
    database: str,
    table: str,
    files: Sequence[str],
    marks: Mapping[str, str],
    properties: Mapping[str, str],
    remove_jobs: Sequence[str],
    rows: pa.Table | None = None,
) -> int:
    """One snapshot of `table` (well: one commit, which pyiceberg may write as a delete and an
    append snapshot, made visible together): the rows of `remove_jobs` out, `files` (S3 URIs of
    Parquet files already under the table's location) and `rows` in. Returns the last snapshot's id.
    `marks` (a subset of `properties`) identify the commit for the retry's check."""
    for attempt in range(COMMIT_ATTEMPTS):
        current = catalog().load_table((database, table))
        done = _committed(current, marks)
        if done is not None:
            return done
        try:
            with current.transaction() as transaction:
                if remove_jobs and _has_rows_of(current, remove_jobs):
                    transaction.delete(In("job_id", set(remove_jobs)), snapshot_properties=dict(properties))
                if files:
                    transaction.add_files(
                        list(files), snapshot_properties=dict(properties), check_duplicate_files=False
                    )
                if rows is not None:
                    transaction.append(rows, snapshot_properties=dict(properties))
        except CommitFailedException:
            # Another job committed first: the table has moved on; try again on what it is now.
            time.sleep(_BACKOFF_SECONDS * (attempt + 1) * (0.5 + random.random()))  # noqa: S311 - jitter
            continue
        landed = _committed(catalog().load_table((database, table)), marks)
        if landed is None:
            raise CommitFailedException(f"{database}.{table}: the commit of {dict(marks)} is not in its history")
        return landed
    raise CommitFailedException(f"{database}.{table}: {COMMIT_ATTEMPTS} commits lost their race; giving up")


def _has_rows_of(table: Table, jobs: Sequence[str]) -> bool:
    """Whether any data file may hold rows of `jobs` (from the manifests' column bounds, no data read)."""
    if table.current_snapshot() is None:
        return False
    return any(True for _ in table.scan(row_filter=In("job_id", set(jobs))).plan_files())
