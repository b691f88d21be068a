"""Transaction-id keys and the duplicate tracker: the same keys on every path and in every process
of a job, and exact answers, even when keys share their high half."""

import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.logic import contract as c
from handlers.logic.dedupe import late_occurrences
from handlers.logic.duplicates import DuplicateTracker
from handlers.logic.idkeys import IdKeys, partition_of

IDS = st.text(alphabet="ABCXYZabc0129._:-", min_size=1, max_size=c.MAX_ID_LENGTH)


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(IDS, min_size=1, max_size=60), seed=st.text(min_size=1, max_size=8))
def test_vector_and_scalar_keys_agree(ids, seed):
    keys = IdKeys(seed)
    high, low = keys.of_array(pa.array(ids))
    assert [keys.of(i) for i in ids] == list(zip(high.tolist(), low.tolist(), strict=True))
    # A slice of a larger array (an Arrow offset) gives the same keys.
    padded = pa.array(["zz", *ids, "yy"]).slice(1, len(ids))
    assert np.array_equal(keys.of_array(padded)[0], high)


def test_keys_depend_on_the_job_seed_and_separate_every_id():
    ids = [f"T{i:06d}" for i in range(50_000)] + ["a", "a\0"[:1] + "b", "ab", "ba"]
    high, low = IdKeys("job-1").of_array(pa.array(ids))
    assert len(set(zip(high.tolist(), low.tolist(), strict=True))) == len(set(ids))
    other = IdKeys("job-2").of_array(pa.array(ids))[0]
    assert not np.array_equal(other, high)
    counts = np.bincount(partition_of(high, 8), minlength=8)
    assert counts.min() > len(ids) / 8 * 0.9  # keys spread evenly over partitions


def _script(seed: int) -> list[list[str]]:
    rng = random.Random(seed)  # noqa: S311 - test data
    return [[f"id-{rng.randrange(400)}" for _ in range(rng.randrange(1, 40))] for _ in range(60)]


def _check(tracker: DuplicateTracker, keys, batches) -> None:
    seen: set[str] = set()
    line = 0
    for ids in batches:
        expected = []
        for transaction_id in ids:
            expected.append(transaction_id in seen)
            seen.add(transaction_id)
        high, low = keys(ids)
        lines = np.arange(line, line + len(ids))
        line += len(ids)
        assert tracker.check(high, low, lines).tolist() == expected, ids
    assert len(tracker.release()[0]) == line


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_answers_match_a_plain_set(seed):
    keys = IdKeys("s")
    _check(DuplicateTracker(), lambda ids: keys.of_array(pa.array(ids)), _script(seed))


@pytest.mark.parametrize("seed", [4, 5])
def test_ids_sharing_the_high_half_are_still_told_apart(seed):
    # Every id gets the same high 64 bits: only the low half separates them.
    keys = IdKeys("s")

    def same_high(ids):
        _, low = keys.of_array(pa.array(ids))
        return np.full(len(ids), 42, dtype=np.int64), low

    _check(DuplicateTracker(), same_high, _script(seed))


def test_late_occurrences_are_the_later_chunks_of_a_key():
    keys = IdKeys("s")

    def shard(ids, lines):
        high, low = keys.of_array(pa.array(ids))
        return pa.table({"high": high, "low": low, "line": pa.array(lines, pa.int64())})

    shards = [
        (0, shard(["A", "B"], [2, 3])),
        (1, shard(["B", "C", "C"], [10, 11, 12])),
        (2, shard(["A", "C", "D"], [20, 21, 22])),
    ]
    assert late_occurrences(shards) == {1: [10], 2: [20, 21]}
    assert late_occurrences(shards[::-1]) == {1: [10], 2: [20, 21]}  # shards in any order
    assert late_occurrences(shards[:1]) == {}


def test_late_occurrences_of_keys_sharing_a_high_half():
    """Distinct keys with one high half, interleaved across chunks: each key keeps its own first chunk."""

    def shard(pairs):
        high, low, line = zip(*pairs, strict=True)
        return pa.table({"high": pa.array(high, pa.int64()), "low": pa.array(low, pa.int64()), "line": line})

    shards = [
        (0, shard([(7, 1, 2), (7, 2, 3)])),
        (1, shard([(7, 2, 10), (7, 3, 11), (7, 1, 12), (7, 3, 13)])),
        (2, shard([(7, 3, 20), (7, 4, 21), (7, 1, 22)])),
    ]
    assert late_occurrences(shards) == {1: [10, 12], 2: [20, 22]}
