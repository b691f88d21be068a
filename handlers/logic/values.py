"""Checks of settings and options given as text: exact, with errors that name the setting."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from handlers.errors import InvalidInputError


def parse_threshold(value: object, *, setting: str) -> Decimal:
    """A rejected-row share between 0 and 1, exact. ``setting`` names the source in errors."""
    if isinstance(value, bool) or value is None:
        raise InvalidInputError(f"{setting} must be a number between 0 and 1, got {value!r}")
    try:
        threshold = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInputError(f"{setting} must be a number between 0 and 1, got {value!r}") from None
    if not threshold.is_finite() or not Decimal(0) <= threshold <= Decimal(1):
        raise InvalidInputError(f"{setting} must be a number between 0 and 1, got {value!r}")
    return threshold


def parse_positive(value: object, *, setting: str) -> int:
    """A whole number >= 1."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{setting} must be a whole number >= 1, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidInputError(f"{setting} must be a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise InvalidInputError(f"{setting} must be a whole number >= 1, got {value!r}")
    return number
