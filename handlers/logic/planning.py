"""The plan of a job: its source cut into byte ranges that each begin and end on a record boundary.

One pass over the bytes at memory speed (numpy), without parsing a field:

* **CSV**: a record ends at an LF outside quotes, framed exactly as ``csvrecords`` frames it (a
  quote opens a quoted section only at the start of a field; ``""`` inside quotes is a quote; text
  after a closing quote stays in the field). Inside or outside is the parity of the quotes that
  change the framing state. Every quote does, except a *literal* one: a quote in an unquoted
  field or after a closing quote (invalid CSV). Those are found from the byte before them and left
  out of the count, so a broken row is cut exactly where the per-row reader cuts it.
* **JSON Lines**: a record ends at every LF.

Alongside, the pass hashes the source (SHA-256), counts records the way validation counts them
(blank lines are not records) and numbers physical lines, so each chunk knows the line of its
first byte. A chunk ends at the first record end at least ``chunk_bytes`` after its start; a file
of at most ``chunk_bytes`` is a plan of one chunk, through the same code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from handlers.errors import UnreadableFileError
from handlers.logic import contract as c
from handlers.logic.validation import CSV_FORMAT, read_header_record

SCAN_BLOCK_BYTES = 8 << 20
_QUOTE, _COMMA, _LF, _CR = 0x22, 0x2C, 0x0A, 0x0D
_JSON_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
# More literal quotes than this in one block: its quotes are walked one by one instead of
# re-scanning after each one, so a file full of broken quoting stays linear.
_MAX_RESCANS = 32


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # first byte, absolute offset in the source
    end: int  # one past the last byte
    first_line: int  # physical line of the first byte (the file's first line is 1)
    records: int  # records as validation counts them

    def to_item(self) -> dict:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "firstLine": self.first_line,
            "records": self.records,
        }

    @classmethod
    def from_item(cls, item: dict) -> Chunk:
        return cls(
            index=int(item["index"]),
            start=int(item["start"]),
            end=int(item["end"]),
            first_line=int(item["firstLine"]),
            records=int(item["records"]),
        )


@dataclass
class SourcePlan:
    fmt: str
    bytes: int
    sha256: str | None  # None when planned without a digest
    data_start: int  # first data byte: after the BOM and, for CSV, the header record
    header: list[str] | None  # CSV column names
    records: int
    chunks: list[Chunk] = field(default_factory=list)


class CsvFramer:
    """Record ends (LFs outside quotes) of a CSV byte stream, fed block by block."""

    def __init__(self) -> None:
        self.inside = False  # within a quoted section, after the bytes fed so far
        self._previous_byte = _LF  # the stream starts a record, like the byte after an LF
        self._previous_changed = False  # the last byte fed was a state-changing quote

    def record_ends(self, block: np.ndarray) -> np.ndarray:
        """Positions (in ``block``) of the LFs that end a record."""
        lfs = np.flatnonzero(block == _LF)
        quotes = np.flatnonzero(block == _QUOTE)
        started_inside = self.inside
        if len(quotes):
            changing = quotes[~self._literal_quotes(block, quotes)]
            # An LF is outside quotes when the state-changing quotes before it leave it so.
            parity = (np.searchsorted(changing, lfs) + (1 if started_inside else 0)) & 1
            ends = lfs[parity == 0]
            self.inside = (len(changing) + (1 if started_inside else 0)) & 1 == 1
            self._previous_changed = bool(len(changing)) and int(changing[-1]) == len(block) - 1
        else:
            ends = lfs[:0] if started_inside else lfs
            self._previous_changed = False
        if len(block):
            self._previous_byte = int(block[-1])
        return ends

    def _literal_quotes(self, block: np.ndarray, quotes: np.ndarray) -> np.ndarray:
        before = np.empty(len(quotes), dtype=np.uint8)
        before[1:] = block[quotes[1:] - 1]
        before[0] = block[quotes[0] - 1] if quotes[0] > 0 else self._previous_byte
        field_start = (before == _COMMA) | (before == _LF)
        # Quote k directly follows quote k-1 (quote 0: the last byte of the previous block).
        adjacent = np.empty(len(quotes), dtype=bool)
        adjacent[1:] = quotes[1:] == quotes[:-1] + 1
        adjacent[0] = bool(quotes[0] == 0 and self._previous_changed)
        after_quote = (before == _QUOTE) & adjacent
        literal = np.zeros(len(quotes), dtype=bool)
        start, parity = 0, 1 if self.inside else 0
        for _ in range(_MAX_RESCANS):
            # Suppose every quote from `start` on changes the state. The first one that then stands
            # outside quotes, neither at a field start nor right after a state-changing quote
            # (``""`` escapes, ``"x"`` closes), is literal; go on from the quote after it.
            count = len(quotes) - start
            outside = ((np.arange(count) + parity) & 1) == 0
            allowed = field_start[start:] | after_quote[start:]
            if start and literal[start - 1]:
                allowed[0] = field_start[start]  # after a literal quote: no escape
            bad = np.flatnonzero(outside & ~allowed)
            if not len(bad):
                return literal
            position = start + int(bad[0])
            literal[position] = True
            parity = (parity + int(bad[0])) & 1
            start = position + 1
            if start == len(quotes):
                return literal
        # Many literal quotes: the same decisions one quote at a time from here.
        changed_before = not literal[start - 1]
        for k in range(start, len(quotes)):
            changes = parity == 1 or bool(field_start[k]) or (bool(after_quote[k]) and changed_before)
            if changes:
                parity ^= 1
            else:
                literal[k] = True
            changed_before = changes
        return literal


class Planner:
    """Feeds a source block by block; ``finish`` returns its plan."""

    def __init__(self, *, fmt: str, chunk_bytes: int, digest: bool = True) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
        self.fmt = fmt
        self.csv = fmt == CSV_FORMAT
        self.chunk_bytes = chunk_bytes
        self._framer = CsvFramer() if self.csv else None
        self._sha256 = hashlib.sha256() if digest else None  # a local check has no use for it
        self._lead: bytes | None = b""
        self._total = 0
        self._header_parts: list[bytes] = []
        self._header_size = 0
        self.header: list[str] | None = None
        self.data_start: int | None = None
        self._previous_end = -1  # the LF that ended the last record (absolute position)
        self._byte_before = _LF  # last byte of the previous block
        self._open_has_content = False  # JSON Lines: the record in progress holds a non-space byte
        self._lines = 0  # LFs before the current block
        self._records = 0
        self._chunks: list[Chunk] = []
        self._chunk_start = 0
        self._chunk_line = 1
        self._chunk_records = 0

    def feed(self, data: bytes) -> None:
        if self._lead is not None:  # the file's first bytes, until they show whether a BOM starts it
            self._lead += data
            if len(self._lead) < len(_BOM):
                return
            data, self._lead = self._lead, None
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        if not data:
            return
        offset = self._total
        if self._sha256 is not None:
            self._sha256.update(data)
        self._total += len(data)
        skip = len(_BOM) if offset == 0 and data.startswith(_BOM) else 0
        if skip:
            self._previous_end = skip - 1
        view = np.frombuffer(data, dtype=np.uint8)[skip:]
        base = offset + skip
        lfs = np.flatnonzero(view == _LF)
        ends = self._framer.record_ends(view) if self._framer else lfs
        if self.data_start is None:
            ends = self._find_data_start(data, offset, skip, ends + base, lfs)
            if self.data_start is None:
                self._after_block(view, lfs)
                return
            ends = ends - base
        if len(ends):
            self._add_records(view, base, ends, lfs)
        elif not self.csv:
            self._open_has_content = self._open_has_content or _has_content(view)
        self._after_block(view, lfs)

    def _after_block(self, view: np.ndarray, lfs: np.ndarray) -> None:
        if len(view):
            self._byte_before = int(view[-1])
        self._lines += len(lfs)

    def _find_data_start(self, data: bytes, offset: int, skip: int, ends: np.ndarray, lfs: np.ndarray) -> np.ndarray:
        """Sets data_start (after the CSV header; right after the BOM for JSON Lines)."""
        if not self.csv:
            self._start_data(offset + skip, lines_before=self._lines)
            return ends
        if not len(ends):
            self._keep_header(data[skip:])
            return ends
        header_end = int(ends[0]) + 1
        self._keep_header(data[skip : header_end - offset])
        self.header = read_header_record(b"".join(self._header_parts))
        self._header_parts = []
        self._previous_end = header_end - 1
        base = offset + skip
        self._start_data(header_end, lines_before=self._lines + int(np.searchsorted(lfs + base, header_end)))
        return ends[1:]

    def _keep_header(self, data: bytes) -> None:
        # The header is read whole to check it; beyond the record limit the file is refused.
        self._header_size += len(data)
        if self._header_size > c.MAX_RECORD_BYTES:
            raise UnreadableFileError(f"the header row is longer than {c.MAX_RECORD_BYTES:,} bytes")
        self._header_parts.append(data)

    def _start_data(self, position: int, *, lines_before: int) -> None:
        self.data_start = self._chunk_start = position
        self._chunk_line = 1 + lines_before

    def _add_records(self, view: np.ndarray, base: int, ends: np.ndarray, lfs: np.ndarray) -> None:
        """Count the records that end in this block and close the chunks that end with them."""
        starts = np.empty(len(ends), dtype=np.int64)
        starts[0] = self._previous_end + 1 - base  # may be negative: began in an earlier block
        starts[1:] = ends[:-1] + 1
        blank = self._blank_csv(view, starts, ends) if self.csv else self._blank_jsonl(view, starts, ends)
        counted = np.cumsum(~blank)
        position = 0
        while position < len(ends):
            # The chunk ends at the first record end at least chunk_bytes after its start.
            target = self._chunk_start + self.chunk_bytes - 1 - base
            at = max(position, int(np.searchsorted(ends, target, side="left")))
            if at >= len(ends):
                break
            self._chunk_records += int(counted[at] - (counted[position - 1] if position else 0))
            end = int(ends[at]) + 1
            self._close_chunk(base + end, next_line=1 + self._lines + int(np.searchsorted(lfs, end)))
            position = at + 1
        if position < len(ends):
            self._chunk_records += int(counted[-1] - (counted[position - 1] if position else 0))
        self._records += int(counted[-1])
        self._previous_end = base + int(ends[-1])
        if not self.csv:
            self._open_has_content = _has_content(view[int(ends[-1]) + 1 :])

    def _blank_csv(self, view: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """A record that is only "\n" or "\r\n" is blank (not a record)."""
        length = ends - starts
        before = np.empty(len(ends), dtype=np.uint8)
        inner = ends > 0
        before[inner] = view[ends[inner] - 1]
        before[~inner] = self._byte_before
        return (length == 0) | ((length == 1) & (before == _CR))

    def _blank_jsonl(self, view: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """A line of JSON whitespace only is blank. Most lines start with "{": only lines that start
        with whitespace are looked at whole."""
        blank = np.zeros(len(ends), dtype=bool)
        begins = np.maximum(starts, 0)
        first = np.where(begins < ends, view[np.minimum(begins, len(view) - 1)], _LF)
        maybe = np.flatnonzero(np.isin(first, _WHITESPACE_CODES))
        for k in maybe.tolist():
            content = _has_content(view[begins[k] : ends[k]])
            if k == 0 and starts[0] < 0:
                content = content or self._open_has_content
            blank[k] = not content
        if len(ends) and starts[0] < 0 and not (len(maybe) and maybe[0] == 0):
            # The first line began in an earlier block: blank only if nothing in it was content.
            blank[0] = not (self._open_has_content or _has_content(view[: ends[0]]))
        return blank

    @property
    def chunks(self) -> list[Chunk]:
        """The chunks closed so far, in order (the last one only by ``finish``)."""
        return self._chunks

    def _close_chunk(self, end: int, *, next_line: int) -> None:
        self._chunks.append(Chunk(len(self._chunks), self._chunk_start, end, self._chunk_line, self._chunk_records))
        self._chunk_start, self._chunk_line, self._chunk_records = end, next_line, 0

    def finish(self) -> SourcePlan:
        if self._lead is not None:
            data, self._lead = self._lead, None
            self._feed(data)
        if self.data_start is None:  # a CSV header that never ended, or no bytes at all
            if self.csv:
                self.header = read_header_record(b"".join(self._header_parts) if self._header_size else None)
            self._start_data(self._total, lines_before=self._lines)
        # A last record without its LF.
        tail_start = max(self._previous_end + 1, self.data_start or 0)
        if tail_start < self._total and (self.csv or self._open_has_content):
            self._records += 1
            self._chunk_records += 1
        if self._chunk_start < self._total or not self._chunks:
            self._close_chunk(self._total, next_line=0)
        if self._records == 0:
            raise UnreadableFileError("file is empty: it holds no transaction rows")
        return SourcePlan(
            fmt=self.fmt,
            bytes=self._total,
            sha256=self._sha256.hexdigest() if self._sha256 is not None else None,
            data_start=self.data_start,
            header=self.header,
            records=self._records,
            chunks=self._chunks,
        )


_WHITESPACE_CODES = np.frombuffer(_JSON_WHITESPACE, dtype=np.uint8)


def _has_content(view: np.ndarray) -> bool:
    """Whether bytes hold anything but JSON whitespace."""
    if not len(view):
        return False
    return bool(np.any(~np.isin(view, _WHITESPACE_CODES)))


def plan_source(blocks: Iterable[bytes], *, fmt: str, chunk_bytes: int) -> SourcePlan:
    """Cut a source (CSV or JSON Lines, as blocks of bytes) into chunks of about ``chunk_bytes``.

    Raises UnreadableFileError for files validation cannot read at all (empty, a header that is
    missing, broken or too long, no rows), so such a job fails before any chunk runs."""
    planner = Planner(fmt=fmt, chunk_bytes=chunk_bytes)
    for data in blocks:
        planner.feed(data)
    return planner.finish()
