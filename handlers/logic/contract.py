"""The data contract: field names, reason codes and per-field rules (see docs/data-contract.md)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

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

# A record (a CSV record or a JSON line, its line end included; the header too) is at most 1 MiB,
# as S3 Select reads records ("the maximum length of a record in the input or result is 1 MB",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/selecting-content-from-objects.html).
# A longer one is read past, never held: one MALFORMED_ROW whose raw text is its first characters.
MAX_RECORD_BYTES = 1 << 20
RECORD_HEAD_CHARACTERS = 1024
# A JSON line nests objects and arrays at most 32 levels deep, the record's own object included:
# DynamoDB's limit for nested attributes
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-attributes).
MAX_JSON_DEPTH = 32

ID_CHARS = re.compile(r"[A-Za-z0-9._:\-]+")
ACCOUNT_CHARS = re.compile(r"[A-Z0-9]+")
# Syntax only; the digit count and the currency's minor units are checked separately.
AMOUNT_SYNTAX = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
# Lone surrogates are what undecodable bytes become under the "surrogateescape" error handler.
UNDECODABLE = re.compile("[\udc80-\udcff]")


class JsonNumber(Decimal):
    """A JSON number with a fraction or an exponent, or an integer too long for int, as read: exact,
    and written back as its very text (``1e400``, not ``1E+400``: str() and json_text give it). No
    contract field takes a JSON number; one past Decimal's exponent range keeps only its text."""

    text: str

    def __new__(cls, text: str) -> JsonNumber:
        try:
            number = super().__new__(cls, text)
        except InvalidOperation:  # an exponent beyond 10**18
            number = super().__new__(cls, "NaN")
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text


def _active_currency_exponents() -> dict[str, int]:
    # Codes without minor units in the table (XAU, XDR, XXX, ...) are not money amounts we can
    # quantize, so they are not accepted as transaction currencies.
    return {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None and c.code}


CURRENCY_EXPONENTS: dict[str, int] = _active_currency_exponents()
