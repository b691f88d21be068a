"""Turning a byte stream (S3 body or local file) into decoded text lines, incrementally."""

from __future__ import annotations

import hashlib
import io
from typing import Protocol

READ_BUFFER_BYTES = 1 << 20


class ReadsBytes(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class CountingReader(io.RawIOBase):
    """Wraps anything with ``read(n)``; counts bytes and optionally hashes them on the way."""

    def __init__(self, source: ReadsBytes, *, hash_sha256: bool = False) -> None:
        self._source = source
        self.bytes_read = 0
        self._sha256 = hashlib.sha256() if hash_sha256 else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.bytes_read += size
        if self._sha256 is not None:
            self._sha256.update(data)
        return size

    def hexdigest(self) -> str:
        if self._sha256 is None:
            raise ValueError("hashing was not requested")
        return self._sha256.hexdigest()

    def drain(self) -> None:
        """Read to the end, so counts and digest cover the whole source."""
        buffer = bytearray(READ_BUFFER_BYTES)
        while self.readinto(buffer):
            pass


def open_text(raw: io.RawIOBase) -> io.TextIOWrapper:
    """UTF-8 text, BOM stripped, line endings untouched (csv needs that), and undecodable bytes
    kept as lone surrogates so the row that holds them can be rejected as MALFORMED_ROW."""
    buffered = io.BufferedReader(raw, buffer_size=READ_BUFFER_BYTES)
    return io.TextIOWrapper(buffered, encoding="utf-8-sig", errors="surrogateescape", newline="")
