"""Duplicate detection of transaction_ids with compact state: 16 bytes per distinct id.

Each id is reduced to a 128-bit key made of two 64-bit halves: ``hash(id)`` and ``hash("\\0" + id)``
(Python's keyed SipHash of two different strings; the key is random per process, which is fine:
the state lives only as long as the process). Ids checked one at a time go into a small set of
keys (``recent``); when that holds ``memory_entries`` keys, or when a whole batch of ids is checked
at once (the vectorized CSV path), keys are frozen into runs: an int64 array of high halves sorted
ascending and the int64 array of the matching low halves. Runs are merged so that there are
O(log n) of them. Membership is a binary search on the high half (``bisect`` for one id,
``pyarrow.compute.search_sorted`` for a batch) and a comparison of the low half over the (almost
always single) entry with that high half.

Memory is 16 bytes per distinct id plus the small set, instead of a Python string per id. Two
different ids share a key with probability about n**2 / 2**129 (about 6e-27 for 2 million ids);
such a pair would be reported as DUPLICATE_ID. That is the one inexact corner, documented in the
data contract.
"""

from __future__ import annotations

from bisect import bisect_left

import pyarrow as pa
import pyarrow.compute as pc

_NUL = "\0"
_LOW_MASK = (1 << 64) - 1


def key_of(transaction_id: str) -> int:
    """The 128-bit key as one Python int (see _join)."""
    return _join(hash(transaction_id), hash(_NUL + transaction_id))


class _Run:
    __slots__ = ("high", "low", "high_view", "low_view")

    def __init__(self, high: pa.Array, low: pa.Array) -> None:
        # high: int64 sorted ascending; low: the int64 low halves in the same order. Both
        # null-free with offset 0 (results of sort/take/concat/filter are).
        self.high, self.low = high, low
        self.high_view = memoryview(high.buffers()[1]).cast("q")[high.offset : high.offset + len(high)]
        self.low_view = memoryview(low.buffers()[1]).cast("q")[low.offset : low.offset + len(low)]

    def __len__(self) -> int:
        return len(self.high)

    def contains(self, high: int, low: int) -> bool:
        view = self.high_view
        position = bisect_left(view, high)
        while position < len(view) and view[position] == high:
            if self.low_view[position] == low:
                return True
            position += 1
        return False


def _sorted_run(high: pa.Array, low: pa.Array) -> _Run:
    """Sort by the high half and drop repeated (high, low) pairs that ended up adjacent."""
    order = pc.array_sort_indices(high)
    high, low = pc.take(high, order), pc.take(low, order)
    if len(high) > 1:
        same = pc.and_(
            pc.equal(high.slice(1), high.slice(0, len(high) - 1)),
            pc.equal(low.slice(1), low.slice(0, len(low) - 1)),
        )
        if pc.any(same).as_py():
            keep = pa.concat_arrays([pa.array([True]), pc.invert(same)])
            high, low = high.filter(keep), low.filter(keep)
    return _Run(high, low)


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
        key = key_of(transaction_id)
        if key in self.recent:
            return True
        if self._runs:
            high, low = _split(key)
            for run in self._runs:
                if run.contains(high, low):
                    return True
        self.recent.add(key)
        if len(self.recent) >= self.memory_entries:
            self.spill()
        return False

    def spill(self) -> None:
        """Freeze the recent keys into a sorted run."""
        if self.recent:
            keys = list(self.recent)
            self.recent.clear()
            halves = list(map(_split, keys))
            high = pa.array([h for h, _ in halves], pa.int64())
            low = pa.array([lo for _, lo in halves], pa.int64())
            self._add_run(_sorted_run(high, low))

    # ------------------------------------------------------------------ a batch of ids
    def seen_before_batch(self, transaction_ids: list[str]) -> list[int]:
        """Positions in ``transaction_ids`` whose id appeared earlier (in an earlier call or at a
        lower position). Records them all. Same answers as calling seen_before in order."""
        if not transaction_ids:
            return []
        highs = list(map(hash, transaction_ids))
        lows = list(map(hash, map(_NUL.__add__, transaction_ids)))
        high_array, low_array = pa.array(highs, pa.int64()), pa.array(lows, pa.int64())
        hits: set[int] = set()  # keys (as in key_of) already recorded before this batch
        if self.recent:
            hits.update(key for key in map(_join, highs, lows) if key in self.recent)
        for run in self._runs:
            hits.update(_hits_in_run(run, high_array, low_array))
        duplicates: list[int] = []
        if hits or len(set(highs)) != len(highs):
            seen = set(hits)
            for position, key in enumerate(map(_join, highs, lows)):
                if key in seen:
                    duplicates.append(position)
                else:
                    seen.add(key)
        self._add_run(_sorted_run(high_array, low_array))
        return duplicates

    # ------------------------------------------------------------------ runs
    def _add_run(self, run: _Run) -> None:
        runs = self._runs
        runs.append(run)
        self.spilled = True
        while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]):
            last, previous = runs.pop(), runs.pop()
            runs.append(
                _sorted_run(pa.concat_arrays([previous.high, last.high]), pa.concat_arrays([previous.low, last.low]))
            )

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


def _join(high: int, low: int) -> int:
    """Two signed 64-bit hashes -> one 128-bit int key (low half kept unsigned)."""
    return (high << 64) | (low & _LOW_MASK)


def _split(key: int) -> tuple[int, int]:
    low = key & _LOW_MASK
    return key >> 64, low - (1 << 64) if low >> 63 else low


def _hits_in_run(run: _Run, high: pa.Array, low: pa.Array) -> set[int]:
    """Keys of the batch (high, low) that the run holds."""
    left = pc.search_sorted(run.high, high, side="left")
    right = pc.search_sorted(run.high, high, side="right")
    width = pc.subtract(right, left)
    found: set[int] = set()
    single = pc.equal(width, 1)
    if pc.any(single).as_py():
        candidates_low = low.filter(single)
        stored_low = pc.take(run.low, left.filter(single))
        match = pc.equal(candidates_low, stored_low)
        if pc.any(match).as_py():
            found.update(
                map(
                    _join,
                    high.filter(single).filter(match).to_pylist(),
                    candidates_low.filter(match).to_pylist(),
                )
            )
    several = pc.greater(width, 1)
    if pc.any(several).as_py():  # different keys sharing a high half: rare, checked one by one
        for h, lo, start, stop in zip(
            high.filter(several).to_pylist(),
            low.filter(several).to_pylist(),
            left.filter(several).to_pylist(),
            right.filter(several).to_pylist(),
            strict=True,
        ):
            if lo in run.low_view[start:stop].tolist():
                found.add(_join(h, lo))
    return found
