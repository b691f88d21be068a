"""The fate of each record: its reasons, duplicate or not, then valid rows or quarantine, with totals.

Every reading path (CSV blocks, CSV rows, JSON Lines) hands records here in line order.
Duplicates are decided a batch at a time (``idkeys`` and ``duplicates``): records whose fate
depends only on their own fields are kept pending until the batch's keys are checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from handlers.logic import contract as c
from handlers.logic.duplicates import DuplicateTracker
from handlers.logic.idkeys import IdKeys
from handlers.logic.rules import RecordCheck, check_record
from handlers.logic.totals import CurrencyTotals, RejectedTotals

STAGING_COLUMNS = ("line", *c.CONTRACT_FIELDS, "extra")
MAX_REPORTED_UNKNOWN_COLUMNS = 100
# Characters of an unknown column's name reported (on the job record, which DynamoDB caps at 400 KB:
# a header of the contract's 1 MiB could otherwise fill it with one name).
MAX_REPORTED_COLUMN_NAME = 256
# Records kept pending before their duplicate keys are checked together.
BATCH_RECORDS = 2048

ValidRowSink = Callable[[tuple], object]
ValidTableSink = Callable[[pa.Table], object]
RejectSink = Callable[[dict], object]


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
    """Compact JSON; a JSON number read as contract.JsonNumber (or a Decimal) as its exact text."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


# Lone surrogates: undecodable bytes (surrogateescape) or JSON escapes such as "\ud800".
ANY_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    # surrogateescape maps an undecodable byte 0xNN to U+DCNN (NN >= 0x80)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def printable(value: object) -> object:
    """Undecodable bytes shown as \\xNN and any other lone surrogate as \\uNNNN, so quarantine
    output and reports are always valid UTF-8 JSON."""
    if isinstance(value, str):
        return value if value.isascii() else ANY_SURROGATE.sub(_escape_surrogate, value)
    if isinstance(value, list):
        return [printable(item) for item in value]
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    return value


def is_occurrence(transaction_id: object, check: RecordCheck) -> bool:
    """The contract: a row counts as an occurrence of its id when the id is well formed, unless
    the row is malformed."""
    return (
        c.MALFORMED_ROW not in check.reasons
        and isinstance(transaction_id, str)
        and len(transaction_id) <= c.MAX_ID_LENGTH
        and c.ID_CHARS.fullmatch(transaction_id) is not None
    )


class _Checked:
    """A record whose reasons are known, waiting for its duplicate verdict."""

    __slots__ = ("line", "values", "extras", "check")

    def __init__(self, line: int, values: dict, extras: dict, check: RecordCheck) -> None:
        self.line, self.values, self.extras, self.check = line, values, extras, check


class _Malformed:
    __slots__ = ("line", "detail", "raw")

    def __init__(self, line: int, detail: str, raw: object) -> None:
        self.line, self.detail, self.raw = line, detail, raw


