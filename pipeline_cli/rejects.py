"""A job's rejected records cut out of its source as they were sent, for the producer to fix.

The records are framed by the plan's own rules (``handlers/logic/planning.py``): a CSV record ends
at an LF outside quotes (``CsvFramer``), a JSON Lines record at every LF, a BOM is skipped before
framing, a blank line is no record. A record is found by the physical line of its first byte,
which is the ``line`` the quarantine gives it. Each block's record starts and their lines are
computed with numpy; only the records asked for are looked at in Python, and each is copied as it
streams past (a record longer than a block, or than the contract's 1 MiB, is never held).

The export is the source's preamble (its BOM if it had one and, for CSV, its header record, bytes
as they were), then each rejected record's bytes, line end included, in line order. Beside it, a
CSV of one row per exported record (``SIDE_COLUMNS``): where the record starts in the export,
where it started in the source, and why it was rejected.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

import numpy as np

from handlers.logic.planning import CsvFramer
from handlers.logic.validation import CSV_FORMAT

SIDE_COLUMNS = ("line", "source_line", "transaction_id", "reasons", "details")
REASONS_SEPARATOR = ";"
DETAILS_SEPARATOR = "; "
MISSING_KEPT = 10  # lines of rejects not found, kept to name in the refusal
_BOM = b"\xef\xbb\xbf"
_LF = 0x0A
_JSON_WHITESPACE = b" \t\r\n"  # as the plan's blank JSON line
_CSV_BLANK = (b"\n", b"\r\n")  # as the plan's blank CSV record
_LINE_END = b"\r\n"


@dataclass(frozen=True)
class Framed:
    """One block of the source and the records that start in it."""

    data: bytes
    skip: int  # a BOM at the file's start: not part of any record
    starts: np.ndarray  # positions in ``data`` where a record starts, ascending
    lines: np.ndarray  # the physical line of each start (the file's first line is 1)


def _lead_whole(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The blocks, the first one holding at least a BOM's length (or the whole source): whether a
    BOM starts the file is then seen in one piece."""
    lead = b""
    pieces = iter(blocks)
    for data in pieces:
        lead += data
        if len(lead) >= len(_BOM):
            yield lead
            yield from pieces
            return
    if lead:
        yield lead


def framed(blocks: Iterable[bytes], *, fmt: str) -> Iterator[Framed]:
    """The blocks with the start and line of every record that starts in them. The CSV header is
    the first record; a blank line is a record here (the caller tells it from its bytes); the empty
    "record" after a final LF is none."""
    framer = CsvFramer() if fmt == CSV_FORMAT else None
    lines = 0  # LFs before the current block
    start_next = True  # a record starts at the next byte: the file's first, or one after a record's end
    first = True
    for data in _lead_whole(blocks):
        skip = len(_BOM) if first and data.startswith(_BOM) else 0
        first = False
        view = np.frombuffer(data, dtype=np.uint8)[skip:]
        if not len(view):  # the BOM alone: no record starts, the next byte still starts one
            yield Framed(data=data, skip=skip, starts=np.zeros(0, dtype=np.int64), lines=np.zeros(0, dtype=np.int64))
            continue
        lfs = np.flatnonzero(view == _LF)
        ends = framer.record_ends(view) if framer is not None else lfs
        after = ends + 1
        starts = after[after < len(view)]
        if start_next:
            starts = np.concatenate((np.zeros(1, dtype=starts.dtype), starts))
        start_lines = lines + 1 + np.searchsorted(lfs, starts)  # the LFs before a start, plus one
        start_next = bool(len(ends)) and int(ends[-1]) == len(view) - 1
        lines += len(lfs)
        yield Framed(data=data, skip=skip, starts=starts + skip, lines=start_lines)


@dataclass
class ExportResult:
    source_bytes: int = 0
    sha256: str = ""
    rejects: int = 0  # rejects listed
    exported: int = 0  # records written (rejects found where their line says)
    missing: int = 0  # rejects whose line starts no record of the source
    missing_lines: list[int] = field(default_factory=list)  # the first MISSING_KEPT of them
    bytes_written: int = 0

    def miss(self, line: int) -> None:
        self.missing += 1
        if len(self.missing_lines) < MISSING_KEPT:
            self.missing_lines.append(line)


