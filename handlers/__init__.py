"""Lambda handlers of the financial data pipeline.

Entry modules (ingest, validate, transform, load, failure) are thin; the rules live in
``handlers.logic`` (no AWS) and S3/DynamoDB access in ``handlers.dal``.
"""

import os

# Arrow's allocator, chosen here because this package is imported before anything imports
# pyarrow (which reads the setting once, at its import). pyarrow's default, mimalloc, keeps the
# pages it frees: a chunk's transform whose Arrow buffers peaked at 49 MB held 290 MB resident;
# with the C library's malloc it holds 185 MB, at the same speed (docs/benchmarks.md). jemalloc
# gives the same figures but is not in pyarrow's arm64 wheels, which Lambda runs. A value set by
# the caller wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
