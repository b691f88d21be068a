"""Per-record contract checks (the general, slower path; the CSV fast path lives in validation.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from handlers.logic import contract as c
from handlers.logic.amounts import amount_to_minor_units
from handlers.logic.timestamps import parse_booked_at


@dataclass
class RecordCheck:
    reasons: set[str] = field(default_factory=set)
    details: list[str] = field(default_factory=list)
    minor_units: int | None = None  # set when amount and currency are valid
    rejected_amount: Decimal | None = None  # amount usable in rejected control totals

    def fail(self, reason: str, detail: str) -> None:
        self.reasons.add(reason)
        self.details.append(detail)


def _has_undecodable(value: object) -> bool:
    return isinstance(value, str) and not value.isascii() and c.UNDECODABLE.search(value) is not None


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    return {dict: "object", list: "array"}.get(type(value), type(value).__name__)


def _is_missing(value: object) -> bool:
    return value is None or value == ""


def check_record(values: dict[str, object]) -> RecordCheck:
    """Every contract reason that applies to one record, except DUPLICATE_ID (needs job state).

    ``values`` maps field name to the value as read: strings from CSV (None for an absent
    column), any JSON value from JSON Lines.
    """
    check = RecordCheck()
    for name, value in values.items():
        if _has_undecodable(value):
            check.fail(c.MALFORMED_ROW, f"{name}: contains bytes that are not valid UTF-8")
    for name in c.REQUIRED_FIELDS:
        if _is_missing(values.get(name)):
            check.fail(c.MISSING_FIELD, f"{name}: required field is missing or empty")

    _check_identifier(
        check,
        values.get(c.TRANSACTION_ID),
        name=c.TRANSACTION_ID,
        chars=c.ID_CHARS,
        max_length=c.MAX_ID_LENGTH,
        reason=c.INVALID_ID,
    )
    _check_identifier(
        check,
        values.get(c.ACCOUNT_ID),
        name=c.ACCOUNT_ID,
        chars=c.ACCOUNT_CHARS,
        max_length=c.MAX_ACCOUNT_LENGTH,
        reason=c.INVALID_ACCOUNT,
    )

    booked_at = values.get(c.BOOKED_AT)
    if not _is_missing(booked_at) and parse_booked_at(booked_at) is None:
        check.fail(c.INVALID_TIMESTAMP, f"{c.BOOKED_AT}: not an ISO 8601 date-time with offset on a real date")

    currency = values.get(c.CURRENCY)
    currency_ok = isinstance(currency, str) and currency in c.CURRENCY_EXPONENTS
    if not _is_missing(currency) and not currency_ok:
        check.fail(c.INVALID_CURRENCY, f"{c.CURRENCY}: not an active ISO 4217 code with minor units")

    _check_amount(check, values.get(c.AMOUNT), currency=currency if currency_ok else None)

    direction = values.get(c.DIRECTION)
    if not _is_missing(direction) and not (isinstance(direction, str) and direction in c.DIRECTIONS):
        check.fail(c.INVALID_DIRECTION, f"{c.DIRECTION}: must be DEBIT or CREDIT")

    description = values.get(c.DESCRIPTION)
    if description is not None and not isinstance(description, str):
        check.fail(c.MALFORMED_ROW, f"{c.DESCRIPTION}: must be a string")
    elif description is not None and len(description) > c.MAX_DESCRIPTION_LENGTH:
        check.fail(c.FIELD_TOO_LONG, f"{c.DESCRIPTION}: longer than {c.MAX_DESCRIPTION_LENGTH} characters")
    return check


def _check_identifier(check: RecordCheck, value: object, *, name: str, chars, max_length: int, reason: str) -> None:
    if _is_missing(value):
        return
    if not isinstance(value, str):
        check.fail(reason, f"{name}: must be a string")
        return
    if chars.fullmatch(value) is None:
        check.fail(reason, f"{name}: contains characters outside the allowed set")
    if len(value) > max_length:
        check.fail(c.FIELD_TOO_LONG, f"{name}: longer than {max_length} characters")


def _check_amount(check: RecordCheck, amount: object, *, currency: str | None) -> None:
    if _is_missing(amount):
        return
    if not isinstance(amount, str):
        check.fail(c.INVALID_AMOUNT, f"{c.AMOUNT}: must be a decimal string, not a JSON {_json_type(amount)}")
        return
    match = c.AMOUNT_SYNTAX.fullmatch(amount)
    if match is None:
        check.fail(c.INVALID_AMOUNT, f"{c.AMOUNT}: not an unsigned plain decimal string")
        return
    integer, fraction = match.groups()
    if len(integer) > c.MAX_INTEGER_DIGITS:
        check.fail(c.INVALID_AMOUNT, f"{c.AMOUNT}: more than {c.MAX_INTEGER_DIGITS} digits before the point")
        return
    if currency is None:
        return
    exponent = c.CURRENCY_EXPONENTS[currency]
    if fraction is not None and len(fraction) > exponent:
        check.fail(c.AMOUNT_PRECISION, f"{c.AMOUNT}: more than {exponent} fraction digits for {currency}")
        check.rejected_amount = Decimal(amount)
        return
    check.minor_units = amount_to_minor_units(amount=amount, currency=currency)
    check.rejected_amount = Decimal(amount)
