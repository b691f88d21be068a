"""Streaming validation of a whole file against the contract, with exact control totals."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
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
from handlers.logic.csvrecords import BLANK_RECORDS, RecordSplitter, parse_record, split_records
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


# Lone surrogates: undecodable bytes (surrogateescape) or JSON escapes such as "\ud800".
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")

ValidSink = Callable[[tuple], object]
RejectSink = Callable[[dict], object]


def _escape_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    # surrogateescape maps an undecodable byte 0xNN to U+DCNN (NN >= 0x80)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _printable(value: object) -> object:
    """Undecodable bytes shown as \\xNN and any other lone surrogate as \\uNNNN, so quarantine
    output and reports are always valid UTF-8 JSON."""
    if isinstance(value, str):
        return value if value.isascii() else _ANY_SURROGATE.sub(_escape_surrogate, value)
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
            c.MALFORMED_ROW not in check.reasons  # the contract: a malformed row is no occurrence
            and isinstance(transaction_id, str)
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


def _read_header(text: str | None) -> list[str]:
    """The header's column names from the first record's text (None: no record at all)."""
    if text is None:
        raise UnreadableFileError("file is empty: no header row")
    header = parse_record(text)
    if header is None:
        raise UnreadableFileError("header row is not valid CSV (RFC 4180)")
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

    def text_record(self, text: str, line: int) -> None:
        """One framed record (csvrecords): blank lines are not records; broken quoting is one
        MALFORMED_ROW, however many lines the record spans."""
        row = parse_record(text)
        if row == []:
            return
        self.run.summary.records += 1
        if row is None:
            detail = "not valid CSV (RFC 4180): a quote or CR outside a quoted field, or a quote left open"
            self.run.malformed(line=line, detail=detail, raw=text)
            return
        self.handle(row, line)


def _numbered(records: Iterable[str], *, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """(line, record): line numbers are physical lines, ended by LF only (a lone CR is not one)."""
    line = first_line
    for text in records:
        yield line, text
        line += text.count("\n")


BLOCK_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"


def _text_chunks(text: TextIO) -> Iterator[str]:
    return iter(lambda: text.read(BLOCK_BYTES), "")


def _validate_csv(text: TextIO, run: _Run) -> None:
    records = _numbered(split_records(_text_chunks(text)))
    first = next(records, None)
    rows = _CsvRows(_read_header(first and first[1]), run)
    for line, record in records:
        rows.text_record(record, line)


# ---------------------------------------------------------------------------------------------
# Block path: the same results as _validate_csv, with a vectorized prefilter on simple blocks.


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


def _decode(block: bytes) -> str:
    return block.decode("utf-8", "surrogateescape")


def _split_header(blocks: Iterator[bytes]) -> tuple[str | None, bytes]:
    """(the header record's text, the bytes read after it). Blocks end at line ends, and so does
    the header: the bytes after it are whole lines, fit for the vectorized path."""
    splitter = RecordSplitter()
    for block in blocks:
        records = splitter.push(_decode(block))
        if records:
            rest = "".join(records[1:]) + splitter.take_rest()
            return records[0], rest.encode("utf-8", "surrogateescape")
    records = splitter.finish()
    return (records[0], "".join(records[1:]).encode("utf-8", "surrogateescape")) if records else (None, b"")


def _validate_csv_blocks(raw, run: _Run) -> None:
    blocks = _iter_blocks(raw, BLOCK_BYTES)
    header_text, rest = _split_header(blocks)
    header = _read_header(header_text)
    rows = _CsvRows(header, run)
    vector_ok = rows.fast_ok
    splitter = RecordSplitter()
    next_line = 1 + header_text.count("\n")  # of the next record
    pool = pa.default_memory_pool()
    for block in itertools.chain((rest,) if rest else (), blocks):
        if splitter.idle and vector_ok and fastcsv.is_simple_block(block):
            parsed = fastcsv.parse_block(block, header)
            if parsed is not None:
                _vector_block(parsed, base=next_line - 1, rows=rows)
                del parsed
                pool.release_unused()  # mimalloc otherwise keeps freed block memory around
                next_line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
                continue
        for line, record in _numbered(splitter.push(_decode(block)), first_line=next_line):
            rows.text_record(record, line)
            next_line = line + record.count("\n")
    for line, record in _numbered(splitter.finish(), first_line=next_line):
        rows.text_record(record, line)


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


def _json_int(text: str) -> int | Decimal:
    """An integer beyond Python's int-to-str digit limit is kept exact as a Decimal, which
    json_text can still write back; it is not valid for any contract field either way."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


_JSON_WHITESPACE = " \t\r\n"


def _holds_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return _ANY_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_holds_surrogate, value))
    return False


