"""Duplicate transaction ids within one chunk, and the occurrences that other chunks compare with.

Keys (``idkeys``) come in batches, in line order. Within a batch, the first occurrence of a key
keeps its fate; against earlier batches, any occurrence of a key seen before is a duplicate. The
keys seen so far are kept as a few runs of (high, low) int64 pairs sorted by their high half,
merged by size (a log structure: O(log n) runs), so memory is 16 bytes per distinct id and a
lookup is a binary search. Two sorted runs are merged by a stable sort of their concatenation,
which numpy does as a timsort: a linear merge, not a new sort. A batch is looked up in sorted
order, so each binary search starts where the previous one ended. Every occurrence is also kept
with its line, for the job-wide duplicate step (``dedupe``).
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.empty(0, dtype=np.int64)


class _Run:
    __slots__ = ("high", "low")

    def __init__(self, high: np.ndarray, low: np.ndarray) -> None:
        self.high, self.low = high, low  # sorted by high, no repeated (high, low) pair

    def __len__(self) -> int:
        return len(self.high)

    def contains(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """Which (high, low) pairs are in the run; ``high`` sorted."""
        left = np.searchsorted(self.high, high, side="left")
        at = np.minimum(left, len(self.high) - 1)
        found = (self.high[at] == high) & (self.low[at] == low)
        # Distinct keys sharing a high half (probability 2**-64 a pair) sit next to each other.
        nxt = np.minimum(left + 1, len(self.high) - 1)
        for k in np.flatnonzero(~found & (self.high[at] == high) & (self.high[nxt] == high)).tolist():
            right = np.searchsorted(self.high, high[k], side="right")
            found[k] = bool(np.any(self.low[left[k] : right] == low[k]))
        return found


class DuplicateTracker:
    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._occurrences: tuple[list[np.ndarray], ...] = ([], [], [])  # high, low, line: a batch each

    def check(self, high: np.ndarray, low: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """Which of these occurrences (in line order) repeat an earlier one. Records them all."""
        count = len(high)
        if not count:
            return np.zeros(0, dtype=bool)
        # By (high, low, position): a pair's first occurrence in the batch comes first.
        order = np.lexsort((np.arange(count), low, high))
        sorted_high, sorted_low = high[order], low[order]
        repeated = np.zeros(count, dtype=bool)
        repeated[1:] = (sorted_high[1:] == sorted_high[:-1]) & (sorted_low[1:] == sorted_low[:-1])
        seen = np.zeros(count, dtype=bool)
        for run in self._runs:
            seen |= run.contains(sorted_high, sorted_low)
        keep = ~repeated & ~seen  # keys new to this chunk, once each
        if keep.any():
            self._add(_Run(sorted_high[keep], sorted_low[keep]))
        duplicate = np.empty(count, dtype=bool)
        duplicate[order] = seen | repeated
        for column, values in zip(self._occurrences, (high, low, np.asarray(lines, dtype=np.int64)), strict=True):
            column.append(values)
        return duplicate

    def _add(self, run: _Run) -> None:
        runs = self._runs
        runs.append(run)
        while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]):
            last, previous = runs.pop(), runs.pop()
            high = np.concatenate((previous.high, last.high))
            order = np.argsort(high, kind="stable")  # two sorted runs: timsort merges them
            runs.append(_Run(high[order], np.concatenate((previous.low, last.low))[order]))

    def release(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The occurrences, the tracker emptied: each column's batches are freed once joined."""
        self._runs = []
        joined = []
        for column in self._occurrences:
            joined.append(np.concatenate(column) if column else _EMPTY)
            column.clear()
        return joined[0], joined[1], joined[2]
