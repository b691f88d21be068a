"""CSV in blocks of whole lines: simple blocks checked vectorized, the rest record by record.

A block with no quote, NUL, lone CR or blank line, in valid UTF-8, is parsed by pyarrow with
quoting off (every line one row) and checked by ``fastcsv``'s prefilter, which accepts only rows
the contract rules accept. Rows it does not accept, rows whose id repeats, and every block that is
not simple go to the contract rules one record at a time (``csv_rows``), so the results never
depend on the path a row took (a property test compares both).
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from handlers.logic import contract as c
from handlers.logic import fastcsv
from handlers.logic.csv_rows import CsvRows, numbered, read_header
from handlers.logic.csvrecords import Framer, Record, RecordSplitter, newlines
from handlers.logic.recorder import STAGING_SCHEMA, Recorder
from handlers.logic.streams import ReadsBytes

BLOCK_BYTES = 1 << 20
BOM = b"\xef\xbb\xbf"


def decode(block: bytes) -> str:
    return block.decode("utf-8", "surrogateescape")


def iter_blocks(raw: ReadsBytes, size: int, *, strip_bom: bool) -> Iterator[bytes]:
    """Blocks of whole lines (cut after b"\\n"; the last block may lack it), except that a line
    longer than ``size`` comes in pieces of at least ``size`` bytes, none ending with b"\\n": no
    block holds much more than ``size`` bytes, however long a line."""
    carry = b""
    if strip_bom:  # the file's first bytes, read until they show whether a BOM starts it
        while len(carry) < len(BOM) and (more := raw.read(size)):
            carry += more
        carry = carry.removeprefix(BOM)
    while True:
        chunk = raw.read(size)
        if not chunk:
            if carry:
                yield carry
            return
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < size:
                carry = data
                continue
            cut = len(data)  # a piece of a long line
        yield data[:cut] if cut < len(data) else data
        carry = data[cut:]


def _split_header(blocks: Iterator[bytes], decoder) -> tuple[Record | None, str]:
    """(the header record, the text read after it). Framed a line at a time, by the framer that
    hands on a record as soon as it ends, so that the rows after the header are handed back."""
    splitter = Framer()
    for block in blocks:
        text = decoder.decode(block)
        start = 0
        while start < len(text):
            end = text.find("\n", start) + 1 or len(text)
            records = splitter.push(text[start:end])
            start = end
            if records:
                return records[0], text[start:]
    records = splitter.push(decoder.decode(b"", final=True)) + splitter.finish()
    return (records[0] if records else None), ""


def validate_csv_blocks(
    raw: ReadsBytes, recorder: Recorder, *, header: list[str] | None, first_line: int, file_start: bool
) -> None:
    """CSV from a byte stream; ``file_start``: the stream starts at the file's first byte, where a
    BOM is the file's own (anywhere else, U+FEFF is data)."""
    blocks = iter_blocks(raw, BLOCK_BYTES, strip_bom=file_start)
    # Incremental: a piece of a long line may end inside a character.
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    next_line = first_line  # of the next record
    splitter = RecordSplitter()
    rest, after_header = b"", ""
    if header is None:
        header_text, after_header = _split_header(blocks, decoder)
        header = read_header(header_text)
        next_line += newlines(header_text)
        if after_header.endswith("\n") and not decoder.getstate()[0]:
            # Whole lines, and nothing of them left in the decoder: fit for the vectorized path.
            rest, after_header = after_header.encode("utf-8", "surrogateescape"), ""
    rows = CsvRows(header, recorder)
    for line, record in numbered(splitter.push(after_header), first_line=next_line):
        rows.text_record(record, line)
        next_line = line + newlines(record)
    for block in itertools.chain((rest,) if rest else (), blocks):
        if splitter.idle and rows.vector_ok and block.endswith(b"\n") and fastcsv.is_simple_block(block):
            parsed = fastcsv.parse_block(block, header)
            if parsed is not None:
                recorder.flush()  # records before this block are decided first: line order
                _vector_block(parsed, base=next_line - 1, rows=rows)
                del parsed
                next_line += block.count(b"\n")
                continue
        for line, record in numbered(splitter.push(decoder.decode(block)), first_line=next_line):
            rows.text_record(record, line)
            next_line = line + newlines(record)
    last = splitter.push(decoder.decode(b"", final=True)) + splitter.finish()
    for line, record in numbered(last, first_line=next_line):
        rows.text_record(record, line)


