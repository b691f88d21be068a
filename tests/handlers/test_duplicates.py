"""Duplicate tracker: 128-bit keys, exact answers on both paths, even when high halves collide."""

import builtins
import random

import pytest

from handlers.logic import duplicates
from handlers.logic.duplicates import DuplicateTracker


def _script(seed: int) -> list[tuple[str, list[str]]]:
    """A mix of one-at-a-time checks and batches over ids that repeat."""
    rng = random.Random(seed)  # noqa: S311 - test data
    steps = []
    for _ in range(60):
        ids = [f"id-{rng.randrange(400)}" for _ in range(rng.randrange(1, 40))]
        steps.append((rng.choice(["one", "batch"]), ids))
    return steps


def _check(tracker: DuplicateTracker, steps) -> None:
    seen: set[str] = set()
    for mode, ids in steps:
        expected = []
        for position, transaction_id in enumerate(ids):
            if transaction_id in seen:
                expected.append(position)
            seen.add(transaction_id)
        if mode == "one":
            got = [p for p, transaction_id in enumerate(ids) if tracker.seen_before(transaction_id)]
        else:
            got = tracker.seen_before_batch(ids)
        assert got == expected, (mode, ids)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_answers_match_a_plain_set(seed):
    with DuplicateTracker(memory_entries=7) as tracker:
        _check(tracker, _script(seed))
        assert tracker.spilled


@pytest.mark.parametrize("seed", [4, 5])
def test_ids_sharing_the_high_half_are_still_told_apart(monkeypatch, seed):
    # Every id gets the same high 64 bits: only the low half separates them, on both paths.
    real = builtins.hash
    monkeypatch.setattr(duplicates, "hash", lambda s: real(s) if s.startswith("\0") else 42, raising=False)
    with DuplicateTracker(memory_entries=5) as tracker:
        _check(tracker, _script(seed))


def test_key_is_128_bits_from_two_independent_hashes():
    key = duplicates.key_of("T00001")
    assert key >> 64 == hash("T00001")
    assert key & ((1 << 64) - 1) == hash("\0T00001") & ((1 << 64) - 1)
    assert duplicates._split(key) == (hash("T00001"), hash("\0T00001"))