def _lf_lines(text: TextIO) -> Iterator[str]:
    """Lines ended by LF only, without it: a CR is JSON whitespace, not a line break."""
    parts: list[str] = []
    for chunk in _text_chunks(text):
        if "\n" not in chunk:
            parts.append(chunk)
            continue
        lines = chunk.split("\n")
        if parts:
            lines[0] = "".join(parts) + lines[0]
        parts = [lines.pop()]
        yield from lines
    rest = "".join(parts)
    if rest:
        yield rest


def _jsonl_records(text: TextIO) -> Iterator[tuple[int, str]]:
    """(line, stripped text) of every non-blank line; the first must be UTF-8."""
    first = True
    for line, raw_line in enumerate(_lf_lines(text), start=1):
        stripped = raw_line.strip(_JSON_WHITESPACE)
        if not stripped:
            continue
        if first and not stripped.isascii() and c.UNDECODABLE.search(stripped):
            raise UnreadableFileError("file is not UTF-8: the first record holds undecodable bytes")
        first = False
        yield line, stripped


def _parse_json_object(stripped: str) -> tuple[dict | None, str]:
    """(the object, "") or (None, why the line is MALFORMED_ROW)."""
    if not stripped.isascii() and c.UNDECODABLE.search(stripped):
        return None, "line holds bytes that are not valid UTF-8"
    try:
        # Decimal, not float: a JSON number is rejected anyway, but must not be rounded in quarantine.
        obj = json.loads(
            stripped,
            object_pairs_hook=_reject_duplicate_keys,
            parse_float=Decimal,
            parse_int=_json_int,
            parse_constant=_not_json,
        )
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(obj, dict):
        return None, f"JSON value is a {type(obj).__name__}, not an object"
    if "\\u" in stripped and _holds_surrogate(obj):
        return None, "a string holds an escaped lone surrogate (such as \\ud800): not Unicode text"
    return obj, ""


def _validate_jsonl(text: TextIO, run: _Run) -> None:
    for line, stripped in _jsonl_records(text):
        run.summary.records += 1
        obj, problem = _parse_json_object(stripped)
        if obj is None:
            run.malformed(line=line, detail=problem, raw=stripped)
            continue
        values = {name: obj.get(name) for name in c.CONTRACT_FIELDS}
        extras = {name: value for name, value in obj.items() if name not in c.CONTRACT_FIELDS}
        if extras:
            run.note_unknown(extras)
        run.record(line=line, values=values, extras=extras)


def _count_csv(text: TextIO) -> int:
    raw = _utf8_bytes_source(text)
    chunks = map(_decode, _iter_blocks(raw, BLOCK_BYTES)) if raw is not None else _text_chunks(text)
    records = split_records(chunks)
    _read_header(next(records, None))
    return sum(1 for record in records if record not in BLANK_RECORDS)


def count_records(*, text: TextIO, fmt: str) -> int:
    """Records as validate_text counts them (blank lines excluded), without checking any rule.
    Raises UnreadableFileError for the same unreadable files."""
    if fmt == CSV_FORMAT:
        records = _count_csv(text)
    elif fmt == JSONL_FORMAT:
        records = sum(1 for _ in _jsonl_records(text))
    else:
        raise UnreadableFileError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if records == 0:
        raise UnreadableFileError("file is empty: it holds no transaction rows")
    return records
