"""A file validated through the job's plan and chunk steps (handlers/logic/localjob.py), for
comparing with validation in one piece."""

from __future__ import annotations

import os
import tempfile

from handlers.logic.localjob import validate_file


def chunked_result(data: bytes, *, fmt: str, chunk_bytes: int, jobs: int = 1, partition_records: int = 3):
    """(report, [(line, transaction_id, reasons)]) of ``data`` validated in chunks of
    ``chunk_bytes``, with tiny id partitions so that the duplicate step has several."""
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "source")
        with open(path, "wb") as out:
            out.write(data)
        result = validate_file(
            path=path,
            fmt=fmt,
            directory=os.path.join(work, "chunks"),
            chunk_bytes=chunk_bytes,
            jobs=jobs,
            partition_records=partition_records,
        )
        rejects = [(r["line"], r["transaction_id"], r["reasons"]) for r in result.rejects()]
    return result.summary.to_dict(), rejects
