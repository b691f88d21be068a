"""128-bit keys of transaction ids, the same in every process of a job, computed a block at a time.

Duplicate detection compares keys, not ids: 16 bytes per id whatever its length, and chunks
validated on different machines compare theirs through files. A key is four independent
32-bit MULTILINEAR hashes (Lemire and Kaser, "Strongly universal string hashing is fast",
2014): the id's bytes as 16 little-endian 32-bit words (ids are at most 64 bytes of
``[A-Za-z0-9._:-]``, zero-padded) plus its length, h = (k0 + sum(k_i * m_i)) mod 2**64, keeping
the top 32 bits. The multipliers come from the job's random seed (in its plan), so nobody can
choose ids that collide: two different ids share a key with probability 2**-128, n**2 / 2**129
for n ids (about 1.5e-21 for a billion).

The vector form is a uint64 matrix product over a block's ids (numpy); the scalar form is the
same arithmetic on Python ints, for tests and single ids.
"""

from __future__ import annotations

import hashlib
import secrets
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ID_BYTES = 64
_WORDS = ID_BYTES // 4
_INSTANCES = 4
_MASK64 = (1 << 64) - 1
_SHIFT = np.uint64(32)


def new_seed() -> str:
    return secrets.token_hex(16)


class IdKeys:
    """The key function of one job (one seed)."""

    def __init__(self, seed: str) -> None:
        material = hashlib.shake_256(f"transaction-id-keys:{seed}".encode()).digest(_INSTANCES * (_WORDS + 2) * 8)
        keys = np.frombuffer(material, dtype="<u8").reshape(_INSTANCES, _WORDS + 2)
        self._offset = keys[:, 0].copy()  # k0 per instance
        self._words = keys[:, 1 : _WORDS + 1].T.copy()  # (16, 4): multiplier of word i in instance j
        self._length = keys[:, _WORDS + 1].copy()  # multiplier of the id's length
        self._scalar = [list(map(int, row)) for row in keys]

    def of_array(self, ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(high, low) int64 halves of each id's key; ids must be ASCII of at most 64 bytes."""
        count = len(ids)
        if count == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty.copy()
        lengths = pc.binary_length(ids).to_numpy(zero_copy_only=False).astype(np.uint64)
        longest = int(lengths.max())
        if longest > ID_BYTES:
            raise ValueError(f"transaction ids longer than {ID_BYTES} bytes have no key")
        # Zero words add nothing to the sums, so padding to the block's longest id (whole words)
        # gives the same keys as padding to 64 bytes, with fewer products.
        words = max(1, -(-longest // 4))
        padded = pc.utf8_rpad(ids, width=4 * words, padding="\0")
        offsets, data = padded.buffers()[1], padded.buffers()[2]
        start = int(np.frombuffer(offsets, dtype=np.int32, count=1, offset=padded.offset * 4)[0])
        matrix = np.frombuffer(data, dtype="<u4", count=count * words, offset=start).reshape(count, words)
        sums = matrix.astype(np.uint64) @ self._words[:words]
        sums += self._offset
        sums += lengths[:, None] * self._length
        top = sums >> _SHIFT
        high = (top[:, 0] << _SHIFT) | top[:, 1]
        low = (top[:, 2] << _SHIFT) | top[:, 3]
        return high.view(np.int64), low.view(np.int64)

    def of(self, transaction_id: str) -> tuple[int, int]:
        """The key of one id, as the signed 64-bit halves ``of_array`` gives."""
        data = transaction_id.encode("ascii")
        if len(data) > ID_BYTES:
            raise ValueError(f"transaction ids longer than {ID_BYTES} bytes have no key")
        words = struct.unpack(f"<{_WORDS}I", data.ljust(ID_BYTES, b"\0"))
        top = []
        for row in self._scalar:
            products = sum(word * key for word, key in zip(words, row[1 : _WORDS + 1], strict=True))
            total = row[0] + row[_WORDS + 1] * len(data) + products
            top.append((total & _MASK64) >> 32)
        return _signed((top[0] << 32) | top[1]), _signed((top[2] << 32) | top[3])


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def partition_of(high: np.ndarray, partitions: int) -> np.ndarray:
    """The duplicate-step partition of each key (its high half, unsigned, modulo the count)."""
    return (high.view(np.uint64) % np.uint64(partitions)).astype(np.int64)
