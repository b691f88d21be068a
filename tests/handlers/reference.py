"""Transform's normalisation one row at a time: the readable rule the vectorized form is tested
against (handlers/logic/normalize.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from handlers.logic.amounts import format_minor_units
from handlers.logic.contract import CURRENCY_EXPONENTS
from handlers.logic.normalize import DEBIT


def quantize_amount(*, amount: str, exponent: int) -> str:
    """A contract-valid amount text quantized to the currency's minor units: "007.5" -> "7.50"."""
    integer, _, fraction = amount.partition(".")
    if exponent == 0:
        return str(int(integer))
    return f"{int(integer)}.{fraction.ljust(exponent, '0')}"


@dataclass(frozen=True)
class NormalizedRow:
    source_line: int
    transaction_id: str
    account_id: str
    booked_at: datetime  # aware, UTC
    booking_date: date  # the UTC calendar date of booked_at
    amount: str  # quantized to the currency's minor units, unsigned
    signed_amount: str
    signed_minor_units: int
    currency: str
    minor_units: int
    direction: str
    description: str
    extra: str  # JSON of columns outside the contract, "" if none


def normalize_staged_row(row: list[str]) -> NormalizedRow:
    """A staging row (columns of validation.STAGING_COLUMNS), already valid by contract."""
    line, transaction_id, account_id, booked_at, amount, currency, direction, description, extra = row
    exponent = CURRENCY_EXPONENTS[currency]
    instant = datetime.fromisoformat(booked_at).astimezone(UTC)
    quantized = quantize_amount(amount=amount, exponent=exponent)
    minor = int(quantized.replace(".", ""))
    signed_minor = -minor if direction == DEBIT else minor
    return NormalizedRow(
        source_line=int(line),
        transaction_id=transaction_id,
        account_id=account_id,
        booked_at=instant,
        booking_date=instant.date(),
        amount=quantized,
        signed_amount=format_minor_units(minor_units=signed_minor, exponent=exponent),
        signed_minor_units=signed_minor,
        currency=currency,
        minor_units=exponent,
        direction=direction,
        description=description,
        extra=extra,
    )


# --------------------------------------------------------------------------------------------
# Validation one character at a time: the readable verdicts the fuzz suite holds the streaming,
# chunked and vectorized paths to (tests/handlers/test_fuzz.py). Framing, the BOM, the header,
# the record size and nesting limits, JSON parsing, duplicates and line numbers are written out
# again here, plainly; the per-field rules are rules.check_record's (tested on their own).

UNREADABLE = "UNREADABLE"
_BOM = b"\xef\xbb\xbf"


@dataclass
class Verdicts:
    records: int
    valid: list  # (line, transaction_id)
    rejects: list  # (line, transaction_id, reasons)


def reference_verdicts(data: bytes, fmt: str) -> Verdicts | str:
    """What the contract says of a whole file, or UNREADABLE when the job must fail."""
    from handlers.logic import contract as c

    body = data[len(_BOM) :] if data.startswith(_BOM) else data  # only the file's first bytes
    rows = _csv_rows(body, c) if fmt == "csv" else _jsonl_rows(body, c)
    if rows == UNREADABLE:
        return UNREADABLE
    verdicts, seen = Verdicts(0, [], []), set()
    for line, row in rows:
        verdicts.records += 1
        if isinstance(row, str):  # malformed: why
            verdicts.rejects.append((line, None, [c.MALFORMED_ROW]))
            continue
        _decide(verdicts, seen, line, *row)
    return verdicts if verdicts.records else UNREADABLE


def _decide(verdicts: Verdicts, seen: set, line: int, values: dict, extras: dict) -> None:
    from handlers.logic import contract as c
    from handlers.logic.recorder import printable
    from handlers.logic.rules import check_record

    check = check_record({**values, **extras})
    tid = values.get(c.TRANSACTION_ID)
    occurrence = (
        c.MALFORMED_ROW not in check.reasons
        and isinstance(tid, str)
        and 1 <= len(tid) <= c.MAX_ID_LENGTH
        and all(ch.isascii() and (ch.isalnum() or ch in "._:-") for ch in tid)
    )
    reasons = set(check.reasons)
    if occurrence:
        if tid in seen:
            reasons.add(c.DUPLICATE_ID)
        seen.add(tid)
    shown = printable(tid) if isinstance(tid, str) else None
    if reasons:
        verdicts.rejects.append((line, shown, [code for code in c.REASON_CODES if code in reasons]))
    else:
        verdicts.valid.append((line, tid))


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _csv_records(text: str) -> list[tuple[int, str]]:
    """(line, record text): a record ends at an LF outside quotes; a quote opens a quoted section
    only at the start of a field; "" inside quotes is a quote."""
    records, start, line = [], 0, 1
    quoted, field_start, i = False, True, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == '"' and text[i + 1 : i + 2] == '"':
                i += 2
                continue
            quoted = ch != '"'
        else:
            if ch == '"' and field_start:
                quoted = True
            field_start = ch == ","
            if ch == "\n":
                records.append((line, text[start : i + 1]))
                line += text.count("\n", start, i + 1)
                start, field_start = i + 1, True
        i += 1
    if start < len(text):
        records.append((line, text[start:]))
    return records


