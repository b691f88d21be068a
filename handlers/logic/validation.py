"""Streaming validation of a whole file against the contract, with exact control totals."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from handlers.errors import UnreadableFileError
from handlers.logic import contract as c
from handlers.logic import fastcsv
from handlers.logic.amounts import POWERS_OF_TEN
from handlers.logic.duplicates import DuplicateTracker
from handlers.logic.rules import check_record
from handlers.logic.timestamps import needs_calendar_check, parse_booked_at
from handlers.logic.totals import CurrencyTotals, RejectedTotals

CSV_FORMAT = "csv"
JSONL_FORMAT = "jsonl"
FORMATS = (CSV_FORMAT, JSONL_FORMAT)
STAGING_COLUMNS = ("line", *c.CONTRACT_FIELDS, "extra")
MAX_REPORTED_UNKNOWN_COLUMNS = 100


class StagingWriter:
    """Writes staging rows (STAGING_COLUMNS) as CSV with "\n" line ends.

    csv.writer quotes a field only if it holds the delimiter, the quote or a character of its line
    terminator, so a value holding a lone "\r" (a valid description) would be written bare and
    read back by any CSV reader as a line break. Such rows are written with every field quoted."""

    def __init__(self, file: TextIO) -> None:
        self._plain = csv.writer(file, lineterminator="\n")
        self._quoted = csv.writer(file, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row) -> None:
        if "\r" in "\x00".join(value for value in row if isinstance(value, str)):
            self._quoted.writerow(row)
        else:
            self._plain.writerow(row)


# One regex over the required fields joined by NUL accepts the common all-valid CSV row in a
# single C call. It is stricter than the general rules (no field may contain NUL), so anything
# it does not accept goes through rules.check_record, which decides.
_FAST_CORE = (
    r"([A-Za-z0-9._:\-]{1,64})\x00[A-Z0-9]{1,34}\x00"
    r"([0-9]{4})-(?:0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
    r"\x00([0-9]{1,15})(?:\.([0-9]+))?\x00([A-Z]{3})\x00(?:DEBIT|CREDIT)"
)
_FAST_WITH_DESCRIPTION = re.compile(_FAST_CORE + "\x00[^\x00\udc80-\udcff]{0,500}")
_FAST_WITHOUT_DESCRIPTION = re.compile(_FAST_CORE)


def exceeds_threshold(*, rejected: int, records: int, threshold: Decimal) -> bool:
    """Whether the rejected share is above ``threshold`` (exact, no division)."""
    return Decimal(rejected) > threshold * Decimal(records)


def format_from_name(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return CSV_FORMAT
    if lowered.endswith((".jsonl", ".ndjson")):
        return JSONL_FORMAT
    return None


@dataclass
class ValidationSummary:
    format: str
    records: int = 0
    valid: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    valid_totals: CurrencyTotals = field(default_factory=CurrencyTotals)
    rejected_totals: RejectedTotals = field(default_factory=RejectedTotals)
    unknown_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "records": self.records,
            "valid": self.valid,
            "rejected": self.rejected,
            "reasons": {code: self.reasons[code] for code in c.REASON_CODES if code in self.reasons},
            "totals": {"valid": self.valid_totals.amounts(), "rejected": self.rejected_totals.amounts()},
            "rowsByCurrency": {
                "valid": dict(sorted(self.valid_totals.rows.items())),
                "rejected": dict(sorted(self.rejected_totals.rows.items())),
            },
            "unknownColumns": list(self.unknown_columns),
        }


def json_text(value: object) -> str:
    """Compact JSON; Decimal (JSON numbers with a fraction or exponent) as its exact text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


ValidSink = Callable[[tuple], object]
RejectSink = Callable[[dict], object]


def _printable(value: object) -> object:
    """Undecodable bytes shown as \\xNN, so quarantine output is valid UTF-8 JSON."""
    if isinstance(value, str) and not value.isascii() and c.UNDECODABLE.search(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, list):
        return [_printable(item) for item in value]
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    return value


