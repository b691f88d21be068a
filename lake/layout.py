"""The buckets' prefixes and every key the pipeline reads or writes.

Two buckets: the data bucket holds the regulated record (the sources as received, the rejects,
the published tables and their manifests), which production keeps for seven years under S3
Object Lock; the work bucket holds what a job makes on its way and nobody needs once it has
ended (plans, staged rows, curated files before publication, Step Functions' map results,
Athena's query results, the Lambda layer's upload), expired after days and never locked.

A prefix is granted in the compute layer (`stacks/compute.py`) from the same names the
handlers build keys with, so a new prefix cannot be written in one place and granted in
another.
"""

from __future__ import annotations

INCOMING = "incoming"  # uploads; an object created here starts a job
RAW = "raw"  # inline execution data, landed by ingest
STAGING = "staging"  # per-job intermediate work: plan, chunk results, duplicate keys
QUARANTINE = "quarantine"  # rejected rows with line numbers and reasons
CURATED = "curated"  # per-job Parquet ready to publish, and its index
PROCESSED = "processed"  # the published data set (the Glue tables' locations)
MANIFESTS = "manifests"  # one per job, written last: what belongs to the data set
ATHENA_RESULTS = "athena-results"  # query results of the Athena workgroup
ARTIFACTS = "artifacts"  # the compute layer's Lambda layer zip (too large to send inline)

# The data bucket: the record.
RECORD = (INCOMING, RAW, QUARANTINE, PROCESSED, MANIFESTS)
# Sources as received: to Glacier after 90 days (the seed), nobody queries them.
SOURCES = (INCOMING, RAW)
# The work bucket: work files nobody reads once a job has finished, expired by lifecycle rules.
WORK = (STAGING, CURATED, ATHENA_RESULTS, ARTIFACTS)
INTERMEDIATE = (STAGING, CURATED)
PREFIXES = RECORD + WORK

TRANSACTIONS_TABLE = "transactions"
DAILY_TOTALS_TABLE = "daily_totals"
JOB_QUALITY_TABLE = "job_quality"
PARTITION_KEY = "booking_date"


def layer_key(sha256: str) -> str:
    """The dependency layer's upload, named by its content."""
    return f"{ARTIFACTS}/layers/dependencies-{sha256}.zip"


def raw_key(job_id: str, sha256: str) -> str:
    return f"{RAW}/{job_id}/{sha256}.jsonl"


# ------------------------------------------------------------------ staging (one plan of a job)
def plan_prefix(job_id: str, plan_id: str) -> str:
    return f"{STAGING}/{job_id}/{plan_id}"


def plan_key(job_id: str, plan_id: str) -> str:
    return f"{plan_prefix(job_id, plan_id)}/plan.json"


def chunks_key(job_id: str, plan_id: str) -> str:
    """The Distributed Map's items: one object per chunk (a JSON array)."""
    return f"{plan_prefix(job_id, plan_id)}/chunks.json"


def chunk_prefix(job_id: str, plan_id: str, chunk: int) -> str:
    return f"{plan_prefix(job_id, plan_id)}/chunk-{chunk:06d}"


def chunk_summary_key(job_id: str, plan_id: str, chunk: int) -> str:
    """Written last by a chunk: its completion marker."""
    return f"{chunk_prefix(job_id, plan_id, chunk)}/summary.json"


def chunk_rows_key(job_id: str, plan_id: str, chunk: int, booking_date: str) -> str:
    """A chunk's valid rows of one booking date (an Arrow file: read whole by transform)."""
    return f"{chunk_prefix(job_id, plan_id, chunk)}/{PARTITION_KEY}={booking_date}.arrow"


def chunk_keys_key(job_id: str, plan_id: str, chunk: int, partition: int) -> str:
    return f"{chunk_prefix(job_id, plan_id, chunk)}/ids/partition-{partition:05d}.arrow"


def partitions_key(job_id: str, plan_id: str) -> str:
    """The duplicate step's items: one object per id partition."""
    return f"{plan_prefix(job_id, plan_id)}/partitions.json"


