"""JSON Lines: one JSON object per line (lines end at LF; a CR is JSON whitespace)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TextIO

from handlers.errors import UnreadableFileError
from handlers.logic import contract as c
from handlers.logic.csv_rows import text_blocks
from handlers.logic.recorder import ANY_SURROGATE, Recorder
from handlers.logic.streams import Oversized, utf8_size

JSON_WHITESPACE = " \t\r\n"
# JSON strings, escapes and all, matched possessively: no backtracking however long they are.
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("object repeats a key")
    return result


def _json_int(text: str) -> int | c.JsonNumber:
    """An integer beyond Python's int-to-str digit limit is kept as its text; it is not valid
    for any contract field either way."""
    try:
        return int(text)
    except ValueError:
        return c.JsonNumber(text)


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _holds_surrogate(value: object) -> bool:
    """Recursive, once per level: only for values within MAX_JSON_DEPTH."""
    if isinstance(value, str):
        return ANY_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_holds_surrogate, value))
    return False


def nesting_depth_exceeds(stripped: str, limit: int) -> bool:
    """Whether the line nests objects and arrays deeper than ``limit`` (brackets inside strings are
    text). Found before parsing, without recursion: json.loads, and every walk of what it returns,
    recurse once per level, and how deep they may go depends on the caller's stack."""
    if stripped.count("[") + stripped.count("{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", stripped)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def _bounded_line(line: str, *, ended: bool) -> str | Oversized:
    """The line, or an Oversized when it is longer than MAX_RECORD_BYTES (its LF included)."""
    if (len(line) + 1) * 4 <= c.MAX_RECORD_BYTES or utf8_size(line) + ended <= c.MAX_RECORD_BYTES:
        return line
    over = Oversized()
    over.add(line + ("\n" if ended else ""))
    return over


class _OpenLine:
    """The start of a line not ended yet: its text while within the limit, else an Oversized."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.chars = 0
        self.over: Oversized | None = None

    def add(self, text: str) -> None:
        if self.over is not None:
            self.over.add(text)
            return
        self.parts.append(text)
        self.chars += len(text)
        if self.chars > c.MAX_RECORD_BYTES:  # a character is at least a byte: too long already
            self.over = Oversized()
            for part in self.parts:
                self.over.add(part)
            self.parts, self.chars = [], 0

    def close(self, end: str, *, ended: bool) -> str | Oversized:
        """The whole line, ``end`` its last text (without the LF)."""
        over, parts = self.over, self.parts
        self.__init__()
        if over is not None:
            over.add(end + ("\n" if ended else ""))
            return over
        return _bounded_line("".join(parts) + end if parts else end, ended=ended)

    @property
    def empty(self) -> bool:
        return not self.parts and self.over is None


def lf_lines(text: TextIO) -> Iterator[str | Oversized]:
    """Lines ended by LF only, without it: a CR is JSON whitespace, not a line break. A line longer
    than MAX_RECORD_BYTES is an ``Oversized``, read past and never held whole."""
    open_line = _OpenLine()
    for chunk in text_blocks(text):
        lines = chunk.split("\n")
        last = lines.pop()
        for line in lines:
            yield open_line.close(line, ended=True)
        if last:
            open_line.add(last)
    if not open_line.empty:
        yield open_line.close("", ended=False)


def jsonl_records(
    text: TextIO, *, first_line: int = 1, first_record: bool = True
) -> Iterator[tuple[int, str | Oversized]]:
    """(line, stripped text) of every non-blank line. With ``first_record`` (the stream holds the
    file's first record) that record must be UTF-8, or the file cannot be read at all."""
    for line, raw_line in enumerate(lf_lines(text), start=first_line):
        if isinstance(raw_line, Oversized):
            if not raw_line.content:
                continue
            undecodable, stripped = raw_line.undecodable, raw_line
        else:
            stripped = raw_line.strip(JSON_WHITESPACE)
            if not stripped:
                continue
            undecodable = not stripped.isascii() and c.UNDECODABLE.search(stripped) is not None
        if first_record and undecodable:
            raise UnreadableFileError("file is not UTF-8: the first record holds undecodable bytes")
        first_record = False
        yield line, stripped


def parse_json_object(stripped: str) -> tuple[dict | None, str]:
    """(the object, "") or (None, why the line is MALFORMED_ROW)."""
    if not stripped.isascii() and c.UNDECODABLE.search(stripped):
        return None, "line holds bytes that are not valid UTF-8"
    if nesting_depth_exceeds(stripped, c.MAX_JSON_DEPTH):
        return None, f"nests objects and arrays deeper than {c.MAX_JSON_DEPTH} levels"
    try:
        # Numbers as their text: a JSON number is rejected anyway, but quarantine keeps it exact.
        obj = json.loads(
            stripped,
            object_pairs_hook=_reject_duplicate_keys,
            parse_float=c.JsonNumber,
            parse_int=_json_int,
            parse_constant=_not_json,
        )
    except ValueError as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(obj, dict):
        return None, f"JSON value is a {type(obj).__name__}, not an object"
    if "\\u" in stripped and _holds_surrogate(obj):
        return None, "a string holds an escaped lone surrogate (such as \\ud800): not Unicode text"
    return obj, ""


def validate_jsonl(text: TextIO, recorder: Recorder, *, first_line: int, first_record: bool) -> None:
    for line, stripped in jsonl_records(text, first_line=first_line, first_record=first_record):
        recorder.summary.records += 1
        if isinstance(stripped, Oversized):
            recorder.malformed(line=line, detail=stripped.detail, raw=stripped.head)
            continue
        obj, problem = parse_json_object(stripped)
        if obj is None:
            recorder.malformed(line=line, detail=problem, raw=stripped)
            continue
        values = {name: obj.get(name) for name in c.CONTRACT_FIELDS}
        extras = {name: value for name, value in obj.items() if name not in c.CONTRACT_FIELDS}
        if extras:
            recorder.note_unknown(extras)
        recorder.submit(line=line, values=values, extras=extras)