class RejectsOutOfOrder(ValueError):
    """The rejects given are not in strictly increasing line order."""


class _Wanted:
    """The rejects, pulled in line order as the source's blocks reach their lines."""

    def __init__(self, rejects: Iterable[dict], result: ExportResult) -> None:
        self._rejects = iter(rejects)
        self._result = result
        self._next: dict | None = None
        self._last_line = 0
        self._pull()

    def _pull(self) -> None:
        self._next = next(self._rejects, None)
        if self._next is None:
            return
        line = int(self._next["line"])
        if line <= self._last_line:
            raise RejectsOutOfOrder(f"the rejects are not in line order: line {line} after line {self._last_line}")
        self._last_line = line
        self._result.rejects += 1

    def select(self, lines: np.ndarray) -> tuple[np.ndarray, list[dict]]:
        """Of records starting at ``lines`` (ascending, none later to come before the last), the
        indexes of those rejected and their rejects; a reject whose line is passed without a record
        starting there is missing."""
        if not len(lines) or self._next is None or int(self._next["line"]) > int(lines[-1]):
            return np.zeros(0, dtype=np.int64), []
        due = []
        while self._next is not None and int(self._next["line"]) <= int(lines[-1]):
            due.append(self._next)
            self._pull()
        wanted = np.fromiter((reject["line"] for reject in due), dtype=np.int64, count=len(due))
        at = np.searchsorted(lines, wanted)
        hit = lines[np.minimum(at, len(lines) - 1)] == wanted
        for position in np.flatnonzero(~hit).tolist():
            self._result.miss(int(wanted[position]))
        return at[hit], [reject for reject, found in zip(due, hit.tolist(), strict=True) if found]

    def rest_missing(self) -> None:
        while self._next is not None:
            self._result.miss(int(self._next["line"]))
            self._pull()