def _vector_block(parsed: fastcsv.ParsedBlock, *, base: int, rows: CsvRows) -> None:
    recorder = rows.recorder
    summary = recorder.summary
    table = parsed.table
    num_rows = table.num_rows
    invalid = [(number, text) for number, text in parsed.invalid if text != ""]
    summary.records += num_rows + len(invalid)
    columns = {name: table.column(name).combine_chunks() for name in c.CONTRACT_FIELDS if name in rows.index}
    accepted, id_ok = fastcsv.prefilter(columns, num_rows)
    lines = pc.add(fastcsv.table_row_lines(num_rows, [number for number, _ in parsed.invalid]), base)
    line_numbers = lines.to_numpy(zero_copy_only=False)

    # Duplicates, in line order, over every row whose id is well formed.
    occurrences = np.flatnonzero(id_ok.to_numpy(zero_copy_only=False))
    duplicate = np.zeros(num_rows, dtype=bool)
    if len(occurrences):
        ids = pc.take(columns[c.TRANSACTION_ID], pa.array(occurrences))
        duplicate[occurrences] = recorder.check_keys(ids, line_numbers[occurrences])
    good = accepted.to_numpy(zero_copy_only=False) & ~duplicate

    # Valid rows: counts and exact totals.
    good_mask = pa.array(good)
    kept = table.filter(good_mask) if not good.all() else table
    summary.valid += kept.num_rows
    for currency, (count, minor) in fastcsv.minor_totals(
        kept.column(c.AMOUNT).combine_chunks(), kept.column(c.CURRENCY).combine_chunks()
    ).items():
        summary.valid_totals.add(currency=currency, rows=count, minor_units=minor)

    # In line order: runs of valid rows between the rows that need the rules one at a time.
    staging = staging_table(table, lines, has_description=rows.has_description) if recorder.wants_valid else None
    events: list[tuple[int, int, list]] = []
    flagged = np.flatnonzero(~good).tolist()
    if flagged:
        picked = table.take(pa.array(flagged, pa.int64()))
        values = list(zip(*(picked.column(name).to_pylist() for name in rows.header), strict=True))
        events.extend((int(line_numbers[k]), k, list(row)) for k, row in zip(flagged, values, strict=True))
    events.extend((base + number, -1, text.split(",")) for number, text in invalid)
    events.sort(key=lambda event: event[0])
    start = 0
    for line, k, row in events:
        if k < 0:
            rows.row(row, line)  # a row of the wrong width: malformed at once
            continue
        if staging is not None and k > start:
            recorder.valid_table(staging.slice(start, k - start))
        start = k + 1
        values_of_row, extras = rows.fields(row)
        recorder.decide(line=line, values=values_of_row, extras=extras, duplicate=bool(duplicate[k]))
    if staging is not None and num_rows > start:
        recorder.valid_table(staging.slice(start, num_rows - start))


def staging_table(table: pa.Table, lines: pa.Array, *, has_description: bool) -> pa.Table:
    """A parsed block's rows as STAGING_COLUMNS (only the accepted ones are ever handed on)."""
    empty = pa.nulls(table.num_rows, pa.string()).fill_null("")
    columns = [lines] + [table.column(name).combine_chunks() for name in c.REQUIRED_FIELDS]
    columns.append(table.column(c.DESCRIPTION).combine_chunks() if has_description else empty)
    columns.append(empty)
    return pa.Table.from_arrays(columns, schema=STAGING_SCHEMA)