class Recorder:
    def __init__(
        self,
        *,
        fmt: str,
        keys: IdKeys,
        duplicates: DuplicateTracker,
        forced_duplicates: np.ndarray | None = None,
        on_valid_row: ValidRowSink | None = None,
        on_valid_table: ValidTableSink | None = None,
        on_reject: RejectSink | None = None,
    ) -> None:
        self.summary = ValidationSummary(format=fmt)
        self.keys = keys
        self.duplicates = duplicates
        # Lines whose id first occurs in an earlier chunk (the job-wide duplicate step).
        self.forced = np.asarray(forced_duplicates if forced_duplicates is not None else [], dtype=np.int64)
        self.on_valid_row = on_valid_row
        self.on_valid_table = on_valid_table
        self.on_reject = on_reject or (lambda reject: None)
        self.wants_valid = on_valid_row is not None or on_valid_table is not None
        self._unknown_seen: set[str] = set()
        self._pending: list[_Checked | _Malformed] = []
        self._pending_ids: list[str] = []
        self._pending_lines: list[int] = []
        self._pending_slots: list[int] = []  # position in _pending of each pending id
        self._valid_rows: list[tuple] = []  # valid rows not yet handed on as a table

    # ------------------------------------------------------------------ duplicates
    def forced_mask(self, lines: np.ndarray) -> np.ndarray:
        if not len(self.forced):
            return np.zeros(len(lines), dtype=bool)
        return np.isin(lines, self.forced)

    def check_keys(self, ids: pa.Array, lines: np.ndarray) -> np.ndarray:
        """Duplicate verdicts of a batch of occurrences, in line order."""
        high, low = self.keys.of_array(ids)
        return self.duplicates.check(high, low, lines) | self.forced_mask(lines)

    # ------------------------------------------------------------------ records
    def note_unknown(self, names) -> None:
        for full_name in names:
            name = full_name[:MAX_REPORTED_COLUMN_NAME]
            if name not in self._unknown_seen and len(self._unknown_seen) < MAX_REPORTED_UNKNOWN_COLUMNS:
                self._unknown_seen.add(name)
                self.summary.unknown_columns.append(name)

    def malformed(self, *, line: int, detail: str, raw: object) -> None:
        if self._pending:  # after records still waiting for their verdict: keep line order
            self._pending.append(_Malformed(line, detail, raw))
            return
        self._reject(line=line, transaction_id=None, reasons={c.MALFORMED_ROW}, details=[detail], raw=raw)

    def submit(self, *, line: int, values: dict[str, object], extras: dict[str, object]) -> None:
        """A record read one at a time; decided when its batch's duplicates are known."""
        check = check_record({**values, **extras})
        transaction_id = values.get(c.TRANSACTION_ID)
        if is_occurrence(transaction_id, check):
            self._queue_id(transaction_id, line)  # type: ignore[arg-type]
        self._pending.append(_Checked(line, values, extras, check))
        if len(self._pending) >= BATCH_RECORDS:
            self.flush()

    def _queue_id(self, transaction_id: str, line: int) -> None:
        self._pending_ids.append(transaction_id)
        self._pending_lines.append(line)
        self._pending_slots.append(len(self._pending))

    def flush(self) -> None:
        if not self._pending:
            return
        duplicate = np.zeros(len(self._pending), dtype=bool)
        if self._pending_ids:
            verdicts = self.check_keys(pa.array(self._pending_ids, pa.string()), np.array(self._pending_lines))
            duplicate[np.array(self._pending_slots)[verdicts]] = True
        pending, self._pending = self._pending, []
        self._pending_ids, self._pending_lines, self._pending_slots = [], [], []
        for entry, repeated in zip(pending, duplicate.tolist(), strict=True):
            if isinstance(entry, _Malformed):
                self._reject(
                    line=entry.line,
                    transaction_id=None,
                    reasons={c.MALFORMED_ROW},
                    details=[entry.detail],
                    raw=entry.raw,
                )
            else:
                self._finish(entry.line, entry.values, entry.extras, entry.check, repeated)

    def close(self) -> None:
        """Decide what is pending and hand on the last valid rows."""
        self.flush()
        if self.on_valid_table is not None:
            self._hand_on_rows()

    def decide(self, *, line: int, values: dict[str, object], extras: dict[str, object], duplicate: bool) -> None:
        """A record whose duplicate verdict is already known (the vectorized path)."""
        self._finish(line, values, extras, check_record({**values, **extras}), duplicate)

    def _finish(self, line: int, values: dict, extras: dict, check: RecordCheck, duplicate: bool) -> None:
        transaction_id = values.get(c.TRANSACTION_ID)
        if duplicate and is_occurrence(transaction_id, check):
            check.fail(c.DUPLICATE_ID, f"{c.TRANSACTION_ID}: {transaction_id} appeared on an earlier row")
        currency = values.get(c.CURRENCY)
        if check.reasons:
            if check.rejected_amount is not None:
                self.summary.rejected_totals.add(currency=currency, amount=check.rejected_amount)
            self._reject(
                line=line,
                transaction_id=transaction_id,
                reasons=check.reasons,
                details=check.details,
                record={**values, **extras},
            )
            return
        extra_json = json_text(extras) if extras else ""
        description = values.get(c.DESCRIPTION) or ""
        row = (line, *(values[name] for name in c.REQUIRED_FIELDS), description, extra_json)
        self._valid(row, currency=currency, minor=check.minor_units)  # type: ignore[arg-type]

    def _valid(self, row: tuple, *, currency: str, minor: int) -> None:
        self.summary.valid += 1
        self.summary.valid_totals.add(currency=currency, rows=1, minor_units=minor)
        if self.on_valid_row is not None:
            self.on_valid_row(row)
        elif self.on_valid_table is not None:
            self._valid_rows.append(row)
            if len(self._valid_rows) >= BATCH_RECORDS:
                self._hand_on_rows()

    def _hand_on_rows(self) -> None:
        if self._valid_rows:
            rows, self._valid_rows = self._valid_rows, []
            self.on_valid_table(staging_table(rows))  # type: ignore[misc]

    def valid_table(self, table: pa.Table) -> None:
        """Rows already counted valid (the vectorized path), as a STAGING_COLUMNS table."""
        if self.on_valid_table is not None:
            self._hand_on_rows()  # keep line order
            self.on_valid_table(table)
        elif self.on_valid_row is not None:
            for row in zip(*(column.to_pylist() for column in table.columns), strict=True):
                self.on_valid_row(row)

    def _reject(
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
            "transaction_id": printable(transaction_id) if isinstance(transaction_id, str) else None,
            "reasons": ordered,
            "details": details,
        }
        if record is not None:
            entry["record"] = {name: printable(value) for name, value in record.items()}
        if raw is not None:
            entry["raw"] = printable(raw)
        self.on_reject(entry)


_STAGING_SCHEMA = pa.schema([("line", pa.int64())] + [(name, pa.string()) for name in STAGING_COLUMNS[1:]])


def staging_table(rows: list[tuple]) -> pa.Table:
    """Valid rows (tuples of STAGING_COLUMNS) as the table the vectorized path hands on."""
    return pa.table(list(zip(*rows, strict=True)), schema=_STAGING_SCHEMA) if rows else _STAGING_SCHEMA.empty_table()


STAGING_SCHEMA = _STAGING_SCHEMA
