"""Any chunking gives the answers of one chunk, and the plan cuts only at record boundaries.

The plan's framer (numpy, handlers/logic/planning.py) is checked against the per-record framing
of csvrecords on random bytes, quotes and all; the chunked job (plan, chunks, duplicate step,
second pass) against validation in one piece, on random files and random chunk sizes.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.errors import UnreadableFileError
from handlers.logic.csvrecords import BLANK_RECORDS, split_records
from handlers.logic.planning import plan_source
from tests.handlers.chunked import chunked_result

HEADER = "transaction_id,account_id,booked_at,amount,currency,direction,description"
PIECES = [b"a", b",", b'"', b"\n", b"\r", b'""', b'x"y', b"\r\n", b"\n\n", b'"a\nb"', b"\xe9"]


def _records(data: bytes) -> list[str]:
    return list(split_records([data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")]))


@settings(max_examples=400, deadline=None)
@given(
    body=st.lists(st.sampled_from(PIECES), max_size=50),
    bom=st.booleans(),
    chunk_bytes=st.integers(1, 40),
    block=st.integers(1, 25),
)
def test_the_plan_cuts_where_records_end(body, bom, chunk_bytes, block):
    data = (b"\xef\xbb\xbf" if bom else b"") + HEADER.encode() + b"\n" + b"".join(body)
    try:
        plan = plan_source(
            (data[i : i + block] for i in range(0, len(data), block)), fmt="csv", chunk_bytes=chunk_bytes
        )
    except UnreadableFileError:
        assert not [r for r in _records(data)[1:] if r not in BLANK_RECORDS]
        return
    records = _records(data)
    bounds, position = set(), 3 if bom else 0
    for record in records:
        position += len(record.encode("utf-8", "surrogateescape"))
        bounds.add(position)
    assert plan.records == len([r for r in records[1:] if r not in BLANK_RECORDS])
    assert plan.chunks[-1].end == len(data)
    for chunk, following in zip(plan.chunks, plan.chunks[1:], strict=False):
        assert chunk.end == following.start
    for chunk in plan.chunks:
        assert chunk.start in bounds and chunk.end in bounds
        assert chunk.first_line == 1 + data[: chunk.start].count(b"\n")
        assert chunk.records == len([r for r in _records(data[chunk.start : chunk.end]) if r not in BLANK_RECORDS])


GOOD = "{id},ACC1,2024-03-0{day}T10:00:00Z,{amount},USD,{direction},row"
ROWS = st.one_of(
    st.builds(
        lambda n, day, cents, debit: GOOD.format(
            id=f"T{n}", day=day, amount=f"{cents // 100}.{cents % 100:02d}", direction="DEBIT" if debit else "CREDIT"
        ),
        st.integers(0, 12),  # few ids: duplicates within and across chunks
        st.integers(1, 3),
        st.integers(0, 10**6),
        st.booleans(),
    ),
    st.sampled_from(
        [
            'T50,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,"a quoted\nline break, and ""quotes"""',
            'T51,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,"' + "y" * 300 + '\nT52,ACC1,fake,row"',
            "T53,ACC1,2024-03-01T10:00:00Z,1.001,USD,DEBIT,precision",
            "T54,acc1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,account",
            "T3,ACC1,2024-03-01T10:00:00Z,1.00,USD",  # too few columns: no occurrence of T3
            'T4,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,say "hi"',  # broken quoting
            "T5,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,caf\udce9",  # undecodable byte
            "T6,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,a\rb",  # lone CR
            "",
        ]
    ),
)


def _csv(rows: list[str], newline: str) -> bytes:
    return (newline.join([HEADER, *rows]) + newline).encode("utf-8", "surrogateescape")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROWS, min_size=1, max_size=40), newline=st.sampled_from(["\n", "\r\n"]), data=st.data())
def test_any_chunking_gives_the_answers_of_one_chunk_csv(rows, newline, data):
    source = _csv(rows, newline)
    try:
        whole = chunked_result(source, fmt="csv", chunk_bytes=len(source) + 1)
    except UnreadableFileError:
        return  # no rows at all: unreadable whatever the chunking (covered elsewhere)
    chunk_bytes = data.draw(st.integers(1, len(source)), label="chunk_bytes")
    assert chunked_result(source, fmt="csv", chunk_bytes=chunk_bytes) == whole


JSON_ROWS = st.one_of(
    st.builds(
        lambda n, cents: json.dumps(
            {
                "transaction_id": f"J{n}",
                "account_id": "ACC1",
                "booked_at": "2024-03-01T10:00:00Z",
                "amount": f"{cents // 100}.{cents % 100:02d}",
                "currency": "EUR",
                "direction": "CREDIT",
                "note": "kept",
            }
        ),
        st.integers(0, 9),
        st.integers(0, 10**6),
    ),
    st.sampled_from(['{"transaction_id": "J1", "broken"', "[1, 2]", "   ", '{"transaction_id": "J2", "amount": 1.5}']),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(JSON_ROWS, min_size=1, max_size=30), data=st.data())
def test_any_chunking_gives_the_answers_of_one_chunk_jsonl(rows, data):
    source = ("\n".join(rows) + "\n").encode()
    try:
        whole = chunked_result(source, fmt="jsonl", chunk_bytes=len(source) + 1)
    except UnreadableFileError:
        return
    chunk_bytes = data.draw(st.integers(1, len(source)), label="chunk_bytes")
    assert chunked_result(source, fmt="jsonl", chunk_bytes=chunk_bytes) == whole


def test_chunks_on_two_processes_give_the_same_report(tmp_path):
    rows = [GOOD.format(id=f"T{n % 700}", day=1 + n % 3, amount=f"{n}.00", direction="DEBIT") for n in range(2000)]
    source = _csv(rows, "\n")
    whole = chunked_result(source, fmt="csv", chunk_bytes=len(source) + 1)
    assert chunked_result(source, fmt="csv", chunk_bytes=4096, jobs=2) == whole
    assert whole[0]["reasons"] == {"DUPLICATE_ID": 1300}
