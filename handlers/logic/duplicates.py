"""Duplicate transaction ids within one chunk, and the occurrences that other chunks compare with.

Keys (``idkeys``) come in batches, in line order. Within a batch, the first occurrence of a key
keeps its fate; against earlier batches, any occurrence of a key seen before is a duplicate. The
keys seen so far are kept as a few sorted runs of (high, low) int64 pairs, merged by size (a log
structure: O(log n) runs), so memory is 16 bytes per distinct id and a lookup is a binary search.
Every occurrence is also kept with its line, for the job-wide duplicate step (``dedupe``).
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.empty(0, dtype=np.int64)


class _Run:
    __slots__ = ("high", "low")

    def __init__(self, high: np.ndarray, low: np.ndarray) -> None:
        self.high, self.low = high, low  # sorted by (high, low), no repeated pair

    def __len__(self) -> int:
        return len(self.high)

    def contains(self, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        left = np.searchsorted(self.high, high, side="left")
        right = np.searchsorted(self.high, high, side="right")
        found = np.zeros(len(high), dtype=bool)
        single = (right - left) == 1
        found[single] = self.low[left[single]] == low[single]
        for k in np.flatnonzero((right - left) > 1).tolist():  # high halves shared: rare
            found[k] = bool(np.any(self.low[left[k] : right[k]] == low[k]))
        return found


def _sorted_unique(high: np.ndarray, low: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order by (high, low, position) and the mask of entries repeating the previous pair."""
    order = np.lexsort((np.arange(len(high)), low, high))
    sorted_high, sorted_low = high[order], low[order]
    repeated = np.zeros(len(high), dtype=bool)
    repeated[1:] = (sorted_high[1:] == sorted_high[:-1]) & (sorted_low[1:] == sorted_low[:-1])
    return order, repeated, np.stack((sorted_high, sorted_low))


class DuplicateTracker:
    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._occurrences: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def check(self, high: np.ndarray, low: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """Which of these occurrences (in line order) repeat an earlier one. Records them all."""
        if not len(high):
            return np.zeros(0, dtype=bool)
        order, repeated, pairs = _sorted_unique(high, low)
        seen = np.zeros(len(high), dtype=bool)
        for run in self._runs:
            seen |= run.contains(high, low)
        duplicate = seen.copy()
        duplicate[order[repeated]] = True
        keep = ~repeated & ~seen[order]  # keys new to this chunk, once each
        if keep.any():
            self._add(_Run(pairs[0][keep], pairs[1][keep]))
        self._occurrences.append((high, low, np.asarray(lines, dtype=np.int64)))
        return duplicate

    def _add(self, run: _Run) -> None:
        runs = self._runs
        runs.append(run)
        while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]):
            last, previous = runs.pop(), runs.pop()
            high = np.concatenate((previous.high, last.high))
            low = np.concatenate((previous.low, last.low))
            order = np.lexsort((low, high))
            runs.append(_Run(high[order], low[order]))  # disjoint: each key is added once

    def occurrences(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(high, low, line) of every occurrence checked, in line order."""
        if not self._occurrences:
            return _EMPTY, _EMPTY, _EMPTY
        return tuple(np.concatenate(parts) for parts in zip(*self._occurrences, strict=True))  # type: ignore[return-value]
