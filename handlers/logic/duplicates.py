"""Duplicate detection of transaction_ids with compact state: 8 bytes per distinct id.

Each id is reduced to a 64-bit key (Python's SipHash ``hash()``; salted per process, which is
fine: the state lives only as long as the process). Ids checked one at a time go into a small
set of keys (``recent``); when that holds ``memory_entries`` keys, or when a whole batch of ids
is checked at once (the vectorized CSV path), keys are frozen into sorted int64 arrays (runs).
Runs are merged so that there are O(log n) of them; membership is a binary search
(``bisect`` for one id, ``pyarrow.compute.search_sorted`` for a batch).

Memory is 8 bytes per distinct id plus the small set, instead of a Python string per id. Two
different ids share a key with probability about n**2 / 2**65 (about 1e-7 for 2 million ids);
such a pair would be reported as DUPLICATE_ID. That is the one inexact corner, documented in the
data contract.
"""

from __future__ import annotations

from bisect import bisect_left

import pyarrow as pa
import pyarrow.compute as pc


class _Run:
    __slots__ = ("array", "view")

    def __init__(self, array: pa.Array) -> None:
        # A sorted, null-free int64 array with offset 0 (results of sort/take/concat are).
        self.array = array
        self.view = memoryview(array.buffers()[1]).cast("q")[array.offset : array.offset + len(array)]

    def __len__(self) -> int:
        return len(self.array)

    def contains(self, key: int) -> bool:
        view = self.view
        position = bisect_left(view, key)
        return position < len(view) and view[position] == key


def _sorted_unique(keys: pa.Array) -> pa.Array:
    unique = pc.unique(keys)
    return pc.take(unique, pc.array_sort_indices(unique))


class DuplicateTracker:
    def __init__(self, *, memory_entries: int = 200_000, spill_dir: str | None = None) -> None:
        self.memory_entries = max(1, memory_entries)
        self.recent: set[int] = set()
        self.spilled = False  # True once keys have been frozen into compact runs
        self._runs: list[_Run] = []
        self._spill_dir = spill_dir  # kept for the signature; runs are compact and stay in memory

    # ------------------------------------------------------------------ one id at a time
    def seen_before(self, transaction_id: str) -> bool:
        """True if the id was added earlier; otherwise records it and returns False."""
        key = hash(transaction_id)
        if key in self.recent:
            return True
        for run in self._runs:
            if run.contains(key):
                return True
        self.recent.add(key)
        if len(self.recent) >= self.memory_entries:
            self.spill()
        return False

    def spill(self) -> None:
        """Freeze the recent keys into a sorted run."""
        if self.recent:
            self._add_run(_sorted_unique(pa.array(list(self.recent), pa.int64())))
            self.recent.clear()

    # ------------------------------------------------------------------ a batch of ids
    def seen_before_batch(self, transaction_ids: list[str]) -> list[int]:
        """Positions in ``transaction_ids`` whose id appeared earlier (in an earlier call or at a
        lower position). Records them all. Same answers as calling seen_before in order."""
        if not transaction_ids:
            return []
        keys = list(map(hash, transaction_ids))
        distinct = set(keys)
        hits = distinct & self.recent if self.recent else set()
        array = pa.array(keys, pa.int64())
        if self._runs:
            needles = _sorted_unique(array)
            for run in self._runs:
                positions = pc.search_sorted(run.array, needles)
                inside = pc.less(positions, len(run))
                candidates = needles.filter(inside)
                found = candidates.filter(pc.equal(pc.take(run.array, positions.filter(inside)), candidates))
                if len(found):
                    hits.update(found.to_pylist())
        duplicates: list[int] = []
        if hits or len(distinct) != len(keys):
            seen = set(hits)
            for position, key in enumerate(keys):
                if key in seen:
                    duplicates.append(position)
                else:
                    seen.add(key)
        self._add_run(_sorted_unique(array))
        return duplicates

    # ------------------------------------------------------------------ runs
    def _add_run(self, array: pa.Array) -> None:
        runs = self._runs
        runs.append(_Run(array))
        self.spilled = True
        while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]):
            last, previous = runs.pop(), runs.pop()
            merged = pa.concat_arrays([previous.array, last.array])
            runs.append(_Run(pc.take(merged, pc.array_sort_indices(merged))))

    @property
    def keys_held(self) -> int:
        return len(self.recent) + sum(len(run) for run in self._runs)

    def close(self) -> None:
        self.recent.clear()
        self._runs.clear()

    def __enter__(self) -> DuplicateTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
