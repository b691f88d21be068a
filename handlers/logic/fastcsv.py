"""Vectorized prefilter for CSV blocks (pyarrow), used by validation._validate_csv_blocks.

A "simple" block (whole lines; no quote, NUL, lone CR or blank line; valid UTF-8) is parsed by pyarrow with
quoting off, so every physical line is one row and pyarrow's row numbers are physical line
numbers. Each row is then checked by vectorized rules that are *stricter or equal* to the
contract rules in rules.py: a row they accept is valid by rules.py (proven by a property test
comparing both paths). Every row they do not accept, and every row that repeats an id, goes
through the pure-Python rules, so reasons, details and line numbers are those of rules.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from handlers.logic import contract as c
from handlers.logic.normalize import MINOR_TYPE, SPLIT, decimal_halves

MAX_EXPONENT = max(c.CURRENCY_EXPONENTS.values())
_CODES = sorted(c.CURRENCY_EXPONENTS)

ID_RE = r"^[A-Za-z0-9._:\-]{1,64}$"
ACCOUNT_RE = r"^[A-Z0-9]{1,34}$"
# Years 1000-8999 only (0001 and 9999 may not be representable in UTC: left to rules.py), and
# month/day pairs valid in every year (Feb 29 is left to rules.py).
TIMESTAMP_RE = (
    r"^[1-8][0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)


def _amount_currency_re() -> str:
    """amount + "," + currency, with the amount's fraction digits within the currency's."""
    by_exponent: dict[int, list[str]] = {}
    for code, exponent in c.CURRENCY_EXPONENTS.items():
        by_exponent.setdefault(exponent, []).append(code)
    parts = []
    for exponent, codes in sorted(by_exponent.items()):
        fraction = rf"(?:\.[0-9]{{1,{exponent}}})?" if exponent else ""
        parts.append(rf"[0-9]{{1,{c.MAX_INTEGER_DIGITS}}}{fraction},(?:{'|'.join(sorted(codes))})")
    return "^(?:" + "|".join(parts) + ")$"


AMOUNT_CURRENCY_RE = _amount_currency_re()
_DIRECTIONS = pa.array(sorted(c.DIRECTIONS))


def is_simple_block(block: bytes) -> bool:
    if b'"' in block or b"\x00" in block:
        return False
    # pyarrow drops a BOM at the start of what it parses; here it is a row's data (U+FEFF).
    if block.startswith(b"\xef\xbb\xbf"):
        return False
    if len(block) > c.MAX_RECORD_BYTES and _longest_line(block) > c.MAX_RECORD_BYTES:
        return False  # a record past the size limit: one MALFORMED_ROW, on the per-row path
    # pyarrow reads a blank line as a row of empty fields; csv.reader skips it: leave those to csv.
    if b"\n\n" in block or b"\n\r\n" in block or block.startswith((b"\n", b"\r\n")):
        return False
    if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
        return False
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _longest_line(block: bytes) -> int:
    """Bytes of the block's longest line, its LF included."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
    bounds = np.concatenate(([-1], ends, [len(block) - 1]))
    return int(np.diff(bounds).max())


@dataclass
class ParsedBlock:
    table: pa.Table  # rows with the header's column count, all columns strings
    invalid: list[tuple[int, str]]  # (physical row number in the block, 1-based; raw text)


def parse_block(block: bytes, names: list[str]) -> ParsedBlock | None:
    """None when the block must go through the per-row path instead (a skipped row without a
    number). A field of any length is one field, as on the per-row path (csvrecords)."""
    invalid: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    table = pa_csv.read_csv(
        pa.BufferReader(block),
        read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=max(1 << 20, len(block) + 1)),
        parse_options=pa_csv.ParseOptions(
            quote_char=False,
            double_quote=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        ),
    )
    if any(row_number is None for row_number, _ in invalid):
        return None
    return ParsedBlock(table=table.combine_chunks(), invalid=invalid)


def table_row_lines(num_rows: int, invalid_numbers: list[int]) -> pa.Array:
    """1-based physical row number (within the block) of each table row."""
    index = np.arange(num_rows, dtype=np.int64)
    if not invalid_numbers:
        return pa.array(index + 1)
    # Table rows at or after position (number - 1 - j) of the j-th skipped row are shifted by one.
    thresholds = np.array([number - 1 - j for j, number in enumerate(sorted(invalid_numbers))], dtype=np.int64)
    return pa.array(index + 1 + np.searchsorted(thresholds, index, side="right"))


def prefilter(columns: dict[str, pa.Array], num_rows: int) -> tuple[pa.Array, pa.Array]:
    """(accepted, id_well_formed) boolean masks, no nulls.

    accepted: the row is valid by the contract (except duplicates). id_well_formed: the row
    counts as an occurrence of its transaction_id for duplicate detection.
    """
    id_ok = pc.match_substring_regex(columns[c.TRANSACTION_ID], ID_RE)
    ok = pc.and_(id_ok, pc.match_substring_regex(columns[c.ACCOUNT_ID], ACCOUNT_RE))
    ok = pc.and_(ok, pc.match_substring_regex(columns[c.BOOKED_AT], TIMESTAMP_RE))
    amount_currency = pc.binary_join_element_wise(columns[c.AMOUNT], columns[c.CURRENCY], ",")
    ok = pc.and_(ok, pc.match_substring_regex(amount_currency, AMOUNT_CURRENCY_RE))
    ok = pc.and_(ok, pc.is_in(columns[c.DIRECTION], value_set=_DIRECTIONS))
    description = columns.get(c.DESCRIPTION)
    if description is not None:
        ok = pc.and_(ok, pc.less_equal(pc.utf8_length(description), c.MAX_DESCRIPTION_LENGTH))
    return ok, id_ok


def minor_totals(amounts: pa.Array, currencies: pa.Array) -> dict[str, tuple[int, int]]:
    """Per currency (rows, sum in minor units), exact: the amounts as integers at the largest
    scale, summed per currency in int64 halves (normalize.SPLIT)."""
    if len(amounts) == 0:
        return {}
    scaled = pc.cast(amounts, pa.decimal128(c.MAX_INTEGER_DIGITS + MAX_EXPONENT, MAX_EXPONENT))  # exact, or an error
    high, low = decimal_halves(scaled.view(MINOR_TYPE))
    encoded = pc.dictionary_encode(currencies)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    result = {}
    for code, currency in enumerate(encoded.dictionary.to_pylist()):
        picked = codes == code
        total = int(high[picked].sum(dtype=np.int64)) * SPLIT + int(low[picked].sum(dtype=np.int64))
        minor, remainder = divmod(total, 10 ** (MAX_EXPONENT - c.CURRENCY_EXPONENTS[currency]))
        if remainder:
            raise ValueError(f"{currency} amounts with more than {c.CURRENCY_EXPONENTS[currency]} fraction digits")
        result[currency] = (int(picked.sum()), minor)
    return result
