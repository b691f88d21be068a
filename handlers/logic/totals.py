"""Control totals: row counts and exact sums per currency."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, Rounded

from handlers.logic.amounts import decimal_text, format_minor_units
from handlers.logic.contract import CURRENCY_EXPONENTS


@dataclass
class CurrencyTotals:
    """Rows and amount sums per currency. Sums of valid rows are kept as integer minor units."""

    rows: dict[str, int] = field(default_factory=dict)
    minor_units: dict[str, int] = field(default_factory=dict)

    def add_minor(self, *, currency: str, minor_units: int) -> None:
        self.rows[currency] = self.rows.get(currency, 0) + 1
        self.minor_units[currency] = self.minor_units.get(currency, 0) + minor_units

    def amounts(self) -> dict[str, str]:
        return {
            currency: format_minor_units(minor_units=total, exponent=CURRENCY_EXPONENTS[currency])
            for currency, total in sorted(self.minor_units.items())
        }


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

    def amounts(self) -> dict[str, str]:
        return {currency: decimal_text(total) for currency, total in sorted(self.sums.items())}
