"""JSON Lines: one JSON object per line (lines end at LF; a CR is JSON whitespace)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import TextIO

from handlers.errors import UnreadableFileError
from handlers.logic import contract as c
from handlers.logic.csv_rows import text_blocks
from handlers.logic.recorder import ANY_SURROGATE, Recorder

JSON_WHITESPACE = " \t\r\n"


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("object repeats a key")
    return result


def _json_int(text: str) -> int | Decimal:
    """An integer beyond Python's int-to-str digit limit is kept exact as a Decimal, which
    json_text can still write back; it is not valid for any contract field either way."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _holds_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return ANY_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_holds_surrogate, value))
    return False


def lf_lines(text: TextIO) -> Iterator[str]:
    """Lines ended by LF only, without it: a CR is JSON whitespace, not a line break."""
    parts: list[str] = []
    for chunk in text_blocks(text):
        if "\n" not in chunk:
            parts.append(chunk)
            continue
        lines = chunk.split("\n")
        if parts:
            lines[0] = "".join(parts) + lines[0]
        parts = [lines.pop()]
        yield from lines
    rest = "".join(parts)
    if rest:
        yield rest


def jsonl_records(text: TextIO, *, first_line: int = 1, first_record: bool = True) -> Iterator[tuple[int, str]]:
    """(line, stripped text) of every non-blank line. With ``first_record`` (the stream holds the
    file's first record) that record must be UTF-8, or the file cannot be read at all."""
    for line, raw_line in enumerate(lf_lines(text), start=first_line):
        stripped = raw_line.strip(JSON_WHITESPACE)
        if not stripped:
            continue
        if first_record and not stripped.isascii() and c.UNDECODABLE.search(stripped):
            raise UnreadableFileError("file is not UTF-8: the first record holds undecodable bytes")
        first_record = False
        yield line, stripped


def parse_json_object(stripped: str) -> tuple[dict | None, str]:
    """(the object, "") or (None, why the line is MALFORMED_ROW)."""
    if not stripped.isascii() and c.UNDECODABLE.search(stripped):
        return None, "line holds bytes that are not valid UTF-8"
    try:
        # Decimal, not float: a JSON number is rejected anyway, but must not be rounded in quarantine.
        obj = json.loads(
            stripped,
            object_pairs_hook=_reject_duplicate_keys,
            parse_float=Decimal,
            parse_int=_json_int,
            parse_constant=_not_json,
        )
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(obj, dict):
        return None, f"JSON value is a {type(obj).__name__}, not an object"
    if "\\u" in stripped and _holds_surrogate(obj):
        return None, "a string holds an escaped lone surrogate (such as \\ud800): not Unicode text"
    return obj, ""


def validate_jsonl(text: TextIO, recorder: Recorder, *, first_line: int, first_record: bool) -> None:
    for line, stripped in jsonl_records(text, first_line=first_line, first_record=first_record):
        recorder.summary.records += 1
        obj, problem = parse_json_object(stripped)
        if obj is None:
            recorder.malformed(line=line, detail=problem, raw=stripped)
            continue
        values = {name: obj.get(name) for name in c.CONTRACT_FIELDS}
        extras = {name: value for name, value in obj.items() if name not in c.CONTRACT_FIELDS}
        if extras:
            recorder.note_unknown(extras)
        recorder.submit(line=line, values=values, extras=extras)
