"""Issue 25, "Hostile input": every file gets a verdict, the same at every chunking, in bounded time
and memory. One test (or more) per class of finding; each failed before its fix.

Class -> tests:
BOM inside the file       test_csv_row_starting_with_bom_is_invalid_id_wherever_blocks_and_chunks_fall,
                          test_jsonl_line_starting_with_bom_is_malformed_wherever_chunks_fall,
                          test_two_boms_at_csv_start_are_refused
wrong JSON types          test_jsonl_values_of_the_wrong_type_get_the_fields_reason
deep JSON                 test_deep_json_is_one_malformed_record, test_json_within_the_depth_limit_is_read
wide header               test_wide_header_is_linear
long record               test_long_record_is_one_malformed_record_in_bounded_memory,
                          test_record_at_the_size_limit_is_read_and_one_past_it_is_rejected,
                          test_long_line_without_quotes_is_one_record_in_bounded_memory,
                          test_header_past_the_size_limit_is_refused_by_plan_and_validation
CLI report                test_cli_report_streams_to_its_file
JSON numbers              test_json_numbers_keep_their_exact_text_in_quarantine
/dev/stdin                test_cli_reads_dev_stdin_from_a_pipe
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import tracemalloc

import pytest

from handlers.errors import UnreadableFileError
from handlers.logic import contract as c
from handlers.logic import csv_blocks
from handlers.logic.planning import plan_source
from handlers.logic.recorder import json_text
from handlers.logic.streams import CountingReader, open_text
from handlers.logic.validation import validate_text
from pipeline_cli.main import main
from tests.handlers.chunked import chunked_result
from tests.handlers.conftest import HEADER
from tests.handlers.test_parsing_holes import both, counts, csv_file, jrow, row, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOM = "\ufeff"


def rejects_of(data: bytes, fmt: str = "csv") -> list[dict]:
    rejects: list[dict] = []
    validate_text(text=open_text(CountingReader(io.BytesIO(data))), fmt=fmt, on_reject=rejects.append)
    return rejects


def peak_mib(work) -> float:
    """Peak Python heap (MiB) while ``work()`` runs."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / (1 << 20)
    finally:
        tracemalloc.stop()


# --- a BOM inside the file ----------------------------------------------------------------------


def test_csv_row_starting_with_bom_is_invalid_id_wherever_blocks_and_chunks_fall(monkeypatch):
    first = HEADER + "\n" + row(1) + "\n"
    data = first + BOM + row(2) + "\n" + row(3) + "\n"
    expected = (3, 2, 1, {"INVALID_ID": 1}, {"valid": {"USD": "20.00"}, "rejected": {"USD": "10.00"}})
    report, valid, rejects = both(data)  # chunks of 7, 64 and 4096 bytes: one starts at the BOM row
    assert counts(report) == expected and rejects == [(3, BOM + "T2", ["INVALID_ID"])]
    assert valid == [(2, "T1"), (4, "T3")]
    # The chunk that starts right at the BOM row.
    raw = data.encode()
    assert chunked_result(raw, fmt="csv", chunk_bytes=len(row(1)) + 1)[1] == [(3, BOM + "T2", ["INVALID_ID"])]
    # A parse block that starts right at it (blocks are cut after the last line end of a read).
    monkeypatch.setattr(csv_blocks, "BLOCK_BYTES", len(first.encode()))
    assert counts(run(data)[0]) == expected


def test_jsonl_line_starting_with_bom_is_malformed_wherever_chunks_fall():
    lines = [jrow(transaction_id="J1"), BOM + jrow(transaction_id="J2"), jrow(transaction_id="J3")]
    data = "\n".join(lines) + "\n"
    report, valid, rejects = both(data, "jsonl")
    assert counts(report) == (3, 2, 1, {"MALFORMED_ROW": 1}, {"valid": {"USD": "2.00"}, "rejected": {}})
    assert rejects == [(2, None, ["MALFORMED_ROW"])] and valid == [(1, "J1"), (3, "J3")]
    # A chunk starting at the BOM line reads it as the whole file does.
    whole = chunked_result(data.encode(), fmt="jsonl", chunk_bytes=len(data) + 1)
    assert chunked_result(data.encode(), fmt="jsonl", chunk_bytes=len(lines[0]) + 1) == whole
    # Only the file's first bytes may be a BOM: one there is not part of the first record.
    report, valid, _ = both(BOM + data, "jsonl")
    assert counts(report)[:3] == (3, 2, 1) and valid == [(1, "J1"), (3, "J3")]


