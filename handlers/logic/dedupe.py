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


def late_occurrences(shards: list[tuple[int, pa.Table]]) -> dict[int, list[int]]:
    """Chunk -> sorted lines of its late duplicates, from (chunk, occurrences) of one partition.

    Sorting by (high, low, chunk) puts each key's occurrences together, its first chunk first:
    an occurrence is late when its chunk is after the chunk that starts its key's run."""
    shards = sorted(((chunk, table) for chunk, table in shards if table.num_rows), key=lambda shard: shard[0])
    if len(shards) < 2:
        return {}
    column = lambda name: np.concatenate([table.column(name).to_numpy() for _, table in shards])  # noqa: E731
    high, low = column("high"), column("low")
    chunks = np.concatenate([np.full(table.num_rows, chunk, dtype=np.int64) for chunk, table in shards])
    # The shards are in chunk order, so a stable sort by the high half alone orders each key's
    # occurrences by chunk; only keys sharing a high half (probability 2**-64 a pair) need the
    # full sort, and then it is done for all.
    order = np.argsort(high, kind="stable")
    sorted_high, sorted_low = high[order], low[order]
    same_high = sorted_high[1:] == sorted_high[:-1]
    if np.any(same_high & (sorted_low[1:] != sorted_low[:-1])):
        order = np.lexsort((chunks, low, high))
        sorted_high, sorted_low = high[order], low[order]
    high, low, chunks = sorted_high, sorted_low, chunks[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (high[1:] != high[:-1]) | (low[1:] != low[:-1])
    first_chunk = chunks[starts][np.cumsum(starts) - 1]
    late = np.flatnonzero(chunks > first_chunk)
    if not len(late):
        return {}
    lines = column("line")[order[late]]
    result: dict[int, list[int]] = {}
    for chunk, line in zip(chunks[late].tolist(), lines.tolist(), strict=True):
        result.setdefault(chunk, []).append(line)
    return {chunk: sorted(lines) for chunk, lines in sorted(result.items())}