def _csv_fields(record: str) -> list[str] | None:
    """Strict RFC 4180, a character at a time; None if broken."""
    body = record
    if body.endswith("\n"):
        body = body[:-1]
        if body.endswith("\r"):
            body = body[:-1]
    fields, field, state = [], [], "start"
    for ch in body:
        if state == "quoted":
            if ch == '"':
                state = "quote"
            else:
                field.append(ch)
        elif state == "quote":  # a quote inside quotes: escaped, or the closing one
            if ch == '"':
                field.append('"')
                state = "quoted"
            elif ch == ",":
                fields.append("".join(field))
                field, state = [], "start"
            else:
                return None
        elif ch == ",":
            fields.append("".join(field))
            field, state = [], "start"
        elif ch == '"' and state == "start":
            state = "quoted"
        elif ch in '"\r\n':
            return None
        else:
            field.append(ch)
            state = "unquoted"
    if state == "quoted":
        return None
    fields.append("".join(field))
    return fields


def _csv_rows(body: bytes, c) -> list | str:
    text = body.decode("utf-8", "surrogateescape")
    records = _csv_records(text)
    if not records or _utf8_size(records[0][1]) > c.MAX_RECORD_BYTES:
        return UNREADABLE
    header = _csv_fields(records[0][1])
    if header is None or header == [""] or header[0].startswith("\ufeff"):
        return UNREADABLE
    if any("\udc80" <= ch <= "\udcff" for name in header for ch in name):
        return UNREADABLE
    if len(set(header)) != len(header) or not set(header) & set(c.CONTRACT_FIELDS):
        return UNREADABLE
    rows = []
    for line, record in records[1:]:
        if record in ("\n", "\r\n"):
            continue
        if _utf8_size(record) > c.MAX_RECORD_BYTES:
            rows.append((line, "too long"))
            continue
        fields = _csv_fields(record)
        if fields is None or len(fields) != len(header):
            rows.append((line, "not RFC 4180 or the wrong width"))
            continue
        named = dict(zip(header, fields, strict=True))
        values = {name: named.get(name) for name in c.CONTRACT_FIELDS}
        rows.append((line, (values, {k: v for k, v in named.items() if k not in c.CONTRACT_FIELDS})))
    return rows


def _depth(text: str) -> int:
    """The deepest nesting of objects and arrays, brackets inside strings left out."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_repeats(pairs):
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("repeated key")
    return dict(pairs)


def _not_json(name):
    raise ValueError(name)


def _surrogate(value) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_surrogate(k) or _surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_surrogate(v) for v in value)
    return False


def _jsonl_rows(body: bytes, c) -> list | str:
    import json

    rows, first = [], True
    lines = body.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        ended = number < len(lines)
        if not raw.strip(b" \t\r\n"):
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            if first:
                return UNREADABLE
            text = None
        first = False
        if len(raw) + ended > c.MAX_RECORD_BYTES:
            rows.append((number, "too long"))
        elif text is None:
            rows.append((number, "not UTF-8"))
        elif _depth(text) > c.MAX_JSON_DEPTH:
            rows.append((number, "too deep"))
        else:
            try:
                obj = json.loads(text, object_pairs_hook=_no_repeats, parse_constant=_not_json, parse_int=float)
            except ValueError:
                obj = None
            if not isinstance(obj, dict) or _surrogate(obj):
                rows.append((number, "not a JSON object of Unicode text"))
                continue
            values = {name: obj.get(name) for name in c.CONTRACT_FIELDS}
            rows.append((number, (values, {k: v for k, v in obj.items() if k not in c.CONTRACT_FIELDS})))
    return rows
