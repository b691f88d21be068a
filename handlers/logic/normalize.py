"""Normalisation of validated rows: UTC time, quantized and signed amounts.

``normalize_batch`` is the vectorized (pyarrow) form transform uses; the tests compare it with the
same rule written one row at a time (tests/handlers/reference.py).
Amounts stay exact: minor units are ``decimal128(38, 0)`` (an amount has at most 15 + 4 digits,
so sums cannot come near 38 digits), texts are made from those integers, never from floats.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from handlers.logic.amounts import format_minor_units
from handlers.logic.contract import CURRENCY_EXPONENTS

# Sign convention: CREDIT adds to the account, DEBIT takes from it.
DEBIT = "DEBIT"


MINOR_TYPE = pa.decimal128(38, 0)  # integer minor units, exact
_CODES = pa.array(sorted(CURRENCY_EXPONENTS), pa.string())
_EXPONENTS = pa.array([CURRENCY_EXPONENTS[code] for code in sorted(CURRENCY_EXPONENTS)], pa.int8())
# Arrow prints a decimal in plain notation while its adjusted exponent is >= -6, i.e. always for
# scales up to 6 (ISO 4217 minor units are 0-4); larger scales fall back to Python formatting.
_MAX_ARROW_SCALE = 6


def currency_exponents(currency: pa.Array) -> pa.Array:
    """int8 minor units of each currency code; refuses codes outside the contract table."""
    position = pc.index_in(currency, value_set=_CODES)
    if position.null_count:
        unknown = currency.filter(pc.is_null(position)).unique().to_pylist()[:5]
        raise ValueError(f"currencies outside the contract table: {unknown}")
    return pc.take(_EXPONENTS, position)


def _per_exponent(exponent: pa.Array, result_type: pa.DataType, convert) -> pa.Array:
    """Apply ``convert(mask, e)`` (values of the rows with that exponent) and scatter the results."""
    distinct = pc.unique(exponent).to_pylist()
    if len(distinct) == 1:
        return convert(None, distinct[0])
    result = pa.nulls(len(exponent), result_type)
    for e in distinct:
        mask = pc.equal(exponent, pa.scalar(e, pa.int8()))
        result = pc.replace_with_mask(result, mask, convert(mask, e))
    return result


def minor_units(amount: pa.Array, exponent: pa.Array) -> pa.Array:
    """Contract-valid unsigned amount texts -> integer minor units (decimal128(38, 0)), exact.

    The cast to the currency's scale fails (never rounds) if an amount has more fraction digits
    than the currency allows."""

    def convert(mask, e):
        values = amount if mask is None else amount.filter(mask)
        return pc.cast(values, pa.decimal128(38, e)).view(MINOR_TYPE)

    return _per_exponent(exponent, MINOR_TYPE, convert)


def format_minor(minor: pa.Array, exponent: pa.Array) -> pa.Array:
    """Integer minor units -> decimal text with exactly ``exponent`` fraction digits, like
    :func:`format_minor_units` (1250, 2 -> "12.50"; -5, 2 -> "-0.05"; 0 -> "0.00")."""

    def convert(mask, e):
        values = minor if mask is None else minor.filter(mask)
        if e > _MAX_ARROW_SCALE:
            return pa.array(
                [format_minor_units(minor_units=int(v), exponent=e) for v in values.to_pylist()], pa.string()
            )
        return pc.cast(values.view(pa.decimal128(38, e)), pa.string())

    return _per_exponent(exponent, pa.string(), convert)


def _array(column) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def normalize_batch(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """Staging rows (columns of validation.STAGING_COLUMNS as strings, valid by contract) ->
    the curated columns without ``job_id``, plus ``minor`` (unsigned minor units) and
    ``signed_minor`` for totals. Same results as the per-row reference of the tests."""
    col = lambda name: _array(batch.column(name))  # noqa: E731
    booked_at = pc.cast(col("booked_at"), pa.timestamp("us", tz="UTC"))
    currency = col("currency")
    exponent = currency_exponents(currency)
    minor = minor_units(col("amount"), exponent)
    direction = col("direction")
    signed_minor = pc.if_else(pc.equal(direction, DEBIT), pc.negate(minor), minor)
    return pa.table(
        {
            "source_line": pc.cast(col("line"), pa.int64()),
            "transaction_id": col("transaction_id"),
            "account_id": col("account_id"),
            "booked_at": booked_at,
            "booking_date": pc.cast(booked_at, pa.date32()),
            "amount": format_minor(minor, exponent),
            "signed_amount": format_minor(signed_minor, exponent),
            "currency": currency,
            "minor_units": exponent,
            "direction": direction,
            "description": col("description"),
            "extra": col("extra"),
            "minor": minor,
            "signed_minor": signed_minor,
        }
    )