class _Run:
    def __init__(
        self,
        *,
        fmt: str,
        on_valid: ValidSink | None,
        on_reject: RejectSink | None,
        duplicates: DuplicateTracker,
    ) -> None:
        self.summary = ValidationSummary(format=fmt)
        self.on_valid = on_valid or (lambda row: None)
        self.on_reject = on_reject or (lambda reject: None)
        self.duplicates = duplicates
        self.on_valid_csv: Callable[[str], object] | None = None
        self.wants_valid = on_valid is not None
        self._unknown_seen: set[str] = set()

    def note_unknown(self, names) -> None:
        for name in names:
            if name not in self._unknown_seen and len(self._unknown_seen) < MAX_REPORTED_UNKNOWN_COLUMNS:
                self._unknown_seen.add(name)
                self.summary.unknown_columns.append(name)

    def reject(
        self,
        *,
        line: int,
        transaction_id: object,
        reasons: set[str],
        details: list[str],
        record: dict | None = None,
        raw: object = None,
    ) -> None:
        summary = self.summary
        summary.rejected += 1
        ordered = [code for code in c.REASON_CODES if code in reasons]
        for code in ordered:
            summary.reasons[code] = summary.reasons.get(code, 0) + 1
        entry: dict = {
            "line": line,
            "transaction_id": _printable(transaction_id) if isinstance(transaction_id, str) else None,
            "reasons": ordered,
            "details": details,
        }
        if record is not None:
            entry["record"] = {name: _printable(value) for name, value in record.items()}
        if raw is not None:
            entry["raw"] = _printable(raw)
        self.on_reject(entry)

    def malformed(self, *, line: int, detail: str, raw: object) -> None:
        self.reject(line=line, transaction_id=None, reasons={c.MALFORMED_ROW}, details=[detail], raw=raw)

    def record(
        self,
        *,
        line: int,
        values: dict[str, object],
        extras: dict[str, object],
        duplicate: bool | None = None,
    ) -> None:
        """The general path: full rule check, duplicate check, then staging or quarantine.
        ``duplicate``: already decided by the caller (batch duplicate detection), else asked here."""
        check = check_record({**values, **extras})
        transaction_id = values.get(c.TRANSACTION_ID)
        if (
            isinstance(transaction_id, str)
            and c.ID_CHARS.fullmatch(transaction_id)
            and len(transaction_id) <= c.MAX_ID_LENGTH
            and (self.duplicates.seen_before(transaction_id) if duplicate is None else duplicate)
        ):
            check.fail(c.DUPLICATE_ID, f"{c.TRANSACTION_ID}: {transaction_id} appeared on an earlier row")
        currency = values.get(c.CURRENCY)
        if check.reasons:
            if check.rejected_amount is not None:
                self.summary.rejected_totals.add(currency=currency, amount=check.rejected_amount)
            self.reject(
                line=line,
                transaction_id=transaction_id,
                reasons=check.reasons,
                details=check.details,
                record={**values, **extras},
            )
            return
        self.summary.valid += 1
        self.summary.valid_totals.add_minor(currency=currency, minor_units=check.minor_units)
        extra_json = json_text(extras) if extras else ""
        description = values.get(c.DESCRIPTION) or ""
        self.on_valid((line, *(values[name] for name in c.REQUIRED_FIELDS), description, extra_json))


def validate_text(
    *,
    text: TextIO,
    fmt: str,
    duplicates: DuplicateTracker,
    on_valid: ValidSink | None = None,
    on_reject: RejectSink | None = None,
    on_valid_csv: Callable[[str], object] | None = None,
) -> ValidationSummary:
    """Validate a whole decoded stream. Raises UnreadableFileError if it cannot be read at all.

    ``on_valid`` receives each valid row as a tuple (columns of STAGING_COLUMNS). When
    ``on_valid_csv`` is given too, runs of valid rows may instead be handed to it as ready CSV
    text (``csv.writer(lineterminator="\n")`` formatting, same order), so both must write to the
    same place.
    """
    run = _Run(fmt=fmt, on_valid=on_valid, on_reject=on_reject, duplicates=duplicates)
    run.on_valid_csv = on_valid_csv
    run.wants_valid = on_valid is not None or on_valid_csv is not None
    if fmt == CSV_FORMAT:
        raw = _utf8_bytes_source(text)
        if raw is not None:
            _validate_csv_blocks(raw, run)
        else:
            _validate_csv(text, run)
    elif fmt == JSONL_FORMAT:
        _validate_jsonl(text, run)
    else:
        raise UnreadableFileError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if run.summary.records == 0:
        raise UnreadableFileError("file is empty: it holds no transaction rows")
    return run.summary


def _read_header(reader) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise UnreadableFileError("file is empty: no header row") from None
    except csv.Error as exc:
        raise UnreadableFileError(f"header row is not valid CSV: {exc}") from None
    if not header or header == [""]:
        raise UnreadableFileError("no header row: the first line is blank")
    header[0] = header[0].removeprefix("\ufeff")  # BOM, when the caller decoded without utf-8-sig
    if any(c.UNDECODABLE.search(name) for name in header):
        raise UnreadableFileError("file is not UTF-8: the header row holds undecodable bytes")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UnreadableFileError(f"header row repeats column(s) {', '.join(repeated)}")
    if not set(header) & set(c.CONTRACT_FIELDS):
        raise UnreadableFileError(
            "no header row: the first line names none of the contract columns " + ", ".join(c.CONTRACT_FIELDS)
        )
    return header


