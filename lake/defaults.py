"""Defaults the deployment, the functions and the command line share, each written once."""

ENVIRONMENT_SUFFIX = "dev"
REGION = "us-east-2"
# Rejected share of a file's rows above which the job is REJECTED and nothing loads.
REJECT_THRESHOLD = "0.05"
# Bytes of source per chunk of the Distributed Map: a few seconds of work for one function.
CHUNK_BYTES = 128 << 20
# Distinct transaction ids per partition of the job-wide duplicate step (about 100 MB of keys).
DEDUP_PARTITION_RECORDS = 4_000_000
# Rows of one booking date per transform item: a larger date is written by several items, each a
# run of its chunks (sized in docs/benchmarks.md: well inside transform's 900 s and its /tmp).
TRANSFORM_ITEM_ROWS = 25_000_000
