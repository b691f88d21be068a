"""Fuzz: random files built from the contract's tricky pieces, in both formats, checked under several
chunk and block sizes (issue 25).

For every file: the same report and rejects at every chunking and block size; no exception but
UnreadableFileError (the job fails), and then at every chunking; the verdicts of the plain
reference (tests/handlers/reference.py); and the peak memory of the longest records bounded by
the record limit, not by their length.

The record and nesting limits are made small here (contract.MAX_RECORD_BYTES, MAX_JSON_DEPTH) so
that records past them are cheap to build; test_hostile_input.py checks the real ones. Examples
that fail are kept in tests/handlers/fuzz-examples (committed): a case found once is replayed
first on every run after, a regression test of its own.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tracemalloc
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from handlers.errors import UnreadableFileError
from handlers.logic import contract, csv_blocks, csv_rows, localjob, streams
from handlers.logic.planning import plan_source
from handlers.logic.streams import CountingReader, open_text
from handlers.logic.validation import validate_text
from tests.handlers.chunked import chunked_result
from tests.handlers.reference import UNREADABLE, reference_verdicts

settings.register_profile(
    "fuzz",
    database=DirectoryBasedExampleDatabase(os.path.join(os.path.dirname(__file__), "fuzz-examples")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("fuzz")
# Examples per format in `make test` (25-55 s in all on a loaded 2-core machine); FUZZ_EXAMPLES=5000 for a deep run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))

MAX_RECORD = 300  # bytes: the limit while fuzzing
MAX_DEPTH = 4
HEADER = "transaction_id,account_id,booked_at,amount,currency,direction,description"
BOM = "\ufeff"
UNDECODABLE = ["\udce9", "\udcff", "\udcc3"]  # bytes that are not UTF-8, as surrogateescape reads them


@contextlib.contextmanager
def sizes(*, block: int, text: int, scan: int):
    """Small limits, and the stream read in pieces of these sizes (bytes for the CSV blocks and the
    plan's scan, characters for decoded text)."""
    with (
        mock.patch.object(contract, "MAX_RECORD_BYTES", MAX_RECORD),
        mock.patch.object(contract, "MAX_JSON_DEPTH", MAX_DEPTH),
        mock.patch.object(csv_blocks, "BLOCK_BYTES", block),
        mock.patch.object(csv_rows, "TEXT_BLOCK_CHARACTERS", text),
        mock.patch.object(streams, "READ_BUFFER_BYTES", max(block, 8)),
        mock.patch.object(localjob, "SCAN_BLOCK_BYTES", scan),
    ):
        yield


# ---------------------------------------------------------------------------------- the pieces

GOOD_CSV = "{id},ACC1,2024-03-01T10:00:00Z,{amount},USD,DEBIT,{description}"
CSV_PIECES = [
    ",", '"', '""', "\n", "\r", "\r\n", "\x00", "\x85", "\u2028", BOM, " ", "x", "T1", '"a,b"', '"a\nb"',
    "é", *UNDECODABLE, "x" * (MAX_RECORD // 2), "," * (MAX_RECORD // 3),
]  # fmt: skip
CSV_FIELDS = [
    "T1", "T2", "T3", BOM + "T1", "T\x001", "ACC1", "2024-03-01T10:00:00Z", "1.00", "1.001", "USD", "DEBIT",
    "", '"quoted"', '"T1"', '"with ""quotes"""', '"a\r\nb"', "a\rb", 'say "hi"', '"open', "\x85", "\u2028",
    "x" * (MAX_RECORD + 1), "é" * (MAX_RECORD // 2),
]  # fmt: skip


def _csv_row(draw) -> str:
    kind = draw(st.integers(0, 9))
    if kind < 4:  # a well-formed row, ids from a few (duplicates), a piece at its start or in its description
        return draw(st.sampled_from(["", "", "", BOM, "\x00", " "])) + GOOD_CSV.format(
            id=draw(st.sampled_from(["T1", "T2", "T3", "T4"])),
            amount=draw(st.sampled_from(["1.00", "2.5", "1.001", "x"])),
            description=draw(st.sampled_from(["d", "", "caf\u00e9", '"q,\n"', *UNDECODABLE, "\u2028", "\x85"])),
        )
    if kind < 7:  # seven fields from the tricky ones
        return ",".join(draw(st.lists(st.sampled_from(CSV_FIELDS), min_size=6, max_size=8)))
    return "".join(draw(st.lists(st.sampled_from(CSV_PIECES), max_size=12)))


@st.composite
def csv_files(draw) -> bytes:
    start = draw(st.sampled_from(["", "", "", "", BOM, BOM, BOM + BOM]))
    header = draw(st.sampled_from([HEADER, HEADER, HEADER + ",note", '"transaction_id",' + HEADER[15:], HEADER + "\r"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    rows = [_csv_row(draw) for _ in range(draw(st.integers(1, 12)))]
    text = start + header + newline + newline.join(rows) + draw(st.sampled_from(["", newline]))
    return text.encode("utf-8", "surrogateescape")


def _nested(depth: int) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


JSON_VALUES = [
    "T1", "", None, True, 7, [1], {"a": "DEBIT"}, ["DEBIT"], "DEBIT", "USD", "1.00", "1.001",
    "2024-03-01T10:00:00Z", "\x85\u2028", BOM, "x" * MAX_RECORD, _nested(MAX_DEPTH), _nested(MAX_DEPTH + 3),
]  # fmt: skip
GOOD_JSON = {
    "transaction_id": "J1",
    "account_id": "ACC1",
    "booked_at": "2024-03-01T10:00:00Z",
    "amount": "1.00",
    "currency": "EUR",
    "direction": "CREDIT",
}
JSON_TEXTS = [
    '{"transaction_id": "J1", "transaction_id": "J2"}', '{"amount": 1e400, "x": NaN}', "[1, 2]", "{", '"s"',
    '{"transaction_id": "\\ud800"}', "  \t\r", "", BOM + json.dumps(GOOD_JSON), json.dumps(GOOD_JSON) + "\r",
    '{"a": "' + "[{" * 10 + '"}', "[" * 50 + "]" * 50, '{"a": "\\"' + "[" * 9 + '"}', "\x00",
]  # fmt: skip


def _json_line(draw) -> str:
    kind = draw(st.integers(0, 9))
    if kind < 6:  # an object: some fields replaced by tricky values, ids from a few (duplicates)
        record = dict(GOOD_JSON, transaction_id=draw(st.sampled_from(["J1", "J2", "J3"])))
        for name in draw(st.lists(st.sampled_from([*GOOD_JSON, "description", "extra"]), max_size=3)):
            record[name] = draw(st.sampled_from(JSON_VALUES))
        prefix = draw(st.sampled_from(["", "", "", BOM, "\r", "\x00"]))
        return prefix + json.dumps(record, ensure_ascii=draw(st.booleans()))
    if kind < 8:
        return draw(st.sampled_from(JSON_TEXTS))
    line = json.dumps(GOOD_JSON)
    cut = draw(st.integers(0, len(line)))
    return line[:cut] + draw(st.sampled_from([*UNDECODABLE, "\r", BOM, '"', "\\", "é"])) + line[cut:]


@st.composite
def jsonl_files(draw) -> bytes:
    start = draw(st.sampled_from(["", "", "", "", BOM, BOM, BOM + BOM]))
    lines = [_json_line(draw) for _ in range(draw(st.integers(1, 12)))]
    return (start + "\n".join(lines) + draw(st.sampled_from(["", "\n"]))).encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------- the checks


def whole(data: bytes, fmt: str):
    """(records, valid (line, id), rejects (line, id, reasons)) of the file in one stream, or
    UNREADABLE; the plan must count the same records."""
    valid, rejects = [], []
    try:
        text = open_text(CountingReader(io.BytesIO(data)))
        summary = validate_text(text=text, fmt=fmt, on_valid=valid.append, on_reject=rejects.append)
    except UnreadableFileError:
        # The plan refuses such a file too, except a JSON Lines file whose first record is not
        # UTF-8: the plan does not decode records, and the job fails at its first chunk.
        return UNREADABLE
    assert plan_source([data], fmt=fmt, chunk_bytes=len(data) + 1).records == summary.records
    return (
        summary.records,
        [(row[0], row[1]) for row in valid],
        [(r["line"], r["transaction_id"], r["reasons"]) for r in rejects],
    )


def chunked(data: bytes, fmt: str, chunk_bytes: int):
    try:
        return chunked_result(data, fmt=fmt, chunk_bytes=chunk_bytes)
    except UnreadableFileError:
        return UNREADABLE


def check(data: bytes, fmt: str, chunk_bytes: int, block: int) -> None:
    with sizes(block=1 << 20, text=1 << 20, scan=8 << 20):
        expected = reference_verdicts(data, fmt)
        result = whole(data, fmt)
        one_chunk = chunked(data, fmt, len(data) + 1)
    if expected == UNREADABLE:
        assert result == UNREADABLE and one_chunk == UNREADABLE
    else:
        assert result == (expected.records, expected.valid, expected.rejects)
        assert one_chunk[1] == expected.rejects and one_chunk[0]["valid"] == len(expected.valid)
    # Blocks, decoded text and the plan's scan in small pieces; chunks of any size.
    with sizes(block=block, text=block, scan=block):
        assert whole(data, fmt) == result, f"blocks of {block}"
        for size in sorted({chunk_bytes, 64}):
            assert chunked(data, fmt, size) == one_chunk, f"chunks of {size} bytes, blocks of {block}"


@settings(FUZZ, max_examples=EXAMPLES)
@given(data=csv_files(), chunk_bytes=st.integers(1, 200), block=st.sampled_from([1, 3, 16, 100]))
def test_csv_same_verdicts_at_every_chunking_and_as_the_reference(data, chunk_bytes, block):
    check(data, "csv", chunk_bytes, block)


@settings(FUZZ, max_examples=EXAMPLES)
@given(data=jsonl_files(), chunk_bytes=st.integers(1, 200), block=st.sampled_from([1, 3, 16, 100]))
def test_jsonl_same_verdicts_at_every_chunking_and_as_the_reference(data, chunk_bytes, block):
    check(data, "jsonl", chunk_bytes, block)


HOSTILE_CSV = [
    'T1,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,"quoted"' + ",",  # then commas
    'T1,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,"',  # a quote left open, then anything
    "T1,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,",  # one long unquoted field
]


@settings(FUZZ, max_examples=12)
@given(
    fmt=st.sampled_from(["csv", "jsonl"]),
    kind=st.integers(0, 2),
    fill=st.sampled_from([",", "x", "é", '""', "[", "\r"]),
    copies=st.sampled_from([4, 64]),
)
def test_peak_memory_per_record_is_bounded_by_the_limit(fmt, kind, fill, copies):
    """A record of ``copies`` times the limit costs what one at the limit costs: the peak of the
    Python heap while validating grows by less than a small multiple of the limit."""
    limit = 8 << 10

    def file_of(length: int) -> bytes:
        if fmt == "csv":
            body = HEADER + "\n" + HOSTILE_CSV[kind] + fill * (length // len(fill)) + "\n" + GOOD_CSV + "\n"
            return body.format(id="T2", amount="1.00", description="d").encode()
        record = json.dumps({**GOOD_JSON, "description": ""})[:-2] + fill * (length // len(fill)) + '"}'
        return (record + "\n" + json.dumps(GOOD_JSON) + "\n").encode()

    def peak(data: bytes) -> int:
        rejects: list[dict] = []
        with sizes(block=4096, text=4096, scan=4096), mock.patch.object(contract, "MAX_RECORD_BYTES", limit):
            tracemalloc.start()
            try:
                text = open_text(CountingReader(io.BytesIO(data)))
                validate_text(text=text, fmt=fmt, on_reject=rejects.append)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                assert [r["reasons"] for r in rejects] == [["MALFORMED_ROW"]]

    small, large = file_of(2 * limit), file_of(copies * limit)
    base, grown = peak(small), peak(large)
    assert grown - base < 8 * limit + (256 << 10), (len(large), base, grown)