class _Open:
    """The record being copied: its reject (None for the CSV header) and what tells a blank one."""

    __slots__ = ("reject", "size", "head", "content")

    def __init__(self, reject: dict | None) -> None:
        self.reject, self.size, self.head, self.content = reject, 0, b"", False


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV Injection"):
# the side file is opened in one, and its ids and details come from hostile input.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(text: str) -> str:
    """``text`` with a leading quote when a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Writer:
    def __init__(self, *, out: BinaryIO, side: TextIO, fmt: str, result: ExportResult) -> None:
        self._out = out
        self._side = csv.writer(side)
        self._side.writerow(SIDE_COLUMNS)
        self._csv = fmt == CSV_FORMAT
        self._result = result
        self._lines = 0  # LFs written
        self.open: _Open | None = None

    def write(self, data: bytes, start: int, end: int) -> None:
        record = self.open
        if record is None or end <= start:
            return
        self._out.write(memoryview(data)[start:end])
        self._lines += data.count(b"\n", start, end)
        self._result.bytes_written += end - start
        if record.size < 2:
            record.head += data[start : start + 2 - record.size]
        record.size += end - start
        if not record.content and not self._csv:
            record.content = bool(data[start:end].strip(_JSON_WHITESPACE))

    def begin(self, reject: dict | None) -> None:
        if reject is not None:
            details = reject.get("details") or []
            self._side.writerow(
                (
                    self._lines + 1,
                    reject["line"],
                    inert(reject.get("transaction_id") or ""),
                    REASONS_SEPARATOR.join(reject.get("reasons") or []),
                    inert(DETAILS_SEPARATOR.join(details) if isinstance(details, list) else str(details)),
                )
            )
        self.open = _Open(reject)

    def close(self) -> None:
        record, self.open = self.open, None
        if record is None or record.reject is None:
            return
        blank = record.size <= 2 and record.head in _CSV_BLANK if self._csv else not record.content
        if blank:  # a blank line is no record: the reject's line named none
            self._result.miss(int(record.reject["line"]))
        else:
            self._result.exported += 1


def _hashed(blocks: Iterable[bytes], digest, result: ExportResult) -> Iterator[bytes]:
    for data in blocks:
        digest.update(data)
        result.source_bytes += len(data)
        yield data


def export_rejects(
    *, blocks: Iterable[bytes], fmt: str, rejects: Iterable[dict], out: BinaryIO, side: TextIO
) -> ExportResult:
    """Write the records of ``rejects`` (dicts with ``line``, ``transaction_id``, ``reasons``,
    ``details``, in line order, as the quarantine holds them) out of the source read as
    ``blocks``, after the source's BOM and CSV header, to ``out``; one ``SIDE_COLUMNS`` row each
    to ``side``. The whole source is read (its SHA-256 is in the result). A reject whose line
    starts no record is counted as missing, not raised: a refusal can then name the source's
    digest first (``refusal``). Raises RejectsOutOfOrder if the rejects are not in line order."""
    result = ExportResult()
    digest = hashlib.sha256()
    wanted = _Wanted(rejects, result)
    writer = _Writer(out=out, side=side, fmt=fmt, result=result)
    header = fmt == CSV_FORMAT  # the first record is the header, copied whole
    for block in framed(_hashed(blocks, digest, result), fmt=fmt):
        data, starts, lines = block.data, block.starts, block.lines
        if block.skip:
            out.write(data[: block.skip])
            result.bytes_written += block.skip
        # The record still open from an earlier block runs to this block's first start.
        writer.write(data, block.skip, int(starts[0]) if len(starts) else len(data))
        if len(starts):
            writer.close()
        offset = 1 if header else 0  # the header is no reject
        chosen, chosen_rejects = wanted.select(lines[offset:])
        picked: list[tuple[int, dict | None]] = [
            (k + offset, reject) for k, reject in zip(chosen.tolist(), chosen_rejects, strict=True)
        ]
        if header and len(starts):
            picked.insert(0, (0, None))
            header = False
        for k, reject in picked:
            writer.begin(reject)
            last = k + 1 == len(starts)
            writer.write(data, int(starts[k]), len(data) if last else int(starts[k + 1]))
            if not last:
                writer.close()
    writer.close()
    wanted.rest_missing()
    result.sha256 = digest.hexdigest()
    return result


def refusal(result: ExportResult, *, sha256: str | None, rejected: int | None) -> str | None:
    """Why the export does not hold the job's rejects (None when it does): the source is not the
    job's (``sha256``, as the plan read it), a reject's line starts no record of it, or the
    quarantine does not hold the ``rejected`` count the job recorded."""
    if sha256 and result.sha256 != sha256:
        return (
            f"the source read now has SHA-256 {result.sha256}, the job's plan read {sha256}: "
            "these are not the bytes the job validated"
        )
    if result.missing:
        return (
            f"{result.missing} of the quarantine's {result.rejects} rejected lines start no record of the "
            f"source (the first: line {result.missing_lines[0]})"
        )
    if rejected is not None and result.exported != rejected:
        return f"the quarantine holds {result.exported} rejected records, the job counted {rejected}"
    return None



# ------------------------------------------------------------------ the fixed records sent back
# A fixed record longer than the contract's record limit would be rejected again: refused here.
MAX_FIXED_RECORD_BYTES = 1 << 20


class FixedFileRefused(ValueError):
    """The fixed file is not the export, fixed: another header, or a record past the contract's limit."""


def _records(blocks: Iterable[bytes], *, fmt: str) -> Iterator[bytes]:
    """Every record of a file whole, with its line end, in order (BOM aside; blank lines too)."""
    pending = b""
    for block in framed(blocks, fmt=fmt):
        data, cuts = block.data, [block.skip, *block.starts.tolist(), len(block.data)]
        pending += data[cuts[0] : cuts[1]]  # the end of the record open before this block
        for left, right in zip(cuts[1:], cuts[2:], strict=False):
            if pending:
                yield pending
            pending = data[left:right]
        if len(pending) > MAX_FIXED_RECORD_BYTES:
            raise FixedFileRefused(f"a record is longer than {MAX_FIXED_RECORD_BYTES} bytes, the contract's limit")
    if pending:
        yield pending