def test_two_boms_at_csv_start_are_refused(tmp_path, capsys):
    data = (BOM + BOM + csv_file(row(1), row(2))).encode()
    with pytest.raises(UnreadableFileError, match="byte-order mark"):
        rejects_of(data)
    with pytest.raises(UnreadableFileError, match="byte-order mark"):
        plan_source([data], fmt="csv", chunk_bytes=1 << 20)
    with pytest.raises(UnreadableFileError, match="byte-order mark"):  # the BOM split across blocks
        plan_source([data[i : i + 2] for i in range(0, len(data), 2)], fmt="csv", chunk_bytes=1 << 20)
    path = tmp_path / "two.csv"
    path.write_bytes(data)
    assert main(["validate", str(path)]) == 2
    assert "byte-order mark" in capsys.readouterr().err
    # One BOM is the file's own, whatever the blocks the plan reads it in.
    one = (BOM + csv_file(row(1))).encode()
    assert plan_source([one[i : i + 1] for i in range(len(one))], fmt="csv", chunk_bytes=1 << 20).records == 1


# --- JSON Lines values of the wrong type, and deep JSON ------------------------------------------

WRONG = [["DEBIT"], {"x": "DEBIT"}, 7, 1.5, True, False]
FIELD_REASON = {
    "transaction_id": "INVALID_ID",
    "account_id": "INVALID_ACCOUNT",
    "booked_at": "INVALID_TIMESTAMP",
    "amount": "INVALID_AMOUNT",
    "currency": "INVALID_CURRENCY",
    "direction": "INVALID_DIRECTION",
    "description": "MALFORMED_ROW",  # the contract: a non-string description is malformed
}


@pytest.mark.parametrize("field", sorted(FIELD_REASON))
def test_jsonl_values_of_the_wrong_type_get_the_fields_reason(field):
    lines = [jrow(**{"transaction_id": f"J{n}", field: value}) for n, value in enumerate(WRONG)]
    lines.append(jrow(**{"transaction_id": "J9", field: None}))
    report, _, rejects = both("\n".join(lines) + "\n", "jsonl")
    reason = FIELD_REASON[field]
    assert [r[2] for r in rejects[: len(WRONG)]] == [[reason]] * len(WRONG)
    # null: a required field is missing; an optional description is simply absent.
    missing = [(7, None if field == "transaction_id" else "J9", ["MISSING_FIELD"])]
    assert rejects[len(WRONG) :] == ([] if field == "description" else missing)
    assert report["records"] == len(WRONG) + 1


def nested(depth: int, leaf: str = '"x"') -> str:
    """A record whose unknown key ``deep`` nests objects and arrays: ``depth`` levels, the record's
    own object included."""
    inner = leaf
    for level in range(depth - 1):
        inner = f'{{"k": {inner}}}' if level % 2 else f"[{inner}]"
    return jrow(transaction_id="J2")[:-1] + f', "deep": {inner}}}'


def test_deep_json_is_one_malformed_record(tmp_path):
    lines = [jrow(transaction_id="J1"), nested(600), nested(600, leaf='"\\u00e9"'), jrow(transaction_id="J3")]
    lines.append(nested(c.MAX_JSON_DEPTH + 1))
    data = "\n".join(lines) + "\n"
    report, valid, rejects = both(data, "jsonl")
    assert counts(report) == (5, 2, 3, {"MALFORMED_ROW": 3}, {"valid": {"USD": "2.00"}, "rejected": {}})
    assert valid == [(1, "J1"), (4, "J3")]
    assert rejects == [(2, None, ["MALFORMED_ROW"]), (3, None, ["MALFORMED_ROW"]), (5, None, ["MALFORMED_ROW"])]
    details = [r["details"] for r in rejects_of(data.encode(), "jsonl")]
    assert details == [[f"nests objects and arrays deeper than {c.MAX_JSON_DEPTH} levels"]] * 3
    path = tmp_path / "deep.jsonl"
    path.write_text(data)
    assert main(["validate", str(path), "--report", str(tmp_path / "r.json")]) == 1


