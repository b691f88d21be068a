"""Normalisation of validated rows: UTC time, quantized and signed amounts, daily totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from handlers.logic.amounts import format_minor_units, quantize_amount
from handlers.logic.contract import CURRENCY_EXPONENTS

# Sign convention: CREDIT adds to the account, DEBIT takes from it.
DEBIT = "DEBIT"


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


@dataclass
class DailyTotals:
    """Per (booking_date, account_id, currency): rows, debit, credit and net in minor units."""

    buckets: dict[tuple[date, str, str], list[int]] = field(default_factory=dict)

    def add(self, row: NormalizedRow) -> None:
        key = (row.booking_date, row.account_id, row.currency)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = [0, 0, 0]
        bucket[0] += 1
        if row.signed_minor_units < 0:
            bucket[1] -= row.signed_minor_units
        else:
            bucket[2] += row.signed_minor_units

    def rows(self) -> list[dict]:
        result = []
        for (booking_date, account_id, currency), (count, debit, credit) in sorted(self.buckets.items()):
            exponent = CURRENCY_EXPONENTS[currency]
            result.append(
                {
                    "booking_date": booking_date,
                    "account_id": account_id,
                    "currency": currency,
                    "row_count": count,
                    "debit_total": format_minor_units(minor_units=debit, exponent=exponent),
                    "credit_total": format_minor_units(minor_units=credit, exponent=exponent),
                    "net_total": format_minor_units(minor_units=credit - debit, exponent=exponent),
                }
            )
        return result
