"""Turning a byte stream (S3 body or local file) into decoded text lines, incrementally."""

from __future__ import annotations

import hashlib
import io
from typing import Protocol

from handlers.logic import contract as c

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


def open_text(raw: io.RawIOBase, *, file_start: bool = True) -> io.TextIOWrapper:
    """UTF-8 text, line endings untouched (csv needs that), and undecodable bytes kept as lone
    surrogates so the row that holds them can be rejected as MALFORMED_ROW. Only the file's first
    bytes may be a BOM: it is stripped when ``raw`` starts there, and is data anywhere else."""
    buffered = io.BufferedReader(raw, buffer_size=READ_BUFFER_BYTES)
    encoding = "utf-8-sig" if file_start else "utf-8"
    return io.TextIOWrapper(buffered, encoding=encoding, errors="surrogateescape", newline="")


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in the source (an undecodable byte, decoded as a lone surrogate, is one)."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate that stands for no byte (text not read from bytes)
        return len(text.encode("utf-8", "surrogatepass"))


class Oversized:
    """A record longer than the contract's MAX_RECORD_BYTES, read past as it arrives and never held
    whole: its first characters, its size, its line ends (for the line numbers after it), whether
    it holds undecodable bytes and anything but JSON whitespace."""

    __slots__ = ("head", "size", "newlines", "undecodable", "content")

    def __init__(self) -> None:
        self.head = ""
        self.size = 0
        self.newlines = 0
        self.undecodable = False
        self.content = False

    def add(self, text: str) -> None:
        if len(self.head) < c.RECORD_HEAD_CHARACTERS:
            self.head += text[: c.RECORD_HEAD_CHARACTERS - len(self.head)]
        self.size += utf8_size(text)
        self.newlines += text.count("\n")
        self.undecodable = self.undecodable or (not text.isascii() and c.UNDECODABLE.search(text) is not None)
        self.content = self.content or bool(text.strip(" \t\r\n"))

    @property
    def detail(self) -> str:
        return f"record is longer than {c.MAX_RECORD_BYTES:,} bytes ({self.size:,} bytes)"