def test_json_within_the_depth_limit_is_read():
    # Brackets inside strings are text, not nesting.
    text = nested(c.MAX_JSON_DEPTH)[:-1] + ', "note": "' + "[{" * 100 + '\\"[["}'
    _, valid, rejects = both(text + "\n", "jsonl")
    assert valid == [(1, "J2")] and not rejects


# --- a wide header ------------------------------------------------------------------------------


def test_wide_header_is_linear():
    names = [f"extra_column_{n}" for n in range(50_000)]  # about 940 KB of header, within the record limit
    data = (HEADER + "," + ",".join(names) + "\n" + row(1) + "," * len(names) + "\n").encode()
    started = time.perf_counter()
    report = run(data)[0]  # validation and the plan
    elapsed = time.perf_counter() - started
    assert report["valid"] == 1 and report["unknownColumns"] == names[:100]
    assert elapsed < 10, f"{elapsed:.1f} s for a 50,000-column header"  # quadratic: about 100 s


# --- one long record ----------------------------------------------------------------------------


def test_long_record_is_one_malformed_record_in_bounded_memory():
    # A quoted field, then three million commas: 3 MB in one record, past the 1 MiB limit.
    hostile = 'T2,ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,"quoted"' + "," * 3_000_000
    data = csv_file(row(1), hostile, row(3)).encode()
    rejects: list[dict] = []
    peak = peak_mib(lambda: rejects.extend(rejects_of(data)))
    assert [(r["line"], r["reasons"]) for r in rejects] == [(3, ["MALFORMED_ROW"])]
    size = len(hostile) + 1
    assert rejects[0]["details"] == [f"record is longer than {c.MAX_RECORD_BYTES:,} bytes ({size:,} bytes)"]
    assert len(rejects[0]["raw"]) == c.RECORD_HEAD_CHARACTERS  # the record's start, not all of it
    assert peak < 40, f"{peak:.0f} MiB for one 3 MB record"  # before: about 800 MiB
    report, valid, _ = both(data)
    assert counts(report)[:4] == (3, 2, 1, {"MALFORMED_ROW": 1}) and valid == [(2, "T1"), (4, "T3")]


def test_long_line_without_quotes_is_one_record_in_bounded_memory():
    # No quote, no comma: a block the vectorized path would take, 3 MB in one line.
    data = csv_file(row(1), "T2," + "x" * 3_000_000, row(3)).encode()
    peak = peak_mib(lambda: rejects_of(data))
    assert [(r["line"], r["reasons"]) for r in rejects_of(data)] == [(3, ["MALFORMED_ROW"])]
    assert peak < 40, f"{peak:.0f} MiB for one 3 MB line"
    long_line = jrow(transaction_id="J2", description="d" * 3_000_000)
    lines = [jrow(transaction_id="J1"), long_line, jrow(transaction_id="J3")]
    jsonl = ("\n".join(lines) + "\n").encode()
    peak = peak_mib(lambda: rejects_of(jsonl, "jsonl"))
    assert [(r["line"], r["reasons"]) for r in rejects_of(jsonl, "jsonl")] == [(2, ["MALFORMED_ROW"])]
    assert peak < 40, f"{peak:.0f} MiB for one 3 MB JSON line"


def _csv_record_of_size(size: int, *, n: int) -> str:
    """A row whose record (its LF included) is ``size`` bytes: too long a description, with a
    two-byte character in it."""
    start = f"T{n},ACC1,2024-03-01T10:00:00Z,1.00,USD,DEBIT,\u00e9"
    return start + "d" * (size - len(start.encode()) - 1)