def _blank(record: bytes, *, fmt: str) -> bool:
    return record in _CSV_BLANK if fmt == CSV_FORMAT else not record.strip(_JSON_WHITESPACE)


def source_header(blocks: Iterable[bytes]) -> bytes:
    """A CSV source's header record (BOM aside), as its bytes."""
    return next(_records(blocks, fmt=CSV_FORMAT), b"")


def fixed_records(blocks: Iterable[bytes], *, fmt: str, header: bytes | None) -> Iterator[bytes]:
    """The records of a fixed export, in order, blank lines left out. A CSV one must keep the
    source's ``header`` (line end aside): its records go back between the source's own, so their
    columns must be the source's, in its order."""
    records = _records(blocks, fmt=fmt)
    if fmt == CSV_FORMAT:
        first, expected = next(records, b"").rstrip(_LINE_END), (header or b"").rstrip(_LINE_END)
        if header is not None and first != expected:
            raise FixedFileRefused(
                f"its header {first[:200]!r} is not the source's {expected[:200]!r}: "
                "keep the exported header, its columns in their order"
            )
    yield from (record for record in records if not _blank(record, fmt=fmt))


@dataclass
class SpliceResult:
    export: ExportResult  # the source read: bytes, SHA-256, rejects listed and missing
    replaced: int = 0  # rejected records replaced by a fixed one
    fixed_left: int = 0  # fixed records beyond the rejects


def splice_fixed(
    *, blocks: Iterable[bytes], fmt: str, rejects: Iterable[dict], fixed: Iterable[bytes], out: BinaryIO
) -> SpliceResult:
    """Write the source read as ``blocks`` to ``out`` with the record at each reject's line (in line
    order) replaced by the next of ``fixed`` (the fixed export's records, in its order): the
    corrected source, byte for byte the source's elsewhere. A fixed record without a line end gets
    an LF. Mismatched counts are in the result; ``splice_refusal`` words them."""
    result = SpliceResult(export=ExportResult())
    digest = hashlib.sha256()
    wanted = _Wanted(rejects, result.export)
    replacements = iter(fixed)
    header = fmt == CSV_FORMAT
    skipping = False  # inside a replaced record that began in an earlier block
    for block in framed(_hashed(blocks, digest, result.export), fmt=fmt):
        data, starts, lines = block.data, block.starts, block.lines
        cursor = 0
        if skipping:
            if not len(starts):
                continue
            cursor, skipping = int(starts[0]), False
        offset = 1 if header and len(starts) else 0  # the header is no reject
        header = header and not len(starts)
        chosen, _found = wanted.select(lines[offset:])
        for k in (chosen + offset).tolist():
            out.write(memoryview(data)[cursor : int(starts[k])])
            replacement = next(replacements, None)
            if replacement is not None:
                result.replaced += 1
                out.write(replacement if replacement.endswith(b"\n") else replacement + b"\n")
            if k + 1 == len(starts):
                skipping, cursor = True, len(data)
            else:
                cursor = int(starts[k + 1])
        out.write(memoryview(data)[cursor:])
    wanted.rest_missing()
    result.fixed_left = sum(1 for _ in replacements)
    result.export.sha256 = digest.hexdigest()
    return result


def splice_refusal(result: SpliceResult, *, sha256: str | None) -> str | None:
    """Why the corrected source is not the job's source with its rejects fixed (None when it is)."""
    export = result.export
    if sha256 and export.sha256 != sha256:
        return refusal(export, sha256=sha256, rejected=None)
    if export.missing:
        return refusal(export, sha256=None, rejected=None)
    if result.fixed_left or result.replaced != export.rejects:
        return (
            f"the fixed file holds {result.replaced + result.fixed_left} records, the job rejected {export.rejects}: "
            "fix each exported record in place and keep them all, in their order (one left as it was is rejected "
            "again)"
        )
    return None
