"""CSV text cut into records the way RFC 4180 frames them, whatever the quoting, then parsed.

Python's csv.reader frames records line by line and, after an error (a field over its size limit,
text after a closing quote, a lone CR), starts again at the next physical line: text inside quotes
could then be read as rows, and a stray quote could swallow the rows after it. Here a record ends
at the first LF outside quotes, where a quote opens a quoted section only at the start of a field
and text after a closing quote stays in the field (the record is then malformed, but stays one
record). csv.reader only parses records already framed, one at a time.

Framing and the validity check walk from quote to quote and line end to line end with str.find,
never backtracking: time is linear in the text, and memory is the record at most. A record longer
than the contract's MAX_RECORD_BYTES is read past as it arrives (``streams.Oversized``).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator

from handlers.logic import contract as c
from handlers.logic.streams import Oversized, utf8_size

# A record is framed here, so csv's per-field limit no longer guards anything; left in place it
# would make a long field a parse error instead of one (too long) field.
csv.field_size_limit(sys.maxsize)

BLANK_RECORDS = ("\n", "\r\n")
Record = str | Oversized


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


class RecordSplitter:
    """Records (their text, line end included) from text that arrives in pieces cut anywhere.

    The framing state (inside a quoted section, at the start of a field, a quote at the very end
    of a piece that the next piece may escape) carries over from piece to piece, so the text of a
    record is read once. A record grows until it ends or passes MAX_RECORD_BYTES; past it, the
    record is an ``Oversized`` and its text is dropped as it comes."""

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


def _valid(text: str) -> bool:
    """Strict RFC 4180, from quote to quote: an unquoted field holds no quote and no CR (a CR is
    allowed only right before the record's LF, or inside quotes); a quoted field is followed by a
    comma or the record's end; no quote is left open."""
    body = text[:-1] if text.endswith("\n") else text
    if text.endswith("\n") and body.endswith("\r"):
        body = body[:-1]
    n, p = len(body), 0
    while True:
        q = body.find('"', p)
        if q < 0:
            return body.find("\r", p) < 0
        if body.find("\r", p, q) >= 0 or (q > 0 and body[q - 1] != ","):
            return False
        close = q + 1
        while True:
            close = body.find('"', close)
            if close < 0:
                return False
            if close + 1 < n and body[close + 1] == '"':
                close += 2
                continue
            break
        if close + 1 == n:
            return True
        if body[close + 1] != ",":
            return False
        p = close + 2


def parse_record(text: str) -> list[str] | None:
    """The fields of one framed record; [] for a blank line; None if the record breaks RFC 4180
    (a quote inside an unquoted field, text after a closing quote, a CR outside quotes that does
    not end the line, a quote left open at the end of the file)."""
    if '"' not in text:
        body = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
        if "\r" in body:
            return None
        return body.split(",") if body else []
    if not _valid(text):
        return None
    return next(csv.reader((text,), strict=True))
