"""Control totals: row counts and exact sums per currency."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, Rounded

from handlers.logic.amounts import decimal_text, format_minor_units
from handlers.logic.contract import CURRENCY_EXPONENTS


@dataclass
class CurrencyTotals:
    """Rows and amount sums per currency, exact: integer minor units (amounts of valid rows fit
    their currency's minor units, so every sum does too)."""

    rows: dict[str, int] = field(default_factory=dict)
    minor_units: dict[str, int] = field(default_factory=dict)

    def add(self, *, currency: str, rows: int, minor_units: int) -> None:
        self.rows[currency] = self.rows.get(currency, 0) + rows
        self.minor_units[currency] = self.minor_units.get(currency, 0) + minor_units

    def merge(self, other: CurrencyTotals) -> None:
        for currency, rows in other.rows.items():
            self.add(currency=currency, rows=rows, minor_units=other.minor_units.get(currency, 0))

    def amounts(self) -> dict[str, str]:
        return {
            currency: format_minor_units(minor_units=total, exponent=CURRENCY_EXPONENTS[currency])
            for currency, total in sorted(self.minor_units.items())
        }

    @property
    def row_count(self) -> int:
        return sum(self.rows.values())

    def to_dict(self) -> dict:
        """JSON form: currency -> [rows, minor units as text] (minor units may pass 2**53)."""
        return {
            currency: [self.rows[currency], str(self.minor_units.get(currency, 0))] for currency in sorted(self.rows)
        }

    @classmethod
    def from_dict(cls, data: dict) -> CurrencyTotals:
        totals = cls()
        for currency, (rows, minor) in data.items():
            totals.add(currency=currency, rows=int(rows), minor_units=int(minor))
        return totals


# Addition of exact decimals in a context this wide never rounds (the result needs at most one
# digit more than its widest operand); trapping Inexact and Rounded makes that a checked fact.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, Rounded])


@dataclass
class RejectedTotals:
    """Rejected rows can carry amounts finer than their currency allows, so they are summed as
    Decimal. Only rows with a syntactically valid amount and a known currency are summed."""

    rows: dict[str, int] = field(default_factory=dict)
    sums: dict[str, Decimal] = field(default_factory=dict)

    def add(self, *, currency: str, amount: Decimal) -> None:
        self.rows[currency] = self.rows.get(currency, 0) + 1
        self.sums[currency] = _EXACT.add(self.sums.get(currency, Decimal(0)), amount)

    def merge(self, other: RejectedTotals) -> None:
        for currency, rows in other.rows.items():
            self.rows[currency] = self.rows.get(currency, 0) + rows
            self.sums[currency] = _EXACT.add(self.sums.get(currency, Decimal(0)), other.sums.get(currency, Decimal(0)))

    def amounts(self) -> dict[str, str]:
        return {currency: decimal_text(total) for currency, total in sorted(self.sums.items())}

    def to_dict(self) -> dict:
        return {currency: [self.rows[currency], decimal_text(self.sums[currency])] for currency in sorted(self.rows)}

    @classmethod
    def from_dict(cls, data: dict) -> RejectedTotals:
        totals = cls()
        for currency, (rows, amount) in data.items():
            totals.rows[currency] = int(rows)
            totals.sums[currency] = Decimal(amount)
        return totals
