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
