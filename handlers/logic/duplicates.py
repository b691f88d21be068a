"""Exact duplicate detection of transaction_ids with bounded memory.

Up to ``memory_entries`` ids are held in a set. Beyond that the set is spilled into a SQLite
table on local disk (/tmp in Lambda) and cleared; later ids that miss the set are looked up in
SQLite, behind a fixed-size Bloom filter so that most lookups never touch the disk. Memory is
bounded by the set cap plus the filter size, whatever the file size. Exact: the filter only
decides whether to ask SQLite, which holds the full ids.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile

_BLOOM_BITS = 1 << 27  # 16 MiB
_BLOOM_MASK = _BLOOM_BITS - 1


class DuplicateTracker:
    def __init__(self, *, memory_entries: int = 1_000_000, spill_dir: str | None = None) -> None:
        self.memory_entries = max(1, memory_entries)
        self.recent: set[str] = set()
        self.spilled = False
        self._spill_dir = spill_dir
        self._db: sqlite3.Connection | None = None
        self._db_path: str | None = None
        self._bloom: bytearray | None = None

    def seen_before(self, transaction_id: str) -> bool:
        """True if the id was added earlier; otherwise records it and returns False."""
        if transaction_id in self.recent:
            return True
        if self.spilled and self._in_spill(transaction_id):
            return True
        self.recent.add(transaction_id)
        if len(self.recent) >= self.memory_entries:
            self.spill()
        return False

    def spill(self) -> None:
        if self._db is None:
            fd, self._db_path = tempfile.mkstemp(prefix="dedup-", suffix=".sqlite", dir=self._spill_dir)
            os.close(fd)
            self._db = sqlite3.connect(self._db_path)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY) WITHOUT ROWID")
            self._bloom = bytearray(_BLOOM_BITS // 8)
        bloom = self._bloom
        for transaction_id in self.recent:
            for bit in self._bloom_bits(transaction_id):
                bloom[bit >> 3] |= 1 << (bit & 7)
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((i,) for i in sorted(self.recent)))
        self._db.commit()
        self.recent.clear()
        self.spilled = True

    def _in_spill(self, transaction_id: str) -> bool:
        bloom = self._bloom
        for bit in self._bloom_bits(transaction_id):
            if not bloom[bit >> 3] & (1 << (bit & 7)):
                return False
        row = self._db.execute("SELECT 1 FROM seen WHERE id = ?", (transaction_id,)).fetchone()
        return row is not None

    @staticmethod
    def _bloom_bits(transaction_id: str) -> tuple[int, int, int]:
        # hash() is salted per process, which is fine: the filter lives only as long as the process.
        h = hash(transaction_id) & 0xFFFFFFFFFFFFFFFF
        h2 = hash((transaction_id, 1)) & 0xFFFFFFFFFFFFFFFF
        return h & _BLOOM_MASK, (h >> 32) & _BLOOM_MASK, h2 & _BLOOM_MASK

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._db_path and os.path.exists(self._db_path):
            os.remove(self._db_path)
        self.recent.clear()

    def __enter__(self) -> DuplicateTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
