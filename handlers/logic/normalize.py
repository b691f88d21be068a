"""Normalisation of validated rows: UTC time, quantized and signed amounts.

``normalize_batch`` is the vectorized (pyarrow) form transform uses; the tests compare it with the
same rule written one row at a time (tests/handlers/reference.py).
Amounts stay exact: minor units are ``decimal128(38, 0)`` (an amount has at most 15 + 4 digits,
so sums cannot come near 38 digits), and the published amounts are those integers read at their
currency's scale, never floats.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from handlers.logic.contract import CURRENCY_EXPONENTS
from lake import schema

# Sign convention: CREDIT adds to the account, DEBIT takes from it.
DEBIT = "DEBIT"


MINOR_TYPE = pa.decimal128(38, 0)  # integer minor units, exact
# The published amounts' type (lake/schema.py AMOUNT): exact, at the largest scale of ISO 4217.
AMOUNT_TYPE = pa.decimal128(schema.AMOUNT_PRECISION, schema.AMOUNT_SCALE)
_CODES = pa.array(sorted(CURRENCY_EXPONENTS), pa.string())
_EXPONENTS = pa.array([CURRENCY_EXPONENTS[code] for code in sorted(CURRENCY_EXPONENTS)], pa.int8())


# Exact integer sums without decimal arithmetic: an unsigned amount is below 10**19 at any scale
# the contract allows (15 integer digits, 4 fraction digits at most), so it fits a uint64 and is
# summed as two int64 halves below SPLIT, which cannot overflow before 900 million rows.
SPLIT = 10**10


def decimal_halves(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) int64 halves, ``value = high * SPLIT + low``, of non-negative decimal128
    integers below 2**64, read from the decimal buffer: its 128-bit little-endian values are
    (low word, high word) pairs, the high word zero."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if values.null_count:
        raise ValueError("amounts must not be null")
    words = np.frombuffer(values.buffers()[1], dtype=np.uint64, count=2 * (values.offset + len(values)))
    words = words[2 * values.offset :]
    if words[1::2].any():
        raise ValueError("amounts outside 0 .. 2**64 - 1 in their smallest unit")
    high, low = np.divmod(words[0::2], np.uint64(SPLIT))
    return high.astype(np.int64), low.astype(np.int64)


def currency_exponents(currency: pa.Array) -> pa.Array:
    """int8 minor units of each currency code; refuses codes outside the contract table."""
    position = pc.index_in(currency, value_set=_CODES)
    if position.null_count:
        unknown = currency.filter(pc.is_null(position)).unique().to_pylist()[:5]
        raise ValueError(f"currencies outside the contract table: {unknown}")
    return pc.take(_EXPONENTS, position)


def _per_exponent(exponent: pa.Array, values: pa.Array, convert) -> pa.Array:
    """``convert(v, e)`` applied to the values of each exponent ``e``, in the values' order.

    Rows are grouped by exponent with one stable sort, converted group by group, and put back
    in place with one take (a file may mix currencies of several exponents)."""
    exponents = exponent.to_numpy(zero_copy_only=False)
    distinct = np.unique(exponents)
    if len(distinct) == 1:
        return convert(values, int(distinct[0]))
    order = np.argsort(exponents, kind="stable")
    bounds = np.searchsorted(exponents[order], distinct).tolist() + [len(order)]
    pieces = [
        convert(values.take(pa.array(order[start:stop])), int(e))
        for e, start, stop in zip(distinct.tolist(), bounds, bounds[1:], strict=False)
    ]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pa.concat_arrays(pieces).take(pa.array(inverse))


def minor_units(amount: pa.Array, exponent: pa.Array) -> pa.Array:
    """Contract-valid unsigned amount texts -> integer minor units (decimal128(38, 0)), exact.

    The cast to the currency's scale fails (never rounds) if an amount has more fraction digits
    than the currency allows."""
    return _per_exponent(exponent, amount, lambda values, e: pc.cast(values, pa.decimal128(38, e)).view(MINOR_TYPE))


def minor_to_amount(minor: pa.Array, exponent: pa.Array) -> pa.Array:
    """Integer minor units -> the exact amount as AMOUNT_TYPE (1250, 2 -> 12.5000; -5, 2 -> -0.0500):
    the unscaled integer read at the currency's scale, then widened to scale 4 (exact)."""
    return _per_exponent(exponent, minor, lambda values, e: values.view(pa.decimal128(38, e)).cast(AMOUNT_TYPE))


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
    debit = pc.equal(direction, DEBIT)
    signed_minor = pc.if_else(debit, pc.negate(minor), minor)
    return pa.table(
        {
            "source_line": pc.cast(col("line"), pa.int64()),
            "transaction_id": col("transaction_id"),
            "account_id": col("account_id"),
            "booked_at": booked_at,
            "booking_date": pc.cast(booked_at, pa.date32()),
            "amount": minor_to_amount(minor, exponent),
            "signed_amount": minor_to_amount(signed_minor, exponent),
            "currency": currency,
            "minor_units": pc.cast(exponent, pa.int32()),
            "direction": direction,
            "description": col("description"),
            "extra": col("extra"),
            "minor": minor,
            "signed_minor": signed_minor,
        }
    )
