"""CSV one record at a time: the header, and every row the vectorized path does not take.

Records are framed by ``csvrecords`` (RFC 4180; broken quoting is one MALFORMED_ROW however many
lines it spans) and their fields go to the contract rules (``rules``) through the recorder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TextIO

from handlers.errors import UnreadableFileError
from handlers.logic import contract as c
from handlers.logic.csvrecords import Record, newlines, parse_record, split_records
from handlers.logic.recorder import Recorder
from handlers.logic.streams import Oversized

TEXT_BLOCK_CHARACTERS = 1 << 20


def read_header(text: Record | None) -> list[str]:
    """The header's column names from the first record's text, the file's BOM already stripped
    (None: no record at all)."""
    if text is None:
        raise UnreadableFileError("file is empty: no header row")
    if isinstance(text, Oversized):
        raise UnreadableFileError(f"the header row is longer than {c.MAX_RECORD_BYTES:,} bytes")
    header = parse_record(text)
    if header is None:
        raise UnreadableFileError("header row is not valid CSV (RFC 4180)")
    if not header or header == [""]:
        raise UnreadableFileError("no header row: the first line is blank")
    if header[0].startswith("\ufeff"):
        raise UnreadableFileError(
            "header row starts with a byte-order mark (U+FEFF) after the file's own: "
            "only the file's first bytes may be one"
        )
    if any(c.UNDECODABLE.search(name) for name in header):
        raise UnreadableFileError("file is not UTF-8: the header row holds undecodable bytes")
    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    if repeated:
        raise UnreadableFileError(f"header row repeats column(s) {', '.join(repeated)}")
    if not set(header) & set(c.CONTRACT_FIELDS):
        raise UnreadableFileError(
            "no header row: the first line names none of the contract columns " + ", ".join(c.CONTRACT_FIELDS)
        )
    return header


class CsvRows:
    """Rows of a CSV whose header is known, one at a time."""

    def __init__(self, header: list[str], recorder: Recorder) -> None:
        self.recorder = recorder
        self.header = header
        self.width = len(header)
        self.index = {name: position for position, name in enumerate(header)}
        self.unknown = [name for name in header if name not in c.CONTRACT_FIELDS]
        recorder.note_unknown(self.unknown)
        self.has_description = c.DESCRIPTION in self.index
        # Whether blocks of this file can be checked vectorized (fastcsv needs the contract's
        # columns and nothing else).
        self.vector_ok = all(name in self.index for name in c.REQUIRED_FIELDS) and not self.unknown

    def fields(self, row: list[str]) -> tuple[dict[str, object], dict[str, object]]:
        index = self.index
        values = {name: (row[index[name]] if name in index else None) for name in c.CONTRACT_FIELDS}
        extras = {name: row[index[name]] for name in self.unknown}
        return values, extras

    def row(self, row: list[str], line: int) -> None:
        if len(row) != self.width:
            self.recorder.malformed(line=line, detail=f"row has {len(row)} columns, header has {self.width}", raw=row)
            return
        values, extras = self.fields(row)
        self.recorder.submit(line=line, values=values, extras=extras)

    def text_record(self, text: Record, line: int) -> None:
        """One framed record: blank lines are not records; broken quoting, or a record past the
        size limit, is one MALFORMED_ROW."""
        if isinstance(text, Oversized):
            self.recorder.summary.records += 1
            self.recorder.malformed(line=line, detail=text.detail, raw=text.head)
            return
        row = parse_record(text)
        if row == []:
            return
        self.recorder.summary.records += 1
        if row is None:
            detail = "not valid CSV (RFC 4180): a quote or CR outside a quoted field, or a quote left open"
            self.recorder.malformed(line=line, detail=detail, raw=text)
            return
        self.row(row, line)


def numbered(records: Iterable[Record], *, first_line: int) -> Iterator[tuple[int, Record]]:
    """(line, record): line numbers are physical lines, ended by LF only (a lone CR is not one)."""
    line = first_line
    for text in records:
        yield line, text
        line += newlines(text)


def text_blocks(text: TextIO) -> Iterator[str]:
    return iter(lambda: text.read(TEXT_BLOCK_CHARACTERS), "")


def validate_csv_text(text: TextIO, recorder: Recorder, *, header: list[str] | None, first_line: int) -> None:
    """The decoded-text path (any TextIO): every record one at a time."""
    records = numbered(split_records(text_blocks(text)), first_line=first_line)
    if header is None:
        first = next(records, None)
        header = read_header(first and first[1])
    rows = CsvRows(header, recorder)
    for line, record in records:
        rows.text_record(record, line)