class _CsvRows:
    """Per-row handling of CSV rows once the header is known (the pure-Python path)."""

    def __init__(self, header: list[str], run: _Run) -> None:
        self.run = run
        self.header = header
        self.width = width = len(header)
        self.index = index = {name: position for position, name in enumerate(header)}
        self.unknown = unknown = [name for name in header if name not in c.CONTRACT_FIELDS]
        run.note_unknown(unknown)
        self.has_description = has_description = c.DESCRIPTION in index
        self.fast_ok = fast_ok = all(name in index for name in c.REQUIRED_FIELDS) and not unknown
        summary = run.summary
        exponents = c.CURRENCY_EXPONENTS
        seen_before = run.duplicates.seen_before
        valid_rows = summary.valid_totals.rows
        valid_minor = summary.valid_totals.minor_units
        on_valid = run.on_valid
        if fast_ok:
            fields = c.CONTRACT_FIELDS if has_description else c.REQUIRED_FIELDS
            pick = itemgetter(*(index[name] for name in fields))
            fast = _FAST_WITH_DESCRIPTION if has_description else _FAST_WITHOUT_DESCRIPTION
        general = self.general

        def handle(row: list[str], line: int) -> None:
            if fast_ok and len(row) == width:
                values = pick(row)
                match = fast.fullmatch("\x00".join(values))
                if match is not None:
                    transaction_id, year, day, integer, fraction, currency = match.groups()
                    exponent = exponents.get(currency)
                    if (
                        exponent is not None
                        and (fraction is None or len(fraction) <= exponent)
                        and not (needs_calendar_check(year=year, day=day) and parse_booked_at(values[2]) is None)
                        and not seen_before(transaction_id)
                    ):
                        if fraction is None:
                            minor = int(integer) * POWERS_OF_TEN[exponent]
                        else:
                            minor = int(integer + fraction) * POWERS_OF_TEN[exponent - len(fraction)]
                        if currency in valid_rows:
                            valid_rows[currency] += 1
                            valid_minor[currency] += minor
                        else:
                            valid_rows[currency] = 1
                            valid_minor[currency] = minor
                        summary.valid += 1
                        on_valid((line, *values, "") if has_description else (line, *values, "", ""))
                        return
            general(row, line)

        self.handle = handle

    def general(self, row: list[str], line: int, duplicate: bool | None = None) -> None:
        width, index = self.width, self.index
        if len(row) != width:
            self.run.malformed(line=line, detail=f"row has {len(row)} columns, header has {width}", raw=row)
            return
        values = {name: (row[index[name]] if name in index else None) for name in c.CONTRACT_FIELDS}
        extras = {name: row[index[name]] for name in self.unknown}
        self.run.record(line=line, values=values, extras=extras, duplicate=duplicate)


def _validate_csv(text: TextIO, run: _Run) -> None:
    reader = csv.reader(text, strict=True)
    rows = _CsvRows(_read_header(reader), run)
    handle = rows.handle
    summary = run.summary
    last_line = reader.line_num
    while True:
        try:
            for row in reader:
                line = last_line + 1
                last_line = reader.line_num
                if not row:
                    continue  # blank line, not a record
                summary.records += 1
                handle(row, line)
            break
        except csv.Error as exc:
            line = last_line + 1
            last_line = reader.line_num
            summary.records += 1
            run.malformed(line=line, detail=f"not valid CSV: {exc}", raw=None)


# ---------------------------------------------------------------------------------------------
# Block path: the same results as _validate_csv, with a vectorized prefilter on simple blocks.

BLOCK_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"


def _utf8_bytes_source(text: TextIO):
    """The byte stream under ``text`` when it is a fresh streams.open_text wrapper, else None."""
    if not isinstance(text, io.TextIOWrapper):
        return None
    if text.encoding.lower().replace("_", "-") != "utf-8-sig" or text.errors != "surrogateescape":
        return None
    return text.buffer


def _iter_blocks(raw, size: int):
    """Blocks of whole lines (split after b"\n"; the last block may lack it). BOM removed."""
    carry = b""
    first = True
    while True:
        chunk = raw.read(size)
        if first:
            chunk = chunk.removeprefix(_BOM) if chunk else chunk
            first = False
        if not chunk:
            if carry:
                yield carry
            return
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        yield data[:cut] if cut < len(data) else data
        carry = data[cut:]


