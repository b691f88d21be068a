"""CSV text cut into records the way RFC 4180 frames them, whatever the quoting, then parsed.

Python's csv.reader frames records line by line and, after an error (a field over its size limit,
text after a closing quote, a lone CR), starts again at the next physical line: text inside quotes
could then be read as rows, and a stray quote could swallow the rows after it. Here a record ends
at the first LF outside quotes, where a quote opens a quoted section only at the start of a field
and text after a closing quote stays in the field (the record is then malformed, but stays one
record). csv.reader only parses records already framed, one at a time.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterable, Iterator

# A record is framed here, so csv's per-field limit no longer guards anything; left in place it
# would make a long field a parse error instead of one (too long) field.
csv.field_size_limit(sys.maxsize)

_QUOTED = r'"[^"]*(?:""[^"]*)*'  # an opening quote and the quoted text, "" as an escaped quote
# Framing, lenient: a record always ends somewhere. Group 1 is the LF that ends it ("" at the end
# of the text, where the record may go on in text not read yet).
_FRAME_FIELD = rf'(?:{_QUOTED}(?:"|\Z))?[^,\n]*'
_FRAME = re.compile(rf"{_FRAME_FIELD}(?:,{_FRAME_FIELD})*(\n|\Z)")
# Validity, strict RFC 4180: an unquoted field holds no quote and no CR or LF (a CR is only
# allowed right before the record's LF, or inside quotes).
_VALID_FIELD = rf'(?:{_QUOTED}"|[^",\r\n]*)'
_VALID = re.compile(rf"{_VALID_FIELD}(?:,{_VALID_FIELD})*(?:\r?\n)?")

BLANK_RECORDS = ("\n", "\r\n")


def _cut(text: str, *, final: bool) -> tuple[list[str], str]:
    """(whole records, the rest). Unless ``final``, a record not ended by an LF is the rest."""
    records: list[str] = []
    for match in _FRAME.finditer(text):
        start, end = match.span()
        if start == end or (not final and not match.group(1)):
            return records, text[start:]
        records.append(text[start:end])
    return records, ""


class RecordSplitter:
    """Records (their text, line end included) from text that arrives in chunks cut anywhere.

    A record still open at the end of the text read so far is scanned again, from its start, only
    once the text waiting has doubled: a field of any length costs linear time."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._rescan_at = 0

    @property
    def idle(self) -> bool:
        """No text waiting: the next chunk starts a record."""
        return not self._size

    def push(self, chunk: str) -> list[str]:
        self._parts.append(chunk)
        self._size += len(chunk)
        if self._size < self._rescan_at:
            return []
        records, rest = _cut("".join(self._parts), final=False)
        self._parts, self._size, self._rescan_at = ([rest] if rest else []), len(rest), 2 * len(rest)
        return records

    def take_rest(self) -> str:
        """The text waiting (the start of a record not ended yet), handed back; the splitter is reset."""
        rest = "".join(self._parts)
        self._parts, self._size, self._rescan_at = [], 0, 0
        return rest

    def finish(self) -> list[str]:
        records, _ = _cut(self.take_rest(), final=True)
        return records


def split_records(chunks: Iterable[str]) -> Iterator[str]:
    splitter = RecordSplitter()
    for chunk in chunks:
        yield from splitter.push(chunk)
    yield from splitter.finish()


def parse_record(text: str) -> list[str] | None:
    """The fields of one framed record; [] for a blank line; None if the record breaks RFC 4180
    (a quote inside an unquoted field, text after a closing quote, a CR outside quotes that does
    not end the line, a quote left open at the end of the file)."""
    if '"' not in text:
        body = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
        if "\r" in body:
            return None
        return body.split(",") if body else []
    if _VALID.fullmatch(text) is None:
        return None
    return next(csv.reader((text,), strict=True))
