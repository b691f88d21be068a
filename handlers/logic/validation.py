"""Validation of a stream of records against the contract, with exact control totals.

A stream is a whole file, or one chunk of it (a byte range from the job's plan, whose header and
first line number the caller gives). The reading paths live beside this module: ``csv_blocks``
(vectorized, with ``csv_rows`` for what it does not take), ``csv_rows`` (any text stream) and
``jsonl``; every record's fate is decided by the ``recorder``.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import TextIO

import numpy as np

from handlers.errors import UnreadableFileError
from handlers.logic.csv_blocks import decode, validate_csv_blocks
from handlers.logic.csv_rows import read_header, validate_csv_text
from handlers.logic.duplicates import DuplicateTracker
from handlers.logic.idkeys import IdKeys, new_seed
from handlers.logic.jsonl import validate_jsonl
from handlers.logic.recorder import (
    STAGING_COLUMNS,
    Recorder,
    RejectSink,
    ValidationSummary,
    ValidRowSink,
    ValidTableSink,
    json_text,
)

CSV_FORMAT = "csv"
JSONL_FORMAT = "jsonl"
FORMATS = (CSV_FORMAT, JSONL_FORMAT)

__all__ = [
    "CSV_FORMAT",
    "FORMATS",
    "JSONL_FORMAT",
    "STAGING_COLUMNS",
    "ValidationSummary",
    "exceeds_threshold",
    "format_from_name",
    "json_text",
    "read_header_record",
    "validate_text",
]


def exceeds_threshold(*, rejected: int, records: int, threshold: Decimal) -> bool:
    """Whether the rejected share is above ``threshold`` (exact, no division)."""
    return Decimal(rejected) > threshold * Decimal(records)


def format_from_name(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return CSV_FORMAT
    if lowered.endswith((".jsonl", ".ndjson")):
        return JSONL_FORMAT
    return None


def read_header_record(data: bytes | None) -> list[str]:
    """The header's column names from the bytes of the first record, after the file's BOM (None:
    the file is empty)."""
    return read_header(None if data is None else decode(data))


def _utf8_bytes_source(text: TextIO):
    """(the byte stream under ``text``, whether it starts at the file's start) when ``text`` is a
    fresh streams.open_text wrapper, else None."""
    if not isinstance(text, io.TextIOWrapper) or text.errors != "surrogateescape":
        return None
    encoding = text.encoding.lower().replace("_", "-")
    if encoding not in ("utf-8", "utf-8-sig"):
        return None
    return text.buffer, encoding == "utf-8-sig"


def validate_text(
    *,
    text: TextIO,
    fmt: str,
    keys: IdKeys | None = None,
    duplicates: DuplicateTracker | None = None,
    forced_duplicates: np.ndarray | None = None,
    header: list[str] | None = None,
    first_line: int = 1,
    first_record: bool = True,
    allow_empty: bool = False,
    on_valid: ValidRowSink | None = None,
    on_valid_table: ValidTableSink | None = None,
    on_reject: RejectSink | None = None,
) -> ValidationSummary:
    """Validate a decoded stream. Raises UnreadableFileError if it cannot be read at all.

    A whole file: the defaults. A chunk: ``header`` (CSV; the stream then holds rows only), the
    line of its first byte, whether it holds the file's first record (JSON Lines), ``allow_empty``,
    the job's ``keys`` and a ``duplicates`` tracker (its occurrences go to the job-wide duplicate
    step), and ``forced_duplicates``: lines whose id first occurs in an earlier chunk.
    Valid rows go to ``on_valid`` one tuple at a time (columns of STAGING_COLUMNS), or to
    ``on_valid_table`` as tables of them, in line order.
    """
    recorder = Recorder(
        fmt=fmt,
        keys=keys or IdKeys(new_seed()),
        duplicates=duplicates or DuplicateTracker(),
        forced_duplicates=forced_duplicates,
        on_valid_row=on_valid,
        on_valid_table=on_valid_table,
        on_reject=on_reject,
    )
    if fmt == CSV_FORMAT:
        source = _utf8_bytes_source(text)
        if source is not None:
            raw, file_start = source
            validate_csv_blocks(raw, recorder, header=header, first_line=first_line, file_start=file_start)
        else:
            validate_csv_text(text, recorder, header=header, first_line=first_line)
    elif fmt == JSONL_FORMAT:
        validate_jsonl(text, recorder, first_line=first_line, first_record=first_record)
    else:
        raise UnreadableFileError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    recorder.close()
    if recorder.summary.records == 0 and not allow_empty:
        raise UnreadableFileError("file is empty: it holds no transaction rows")
    return recorder.summary