class _LineFeed:
    """Decoded lines for csv.reader; pulls the next block when csv.reader needs more lines.
    ``lines`` counts physical lines consumed so far, by csv.reader or by the vectorized path."""

    def __init__(self, blocks) -> None:
        self.blocks = blocks
        self.pending: deque[str] = deque()
        self.lines = 0

    def load(self, block: bytes) -> None:
        self.pending.extend(io.StringIO(block.decode("utf-8", "surrogateescape"), newline=""))

    def next_block(self) -> bytes | None:
        return next(self.blocks, None)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if not self.pending:
            block = self.next_block()
            if block is None:
                raise StopIteration
            self.load(block)
        self.lines += 1
        return self.pending.popleft()


def _validate_csv_blocks(raw, run: _Run) -> None:
    feed = _LineFeed(_iter_blocks(raw, BLOCK_BYTES))
    reader = csv.reader(feed, strict=True)
    header = _read_header(reader)
    rows = _CsvRows(header, run)
    vector_ok = rows.fast_ok
    if feed.pending:
        # The rest of the first block goes back to bytes, so that it can take the vectorized path.
        rest = "".join(feed.pending).encode("utf-8", "surrogateescape")
        feed.pending.clear()
        feed.blocks = itertools.chain((rest,), feed.blocks)
    handle = rows.handle
    summary = run.summary
    pool = pa.default_memory_pool()
    while True:
        if feed.pending:
            # csv.reader over whole blocks, until a record ends exactly at a block's end.
            last_line = feed.lines
            while feed.pending:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    line = last_line + 1
                    last_line = feed.lines
                    summary.records += 1
                    run.malformed(line=line, detail=f"not valid CSV: {exc}", raw=None)
                    continue
                line = last_line + 1
                last_line = feed.lines
                if not row:
                    continue
                summary.records += 1
                handle(row, line)
            continue
        block = feed.next_block()
        if block is None:
            break
        if vector_ok and fastcsv.is_simple_block(block):
            parsed = fastcsv.parse_block(block, header)
            if parsed is not None:
                _vector_block(parsed, base=feed.lines, rows=rows)
                del parsed
                pool.release_unused()  # mimalloc otherwise keeps freed block memory around
                feed.lines += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
                continue
        feed.load(block)


def _vector_block(parsed: fastcsv.ParsedBlock, *, base: int, rows: _CsvRows) -> None:
    run = rows.run
    summary = run.summary
    table = parsed.table
    num_rows = table.num_rows
    invalid = [(number, text) for number, text in parsed.invalid]
    columns = {name: table.column(name).combine_chunks() for name in c.CONTRACT_FIELDS if name in rows.index}
    accepted, id_ok = fastcsv.prefilter(columns, num_rows)
    # Duplicates, in row order, over every row whose id is well formed.
    id_positions = pc.indices_nonzero(id_ok)
    ids = pc.take(columns[c.TRANSACTION_ID], id_positions)
    repeated = run.duplicates.seen_before_batch(ids.to_pylist())
    duplicate_rows: set[int] = set()
    if repeated:
        positions = id_positions.to_pylist()
        duplicate_rows = {positions[i] for i in repeated}
    flagged = pc.indices_nonzero(pc.invert(accepted)).to_pylist()
    if duplicate_rows:
        flagged = sorted(set(flagged) | duplicate_rows)
    physical = fastcsv.table_row_lines(num_rows, [number for number, _ in invalid])
    lines = pc.add(physical, base)

    # Valid rows: counts and exact totals (rows not flagged).
    records = num_rows + sum(1 for _, text in invalid if text != "")
    summary.records += records
    good_mask = accepted
    if duplicate_rows:
        dup_mask = pc.is_in(
            pa.array(range(num_rows), pa.int64()), value_set=pa.array(sorted(duplicate_rows), pa.int64())
        )
        good_mask = pc.and_(accepted, pc.invert(dup_mask))
    good = table.filter(good_mask) if flagged else table
    summary.valid += good.num_rows
    totals = summary.valid_totals
    for currency, (count, minor) in fastcsv.minor_totals(
        good.column(c.AMOUNT).combine_chunks(), good.column(c.CURRENCY).combine_chunks()
    ).items():
        totals.rows[currency] = totals.rows.get(currency, 0) + count
        totals.minor_units[currency] = totals.minor_units.get(currency, 0) + minor

    # Emission in line order: runs of accepted rows between the rows that need Python.
    emit = _valid_emitter(table, lines, rows) if run.wants_valid else None
    events: list[tuple[int, int, object]] = []
    if flagged:
        positions = pa.array(flagged, pa.int64())
        picked = table.take(positions)
        values = list(zip(*(picked.column(name).to_pylist() for name in rows.header), strict=True))
        for k, line, row in zip(flagged, pc.take(lines, positions).to_pylist(), values, strict=True):
            events.append((line, k, list(row)))
    for number, text in invalid:
        if text != "":
            events.append((base + number, -1, text.split(",")))
    events.sort(key=lambda event: event[0])
    start = 0
    for line, k, row in events:
        if k >= 0:
            if emit is not None and k > start:
                emit(start, k)
            start = k + 1
            rows.general(row, line, duplicate=k in duplicate_rows)
        else:
            rows.general(row, line)
    if emit is not None and num_rows > start:
        emit(start, num_rows)


