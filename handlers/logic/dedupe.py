"""The job-wide duplicate step, for one partition of the transaction-id keys.

Each chunk found the duplicates within itself; what it cannot see is an id whose first occurrence
lies in an earlier chunk. For one partition of the keys (every chunk's occurrences whose key falls
in it), the first chunk in which a key occurs keeps that key's fates; every occurrence of the key
in a later chunk is a late duplicate: its line goes back to its chunk, which is validated again
with it (handlers/validate.py). Memory is bounded by the partition, not by the file.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def late_occurrences(shards: list[tuple[int, pa.Table]]) -> dict[int, list[int]]:
    """Chunk -> sorted lines of its late duplicates, from (chunk, occurrences) of one partition."""
    tables = [
        table.append_column("chunk", pa.array(np.full(table.num_rows, chunk, dtype=np.int64)))
        for chunk, table in shards
        if table.num_rows
    ]
    if len(tables) < 2:
        return {}
    occurrences = pa.concat_tables(tables)
    firsts = occurrences.group_by(["high", "low"], use_threads=False).aggregate([("chunk", "min"), ("chunk", "max")])
    shared = firsts.filter(pc.not_equal(firsts["chunk_min"], firsts["chunk_max"]))
    if shared.num_rows == 0:
        return {}
    joined = occurrences.join(shared.select(["high", "low", "chunk_min"]), keys=["high", "low"], join_type="inner")
    late = joined.filter(pc.greater(joined["chunk"], joined["chunk_min"]))
    result: dict[int, list[int]] = {}
    for chunk, line in zip(late["chunk"].to_pylist(), late["line"].to_pylist(), strict=True):
        result.setdefault(chunk, []).append(line)
    return {chunk: sorted(lines) for chunk, lines in sorted(result.items())}