def test_record_at_the_size_limit_is_read_and_one_past_it_is_rejected():
    limit = c.MAX_RECORD_BYTES
    data = csv_file(row(1), _csv_record_of_size(limit, n=2), _csv_record_of_size(limit + 1, n=3), row(4))
    report, _, rejects = both(data)
    assert rejects == [(3, "T2", ["FIELD_TOO_LONG"]), (4, None, ["MALFORMED_ROW"])]
    assert counts(report)[:3] == (4, 2, 2)
    base = jrow(transaction_id="J2", description="")  # then a description of two-byte characters
    room = limit - len(base) - 1
    description = "d" * (room % 2) + "\u00e9" * (room // 2)
    at_limit = base.replace('"description": ""', f'"description": "{description}"')
    over = at_limit.replace('"J2"', '"J3"').replace('"description": "', '"description": "d')
    assert len(at_limit.encode()) + 1 == limit and len(over.encode()) == limit
    data = "\n".join([jrow(), at_limit, over]) + "\n"
    _, _, rejects = both(data, "jsonl")
    assert rejects == [(2, "J2", ["FIELD_TOO_LONG"]), (3, None, ["MALFORMED_ROW"])]


def test_header_past_the_size_limit_is_refused_by_plan_and_validation():
    names = ",".join(f"x{n}" for n in range(c.MAX_RECORD_BYTES // 4))
    data = (HEADER + "," + names + "\n" + row(1) + "\n").encode()
    assert len(data) > c.MAX_RECORD_BYTES
    for read in (lambda: plan_source([data], fmt="csv", chunk_bytes=1 << 20), lambda: rejects_of(data)):
        with pytest.raises(UnreadableFileError, match=f"header row is longer than {c.MAX_RECORD_BYTES:,} bytes"):
            read()


# --- the CLI's report ---------------------------------------------------------------------------


def _bad_rows_file(tmp_path, rows: int) -> str:
    path = tmp_path / f"bad-{rows}.csv"
    with open(path, "w") as out:
        out.write(HEADER + "\n")
        for n in range(rows):
            out.write(f"T{n},acc,2024-03-01T10:00:00Z,1.00,USD,DEBIT,x\n")  # INVALID_ACCOUNT
    return str(path)


def test_cli_report_streams_to_its_file(tmp_path, capsys):
    peaks = {}
    for rows in (20_000, 80_000):
        path, report = _bad_rows_file(tmp_path, rows), tmp_path / f"r-{rows}.json"
        # Chunks of 256 KiB: what a chunk holds (its duplicate keys) is the same for both files.
        command = ["validate", path, "--jobs", "1", "--chunk-bytes", str(256 << 10), "--report", str(report)]
        peaks[rows] = peak_mib(lambda: main(command))  # noqa: B023
        written = json.loads(report.read_text())
        assert written["rejected"] == rows and len(written["rejects"]) == rows
        last = {"line": rows + 1, "transaction_id": f"T{rows - 1}", "reasons": ["INVALID_ACCOUNT"]}
        assert written["rejects"][-1] == last
    capsys.readouterr()
    # 60,000 more rejects: before, about 30 MiB more (every reject held, then the whole report).
    assert peaks[80_000] - peaks[20_000] < 6, peaks


# --- JSON numbers in quarantine -----------------------------------------------------------------


def test_json_numbers_keep_their_exact_text_in_quarantine():
    line = jrow()[:-1] + ', "amount": 1e400, "big": 1.50E-0400, "neg": -0.0, "int": 12}'
    line = line.replace('"amount": "1.00", ', "")
    (entry,) = rejects_of((line + "\n").encode(), "jsonl")
    assert entry["reasons"] == ["INVALID_AMOUNT"]
    assert '"amount":"1e400"' in json_text(entry) and '"big":"1.50E-0400"' in json_text(entry)
    assert '"neg":"-0.0"' in json_text(entry) and '"int":12' in json_text(entry)


# --- /dev/stdin ---------------------------------------------------------------------------------


def test_cli_reads_dev_stdin_from_a_pipe(tmp_path):
    data = csv_file(row(1), row(2), row(3, amount="1.001")).encode()
    report = tmp_path / "r.json"
    command = [sys.executable, "-m", "pipeline_cli.main", "validate", "/dev/stdin", "--format", "csv", "--jobs", "1"]
    command += ["--report", str(report), "--reject-threshold", "0.5"]
    done = subprocess.run(command, input=data, capture_output=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()
    written = json.loads(report.read_text())
    assert (written["records"], written["valid"], written["rejected"]) == (3, 2, 1)
