"""Exact amount handling: decimal strings and integer minor units, never float."""

from __future__ import annotations

from decimal import Decimal

from handlers.logic.contract import AMOUNT_SYNTAX, CURRENCY_EXPONENTS, MAX_INTEGER_DIGITS

POWERS_OF_TEN = tuple(10**n for n in range(10))


def amount_to_minor_units(*, amount: str, currency: str) -> int | None:
    """``amount`` in minor units of ``currency``, or None if the text or its precision is invalid."""
    exponent = CURRENCY_EXPONENTS.get(currency)
    match = AMOUNT_SYNTAX.fullmatch(amount) if exponent is not None else None
    if match is None:
        return None
    integer, fraction = match.groups()
    if len(integer) > MAX_INTEGER_DIGITS or (fraction is not None and len(fraction) > exponent):
        return None
    fraction = fraction or ""
    return int(integer + fraction) * POWERS_OF_TEN[exponent - len(fraction)]


def format_minor_units(*, minor_units: int, exponent: int) -> str:
    """Decimal text with exactly ``exponent`` fraction digits: (1250, 2) -> "12.50"."""
    sign = "-" if minor_units < 0 else ""
    digits = str(abs(minor_units))
    if exponent == 0:
        return sign + digits
    digits = digits.rjust(exponent + 1, "0")
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def decimal_text(value: Decimal) -> str:
    """Plain (never scientific) text of an exact Decimal."""
    return format(value, "f")