def _valid_emitter(table: pa.Table, lines: pa.Array, rows: _CsvRows):
    """emit(start, stop): hand the accepted rows in table[start:stop] to the valid sinks."""
    run = rows.run
    description = (
        table.column(c.DESCRIPTION).combine_chunks()
        if rows.has_description
        else pa.array([""] * table.num_rows, pa.string())
    )
    parts = [table.column(name).combine_chunks() for name in c.REQUIRED_FIELDS]
    if run.on_valid_csv is not None:
        text = pc.binary_join_element_wise(pc.cast(lines, pa.string()), *parts, description, "\n", ",")
        offsets = memoryview(text.buffers()[1]).cast("i")[text.offset :]
        data = text.buffers()[2]
        sink = run.on_valid_csv

        def emit(start: int, stop: int) -> None:
            sink(data[offsets[start] : offsets[stop]].to_pybytes().decode("utf-8"))

        return emit
    on_valid = run.on_valid

    def emit_rows(start: int, stop: int) -> None:
        values = [lines.slice(start, stop - start).to_pylist()]
        values += [part.slice(start, stop - start).to_pylist() for part in parts]
        values.append(description.slice(start, stop - start).to_pylist())
        for row in zip(*values, strict=True):
            on_valid((*row, ""))

    return emit_rows


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("object repeats a key")
    return result


def _validate_jsonl(text: TextIO, run: _Run) -> None:
    summary = run.summary
    line = 0
    for raw_line in text:
        line += 1
        stripped = raw_line.strip()
        if not stripped:
            continue
        summary.records += 1
        if not stripped.isascii() and c.UNDECODABLE.search(stripped):
            if summary.records == 1:
                raise UnreadableFileError("file is not UTF-8: the first record holds undecodable bytes")
            run.malformed(line=line, detail="line holds bytes that are not valid UTF-8", raw=stripped)
            continue
        try:
            # Decimal, not float: a JSON number is rejected anyway, but must not be rounded in quarantine.
            obj = json.loads(
                stripped,
                object_pairs_hook=_reject_duplicate_keys,
                parse_float=Decimal,
                parse_constant=Decimal,
            )
        except (ValueError, RecursionError) as exc:
            run.malformed(line=line, detail=f"not valid JSON: {exc}", raw=stripped)
            continue
        if not isinstance(obj, dict):
            run.malformed(line=line, detail=f"JSON value is a {type(obj).__name__}, not an object", raw=stripped)
            continue
        values = {name: obj.get(name) for name in c.CONTRACT_FIELDS}
        extras = {name: value for name, value in obj.items() if name not in c.CONTRACT_FIELDS}
        if extras:
            run.note_unknown(extras)
        run.record(line=line, values=values, extras=extras)


def count_records(*, text: TextIO, fmt: str) -> int:
    """Records as validate_text counts them (blank lines excluded), without checking any rule.
    Raises UnreadableFileError for the same unreadable files."""
    records = 0
    if fmt == CSV_FORMAT:
        reader = csv.reader(text, strict=True)
        _read_header(reader)
        while True:
            try:
                for row in reader:
                    if row:
                        records += 1
                break
            except csv.Error:
                records += 1
    elif fmt == JSONL_FORMAT:
        for raw_line in text:
            stripped = raw_line.strip()
            if not stripped:
                continue
            records += 1
            if records == 1 and not stripped.isascii() and c.UNDECODABLE.search(stripped):
                raise UnreadableFileError("file is not UTF-8: the first record holds undecodable bytes")
    else:
        raise UnreadableFileError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if records == 0:
        raise UnreadableFileError("file is empty: it holds no transaction rows")
    return records
