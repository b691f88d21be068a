"""CSV text cut into records the way RFC 4180 frames them, whatever the quoting, then parsed.

Python's csv.reader frames records line by line and, after an error (a field over its size limit,
text after a closing quote, a lone CR), starts again at the next physical line: text inside quotes
could then be read as rows, and a stray quote could swallow the rows after it. Here a record ends
at the first LF outside quotes, where a quote opens a quoted section only at the start of a field
and text after a closing quote stays in the field (the record is then malformed, but stays one
record). csv.reader only parses records already framed, one at a time.

Framing and the validity check are regular expressions that never backtrack (possessive): time is
linear in the text, and memory is the record at most. A record longer than the contract's
MAX_RECORD_BYTES is read past as it arrives (``streams.Oversized``), by a character state machine.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterable, Iterator

from handlers.logic import contract as c
from handlers.logic.streams import Oversized, utf8_size

# A record is framed here, so csv's per-field limit no longer guards anything; left in place it
# would make a long field a parse error instead of one (too long) field.
csv.field_size_limit(sys.maxsize)

BLANK_RECORDS = ("\n", "\r\n")
Record = str | Oversized

# Every quantifier possessive: the grammar never needs to backtrack, and a possessive repeat keeps
# no backtracking state, so memory stays flat however many fields a record has (a greedy one kept
# about 270 bytes per character of a record of commas).
_QUOTED = r'"[^"]*+(?:""[^"]*+)*+'  # an opening quote and the quoted text, "" as an escaped quote
# Framing, lenient: a record always ends somewhere. Group 1 is the LF that ends it ("" at the end
# of the text, where the record may go on in text not read yet).
_FRAME_FIELD = rf'(?:{_QUOTED}(?:"|\Z))?+[^,\n]*+'
_FRAME = re.compile(rf"{_FRAME_FIELD}(?:,{_FRAME_FIELD})*+(\n|\Z)")
# Validity, strict RFC 4180: an unquoted field holds no quote and no CR or LF (a CR is only
# allowed right before the record's LF, or inside quotes).
_VALID_FIELD = rf'(?:{_QUOTED}"|[^",\r\n]*+)'
_VALID = re.compile(rf"{_VALID_FIELD}(?:,{_VALID_FIELD})*+(?:\r?\n)?")


def newlines(record: Record) -> int:
    """The LFs in a record: the physical lines it spans, less one."""
    return record.newlines if isinstance(record, Oversized) else record.count("\n")


class _Next:
    """The next position of one character at or after a position, remembered until passed: each
    character of the text is scanned once however often it is asked for."""

    __slots__ = ("text", "char", "at")

    def __init__(self, text: str, char: str) -> None:
        self.text, self.char, self.at = text, char, -1

    def after(self, position: int) -> int:
        if self.at < position:
            found = self.text.find(self.char, position)
            self.at = len(self.text) if found < 0 else found
        return self.at


class Framer:
    """Records from text in pieces, one character state machine that walks from quote to quote and
    LF to LF: the framing state (inside a quoted section, at the start of a field, a quote at the
    very end of a piece that the next may escape) carries over from piece to piece, so a record's
    text is read once. A record grows until it ends or passes MAX_RECORD_BYTES; past it, it is an
    ``Oversized`` and its text is dropped as it comes. RecordSplitter hands it only such records."""

    def __init__(self) -> None:
        self._parts: list[str] = []  # the open record's text, while within the limit
        self._chars = 0
        self._over: Oversized | None = None  # the open record, once past the limit
        self._quoted = False
        self._field_start = True
        self._quote_pending = False

    @property
    def idle(self) -> bool:
        """No text waiting: the next piece starts a record."""
        return not self._parts and self._over is None

    def push(self, text: str) -> list[Record]:
        records: list[Record] = []
        n = len(text)
        quotes, lfs = _Next(text, '"'), _Next(text, "\n")
        quoted, field_start, pending = self._quoted, self._field_start, self._quote_pending
        start = p = 0
        while p < n:
            if quoted:
                if pending:  # a quote ended the last piece: escaped by this one's first, or closing
                    pending = False
                    if text[p] == '"':
                        p += 1
                    else:
                        quoted = field_start = False
                    continue
                q = quotes.after(p)
                if q == n:
                    break
                if q + 1 == n:
                    pending = True
                    break
                if text[q + 1] == '"':  # "" inside quotes
                    p = q + 2
                else:
                    quoted = field_start = False
                    p = q + 1
                continue
            lf, q = lfs.after(p), quotes.after(p)
            if q < lf:
                # Text from p to q holds no quote or LF: q starts a field when a comma precedes it.
                quoted = (field_start and q == p) or (q > p and text[q - 1] == ",")
                field_start = False
                p = q + 1
                continue
            if lf == n:
                field_start = text[n - 1] == "," if n > p else field_start
                break
            records.append(self._record(text, start, lf + 1))
            start = p = lf + 1
            field_start = True
        self._quoted, self._field_start, self._quote_pending = quoted, field_start, pending
        if start < n:
            self._keep(text[start:] if start else text)
        return records

    def _record(self, text: str, start: int, end: int) -> Record:
        """The record that ends at ``end`` of ``text``; its earlier pieces are waiting."""
        if self._over is not None:
            over, self._over = self._over, None
            over.add(text[start:end])
            return over
        if self._parts:
            self._keep(text[start:end])
            if self._over is not None:
                over, self._over = self._over, None
                return over
            record = "".join(self._parts)
            self._parts, self._chars = [], 0
        else:
            record = text[start:end]
        return _bounded(record)

    def _keep(self, text: str) -> None:
        if self._over is not None:
            self._over.add(text)
            return
        self._parts.append(text)
        self._chars += len(text)
        if self._chars > c.MAX_RECORD_BYTES:  # a character is at least a byte: too long already
            self._over = Oversized()
            for part in self._parts:
                self._over.add(part)
            self._parts, self._chars = [], 0

    def take_rest(self) -> str | None:
        """The text waiting (the start of a record not ended yet), handed back, and the splitter
        reset; None when that record is already past the limit (nothing can be handed back)."""
        if self._over is not None:
            return None
        rest = "".join(self._parts)
        self.__init__()
        return rest

    def finish(self) -> list[Record]:
        """The last record, if the text ended without its LF."""
        if self._over is not None:
            over = self._over
            self.__init__()
            return [over]
        rest = "".join(self._parts)
        self.__init__()
        return [_bounded(rest)] if rest else []


class RecordSplitter:
    """Records (their text, line end included) from text that arrives in chunks cut anywhere.

    Records are cut by the framing regex. A record still open at the end of the text read so far
    is scanned again, from its start, only once the text waiting has doubled: a field of any length
    costs linear time. Once the waiting text passes MAX_RECORD_BYTES, the record is handed to a
    ``Framer``, which reads past it without holding it, and the regex takes over after it."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._rescan_at = 0
        self._framer: Framer | None = None

    @property
    def idle(self) -> bool:
        """No text waiting: the next chunk starts a record."""
        return not self._size and self._framer is None

    def push(self, chunk: str) -> list[Record]:
        if self._framer is not None:
            return self._through_framer(chunk)
        self._parts.append(chunk)
        self._size += len(chunk)
        if self._size < self._rescan_at:
            return []
        records, rest = _cut("".join(self._parts), final=False)
        self._parts, self._size, self._rescan_at = ([rest] if rest else []), len(rest), 2 * len(rest)
        if self._size > c.MAX_RECORD_BYTES:  # a character is at least a byte: too long already
            self._parts, self._size, self._rescan_at = [], 0, 0
            self._framer = Framer()
            records.extend(self._through_framer(rest))
        return records

    def _through_framer(self, chunk: str) -> list[Record]:
        framer = self._framer
        records = framer.push(chunk)  # type: ignore[union-attr]
        if framer._over is None:  # type: ignore[union-attr]  # past the long record: the regex again
            self._framer = None
            rest = framer.take_rest()  # type: ignore[union-attr]
            if rest:
                records.extend(self.push(rest))
        return records

    def take_rest(self) -> str | None:
        """The text waiting (the start of a record not ended yet), handed back, and the splitter
        reset; None when that record is already past the limit (nothing can be handed back)."""
        if self._framer is not None:
            return None
        rest = "".join(self._parts)
        self.__init__()
        return rest

    def finish(self) -> list[Record]:
        if self._framer is not None:
            records = self._framer.finish()
            self.__init__()
            return records
        records, _ = _cut(self.take_rest() or "", final=True)
        return records


def _cut(text: str, *, final: bool) -> tuple[list[Record], str]:
    """(whole records, the rest). Unless ``final``, a record not ended by an LF is the rest."""
    records: list[Record] = []
    for match in _FRAME.finditer(text):
        start, end = match.span()
        if start == end or (not final and not match.group(1)):
            return records, text[start:]
        records.append(_bounded(text[start:end]))
    return records, ""


def _bounded(record: str) -> Record:
    if len(record) * 4 <= c.MAX_RECORD_BYTES or utf8_size(record) <= c.MAX_RECORD_BYTES:
        return record
    over = Oversized()
    over.add(record)
    return over


def split_records(chunks: Iterable[str]) -> Iterator[Record]:
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