def duplicates_key(job_id: str, plan_id: str, partition: int) -> str:
    return f"{plan_prefix(job_id, plan_id)}/duplicates/partition-{partition:05d}.json"


def revalidate_key(job_id: str, plan_id: str) -> str:
    """Chunks holding ids that first occur in an earlier chunk (items of the second pass)."""
    return f"{plan_prefix(job_id, plan_id)}/revalidate.json"


def dates_key(job_id: str, plan_id: str) -> str:
    """Transform's items: runs of small booking dates, or one run of a large date's chunks."""
    return f"{plan_prefix(job_id, plan_id)}/dates.json"


# ------------------------------------------------------------------ quarantine
def quarantine_prefix(job_id: str) -> str:
    return f"{QUARANTINE}/{job_id}"


def quarantine_key(job_id: str, plan_id: str, chunk: int) -> str:
    """Rejected rows of one chunk; the chunks' files in order are the job's rejects in line order."""
    return f"{quarantine_prefix(job_id)}/{plan_id}/part-{chunk:06d}.jsonl"


def quarantine_keys(job_id: str, plan_id: str, chunks: int) -> list[str]:
    """Every quarantine part of a job's plan, in line order."""
    return [quarantine_key(job_id, plan_id, chunk) for chunk in range(chunks)]


# ------------------------------------------------------------------ curated (ready to publish)
# A date is written by one transform item or, when large, by several (item 0, 1, ... in chunk order).
def curated_rows_key(job_id: str, booking_date: str, part: int, item: int = 0) -> str:
    prefix = f"{CURATED}/{job_id}/{TRANSACTIONS_TABLE}/{PARTITION_KEY}={booking_date}"
    return f"{prefix}/item-{item:05d}-part-{part:05d}.parquet"


def curated_daily_key(job_id: str, booking_date: str) -> str:
    return f"{CURATED}/{job_id}/{DAILY_TOTALS_TABLE}/{PARTITION_KEY}={booking_date}/part-00000.parquet"


def curated_partial_key(job_id: str, booking_date: str, item: int) -> str:
    """One item's partial daily totals (sorted exact sums, Arrow IPC), merged into the date's."""
    return f"{CURATED}/{job_id}/daily-partials/{PARTITION_KEY}={booking_date}/item-{item:05d}.arrow"


def curated_index_key(job_id: str, booking_date: str, item: int = 0) -> str:
    """Written last by an item: what it wrote (its completion marker)."""
    return f"{CURATED}/{job_id}/index/{PARTITION_KEY}={booking_date}/item-{item:05d}.json"


def curated_daily_index_key(job_id: str, booking_date: str) -> str:
    """Written last by the merge of a date of several items: its daily totals file."""
    return f"{CURATED}/{job_id}/index/{PARTITION_KEY}={booking_date}/daily.json"


# ------------------------------------------------------------------ published
def table_prefix(table: str) -> str:
    """An Iceberg table's location: its `metadata/` and `data/` below it."""
    return f"{PROCESSED}/{table}"


def table_data_key(table: str, *, job_id: str, plan_id: str, booking_date: str, name: str) -> str:
    """A data file a job's load puts under its table and commits (the plan keeps a rerun's files apart)."""
    return f"{table_prefix(table)}/data/{PARTITION_KEY}={booking_date}/{job_id}-{plan_id}-{name}.parquet"


def processed_rows_key(job_id: str, plan_id: str, booking_date: str, part: int) -> str:
    return table_data_key(
        TRANSACTIONS_TABLE, job_id=job_id, plan_id=plan_id, booking_date=booking_date, name=f"part-{part:05d}"
    )


def processed_daily_key(job_id: str, plan_id: str, booking_date: str) -> str:
    return table_data_key(DAILY_TOTALS_TABLE, job_id=job_id, plan_id=plan_id, booking_date=booking_date, name="totals")


def manifest_key(job_id: str) -> str:
    return f"{MANIFESTS}/{job_id}.json"
