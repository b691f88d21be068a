"""The data contract: field names, reason codes and per-field rules (see docs/data-contract.md)."""

from __future__ import annotations

import re

import iso4217

TRANSACTION_ID = "transaction_id"
ACCOUNT_ID = "account_id"
BOOKED_AT = "booked_at"
AMOUNT = "amount"
CURRENCY = "currency"
DIRECTION = "direction"
DESCRIPTION = "description"

CONTRACT_FIELDS = (TRANSACTION_ID, ACCOUNT_ID, BOOKED_AT, AMOUNT, CURRENCY, DIRECTION, DESCRIPTION)
REQUIRED_FIELDS = CONTRACT_FIELDS[:-1]

MISSING_FIELD = "MISSING_FIELD"
INVALID_ID = "INVALID_ID"
INVALID_ACCOUNT = "INVALID_ACCOUNT"
INVALID_TIMESTAMP = "INVALID_TIMESTAMP"
INVALID_AMOUNT = "INVALID_AMOUNT"
AMOUNT_PRECISION = "AMOUNT_PRECISION"
INVALID_CURRENCY = "INVALID_CURRENCY"
INVALID_DIRECTION = "INVALID_DIRECTION"
FIELD_TOO_LONG = "FIELD_TOO_LONG"
DUPLICATE_ID = "DUPLICATE_ID"
MALFORMED_ROW = "MALFORMED_ROW"

# Reasons are always reported in this order, so quarantine output is deterministic.
REASON_CODES = (
    MISSING_FIELD,
    INVALID_ID,
    INVALID_ACCOUNT,
    INVALID_TIMESTAMP,
    INVALID_AMOUNT,
    AMOUNT_PRECISION,
    INVALID_CURRENCY,
    INVALID_DIRECTION,
    FIELD_TOO_LONG,
    DUPLICATE_ID,
    MALFORMED_ROW,
)

MAX_ID_LENGTH = 64
MAX_ACCOUNT_LENGTH = 34
MAX_DESCRIPTION_LENGTH = 500
MAX_INTEGER_DIGITS = 15
DIRECTIONS = frozenset({"DEBIT", "CREDIT"})

ID_CHARS = re.compile(r"[A-Za-z0-9._:\-]+")
ACCOUNT_CHARS = re.compile(r"[A-Z0-9]+")
# Syntax only; the digit count and the currency's minor units are checked separately.
AMOUNT_SYNTAX = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
# Lone surrogates are what undecodable bytes become under the "surrogateescape" error handler.
UNDECODABLE = re.compile("[\udc80-\udcff]")


def _active_currency_exponents() -> dict[str, int]:
    # Codes without minor units in the table (XAU, XDR, XXX, ...) are not money amounts we can
    # quantize, so they are not accepted as transaction currencies.
    return {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None and c.code}


CURRENCY_EXPONENTS: dict[str, int] = _active_currency_exponents()
