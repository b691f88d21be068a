"""Issue 9, "Parsing holes": one test (or more) per class of fault, each asserting the counts,
reasons, line numbers and totals, plus a differential check against independent readers.

Class -> tests:
1 field-size limit            test_long_quoted_field_is_one_field_not_rows, test_long_field_closed_by_lone_quote_line,
                              test_long_unquoted_field_is_field_too_long
2 invalid quoting             test_quote_inside_unquoted_field_is_malformed,
                              test_text_after_closing_quote_is_one_record
3 lone CR                     test_lone_cr_in_unquoted_field_is_one_malformed_record,
                              test_lone_cr_in_quoted_field_kept_whole
4 malformed rows and dups     test_malformed_row_is_not_a_duplicate_occurrence
5 rejected totals exact       test_rejected_totals_are_exact_whatever_the_length
6 JSON Lines                  test_jsonl_cr_between_tokens_long_int_nan_and_empty_id
7 crashes look like verdicts  test_jsonl_lone_surrogate_is_a_malformed_row,
                              test_cli_report_errors_exit_2_without_traceback,
                              test_cli_report_written_whole_or_not_at_all,
                              test_lambda_quarantines_lone_surrogate_rows
8 stdin                       test_cli_reads_stdin_with_format
differential                  test_differential_against_csv_and_json_modules, test_differential_jsonl_against_json_loads
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from decimal import Decimal

import pytest

from handlers.logic.planning import plan_source
from handlers.logic.streams import CountingReader, open_text
from handlers.logic.validation import validate_text
from pipeline_cli.main import main
from tests.handlers.chunked import chunked_result
from tests.handlers.conftest import HEADER, get_job, put_incoming, quarantined, run_chain

BIG = "x" * 140_000  # beyond csv's default field size limit (131,072)
FAKE = "T99,ACC1,2024-03-01T10:00:00Z,999999.00,USD,CREDIT,fake"


def row(n: int, *, amount: str = "10.00", description: str | None = None, tid: str | None = None) -> str:
    return f"{tid or f'T{n}'},ACC1,2024-03-01T10:00:00Z,{amount},USD,CREDIT,{description or f'r{n}'}"


def jrow(**fields) -> str:
    base = {
        "transaction_id": "J1",
        "account_id": "ACC1",
        "booked_at": "2024-03-01T10:00:00Z",
        "amount": "1.00",
        "currency": "USD",
        "direction": "DEBIT",
    }
    return json.dumps({**base, **fields})


def run(data: bytes | str, fmt: str = "csv", *, path: str = "blocks"):
    """(summary dict, valid ids with lines, [(line, id, reasons)]) on one path:
    "blocks" = the byte-stream path with the vectorized prefilter, "text" = the per-row path."""
    data = data.encode() if isinstance(data, str) else data
    valid, rejects = [], []
    if path == "blocks":
        text = open_text(CountingReader(io.BytesIO(data)))
    else:
        text = io.StringIO(data.decode("utf-8-sig", "surrogateescape"), newline="")
    summary = validate_text(text=text, fmt=fmt, on_valid=valid.append, on_reject=rejects.append)
    records = plan_source([data], fmt=fmt, chunk_bytes=len(data) + 1).records
    assert records == summary.records, "the plan's count must equal validate's"
    report = summary.to_dict()
    return (
        report,
        [(v[0], v[1]) for v in valid],
        [(r["line"], r["transaction_id"], r["reasons"]) for r in rejects],
    )


def both(data, fmt="csv"):
    """The result, after checking both paths agree, and that chunks of any size agree too."""
    blocks = run(data, fmt, path="blocks")
    assert run(data, fmt, path="text") == blocks
    raw = data.encode() if isinstance(data, str) else data
    for chunk_bytes in (7, 64, 4096):
        report, rejects = chunked_result(raw, fmt=fmt, chunk_bytes=chunk_bytes)
        assert (report, rejects) == (blocks[0], blocks[2]), f"chunks of {chunk_bytes} bytes differ"
    return blocks


def counts(report: dict) -> tuple:
    return report["records"], report["valid"], report["rejected"], report["reasons"], report["totals"]


def csv_file(*rows: str, newline: str = "\n") -> str:
    return newline.join([HEADER, *rows]) + newline


# --- 1. field-size limit ----------------------------------------------------------------------


def test_long_quoted_field_is_one_field_not_rows():
    data = csv_file(row(1), row(2, amount="1.00", description=f'"{BIG}\n{FAKE}"'), row(3))
    report, valid, rejects = both(data)
    assert counts(report) == (3, 2, 1, {"FIELD_TOO_LONG": 1}, {"valid": {"USD": "20.00"}, "rejected": {"USD": "1.00"}})
    assert valid == [(2, "T1"), (5, "T3")]
    assert rejects == [(3, "T2", ["FIELD_TOO_LONG"])]


def test_long_field_closed_by_lone_quote_line():
    tail = [row(n) for n in range(3, 53)]
    data = csv_file(row(1), row(2, description=f'"{BIG}\nmore text\n"'), *tail)
    report, valid, rejects = both(data)
    assert counts(report) == (
        52,
        51,
        1,
        {"FIELD_TOO_LONG": 1},
        {"valid": {"USD": "510.00"}, "rejected": {"USD": "10.00"}},
    )
    assert rejects == [(3, "T2", ["FIELD_TOO_LONG"])]
    assert valid[0] == (2, "T1") and valid[1] == (6, "T3") and valid[-1] == (55, "T52")


def test_long_unquoted_field_is_field_too_long():
    data = csv_file(row(1), row(2, description=BIG), row(3), newline="\r\n")
    report, valid, rejects = both(data)
    assert counts(report) == (3, 2, 1, {"FIELD_TOO_LONG": 1}, {"valid": {"USD": "20.00"}, "rejected": {"USD": "10.00"}})
    assert valid == [(2, "T1"), (4, "T3")] and rejects == [(3, "T2", ["FIELD_TOO_LONG"])]
    # A long id is one field too, reported with its own reasons.
    report, _, rejects = both(csv_file(row(1, tid="I" * 200_000), row(2)))
    assert counts(report)[:4] == (2, 1, 1, {"FIELD_TOO_LONG": 1}) and rejects[0][0] == 2


# --- 2. invalid quoting -----------------------------------------------------------------------


def test_quote_inside_unquoted_field_is_malformed():
    data = csv_file(row(1, description='say "hi"'), row(2), row(3, description='a"b'))
    report, valid, rejects = both(data)
    assert counts(report) == (3, 1, 2, {"MALFORMED_ROW": 2}, {"valid": {"USD": "10.00"}, "rejected": {}})
    assert valid == [(3, "T2")]
    assert rejects == [(2, None, ["MALFORMED_ROW"]), (4, None, ["MALFORMED_ROW"])]


def test_text_after_closing_quote_is_one_record():
    # The quoted text after the broken field must not be read as rows.
    data = csv_file(row(1), row(2, description=f'"abc"x,"\n{FAKE}\n"'), row(3))
    report, valid, rejects = both(data)
    assert counts(report) == (3, 2, 1, {"MALFORMED_ROW": 1}, {"valid": {"USD": "20.00"}, "rejected": {}})
    assert valid == [(2, "T1"), (6, "T3")] and rejects == [(3, None, ["MALFORMED_ROW"])]


# --- 3. lone CR -------------------------------------------------------------------------------


def test_lone_cr_in_unquoted_field_is_one_malformed_record():
    data = csv_file(
        row(1, description="a\rb"), row(2), row(3, description=f"c\r{FAKE}"), row(4, description="d\r\r")
    )  # CR before CRLF
    report, valid, rejects = both(data)
    assert counts(report) == (4, 1, 3, {"MALFORMED_ROW": 3}, {"valid": {"USD": "10.00"}, "rejected": {}})
    assert valid == [(3, "T2")]
    assert rejects == [(2, None, ["MALFORMED_ROW"]), (4, None, ["MALFORMED_ROW"]), (5, None, ["MALFORMED_ROW"])]


def test_lone_cr_in_quoted_field_kept_whole():
    data = csv_file(row(1, description='"a\rb"'), row(2), newline="\r\n")
    valid = []
    validate_text(
        text=open_text(CountingReader(io.BytesIO(data.encode()))),
        fmt="csv",
        on_valid=valid.append,
    )
    assert [v[7] for v in valid] == ["a\rb", "r2"]
    report, lines, rejects = both(data)
    assert counts(report)[:3] == (2, 2, 0) and lines == [(2, "T1"), (3, "T2")] and not rejects


# --- 4. malformed rows are not duplicate occurrences ------------------------------------------


def test_malformed_row_is_not_a_duplicate_occurrence():
    data = HEADER.encode() + b"\n" + row(1, description="caf\xe9").encode("latin-1") + b"\n"
    data += (row(1) + "\n" + row(2, description='bad"quote') + "\n" + row(2) + "\n" + row(1) + "\n").encode()
    report, valid, rejects = both(data)
    assert counts(report) == (
        5,
        2,
        3,
        {"DUPLICATE_ID": 1, "MALFORMED_ROW": 2},
        # the undecodable row's amount is valid, so it counts in the rejected totals (contract)
        {"valid": {"USD": "20.00"}, "rejected": {"USD": "20.00"}},
    )
    assert valid == [(3, "T1"), (5, "T2")]
    assert rejects == [(2, "T1", ["MALFORMED_ROW"]), (4, None, ["MALFORMED_ROW"]), (6, "T1", ["DUPLICATE_ID"])]
    # JSON Lines: a row malformed by a non-string description is not an occurrence either.
    text = jrow(description=5) + "\n" + jrow() + "\n"
    report, valid, rejects = both(text, "jsonl")
    assert counts(report) == (2, 1, 1, {"MALFORMED_ROW": 1}, {"valid": {"USD": "1.00"}, "rejected": {"USD": "1.00"}})
    assert valid == [(2, "J1")] and rejects == [(1, "J1", ["MALFORMED_ROW"])]


# --- 5. rejected totals -----------------------------------------------------------------------


def test_rejected_totals_are_exact_whatever_the_length():
    long_fraction = "1." + "0" * 40 + "1"
    widest = "999999999999999." + "9" * 30
    data = csv_file(row(1, amount=long_fraction), row(2, amount=long_fraction), row(3, amount=widest), row(4))
    report, valid, rejects = both(data)
    exact = "1000000000000001." + "9" * 30 + "0" * 10 + "2"  # 2 x long_fraction + widest, by hand
    assert counts(report) == (4, 1, 3, {"AMOUNT_PRECISION": 3}, {"valid": {"USD": "10.00"}, "rejected": {"USD": exact}})
    assert rejects == [
        (2, "T1", ["AMOUNT_PRECISION"]),
        (3, "T2", ["AMOUNT_PRECISION"]),
        (4, "T3", ["AMOUNT_PRECISION"]),
    ]
    assert valid == [(5, "T4")]


# --- 6. JSON Lines ----------------------------------------------------------------------------


def test_jsonl_cr_between_tokens_long_int_nan_and_empty_id():
    lines = [
        jrow().replace('"transaction_id": ', '"transaction_id":\r'),  # \r is JSON whitespace
        jrow(transaction_id="J2")[:-1] + ', "big": ' + "9" * 5000 + "}",  # beyond int's str-digit limit
        jrow(transaction_id="J3")[:-1] + ', "x": NaN}',  # not JSON
        jrow(transaction_id="J4")[:-1] + ', "x": -Infinity}',  # not JSON
        jrow(transaction_id=""),  # empty string: MISSING_FIELD, as in CSV (documented)
    ]
    report, valid, rejects = both("\n".join(lines) + "\n", "jsonl")
    assert counts(report) == (
        5,
        2,
        3,
        {"MISSING_FIELD": 1, "MALFORMED_ROW": 2},
        {"valid": {"USD": "2.00"}, "rejected": {"USD": "1.00"}},
    )
    assert valid == [(1, "J1"), (2, "J2")]
    assert rejects == [(3, None, ["MALFORMED_ROW"]), (4, None, ["MALFORMED_ROW"]), (5, "", ["MISSING_FIELD"])]


# --- 7. crashes must not look like verdicts ---------------------------------------------------

SURROGATES = "\n".join(
    [
        jrow(),
        jrow(transaction_id="\ud800"),
        jrow(transaction_id="J3")[:-1] + ', "\\ud800k": 1}',
        jrow(transaction_id="J4"),
    ]
)


def test_jsonl_lone_surrogate_is_a_malformed_row(tmp_path, capsys):
    report, valid, rejects = both(SURROGATES + "\n", "jsonl")
    assert counts(report) == (4, 2, 2, {"MALFORMED_ROW": 2}, {"valid": {"USD": "2.00"}, "rejected": {}})
    assert valid == [(1, "J1"), (4, "J4")] and rejects == [(2, None, ["MALFORMED_ROW"]), (3, None, ["MALFORMED_ROW"])]
    path, out = tmp_path / "s.jsonl", tmp_path / "r.json"
    path.write_text(SURROGATES)
    assert main(["validate", str(path), "--report", str(out)]) == 1  # 2 of 4 rejected: over 0.05
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["rejects"] == [
        {"line": 2, "transaction_id": None, "reasons": ["MALFORMED_ROW"]},
        {"line": 3, "transaction_id": None, "reasons": ["MALFORMED_ROW"]},
    ]
    assert written["result"] == "REJECTED" and "Traceback" not in capsys.readouterr().err


def test_cli_report_errors_exit_2_without_traceback(tmp_path, capsys):
    path = tmp_path / "f.csv"
    path.write_text(csv_file(row(1)))
    target = tmp_path / "missing-dir" / "r.json"
    assert main(["validate", str(path), "--report", str(target)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and str(target) in err
    assert not target.parent.exists()
    assert main(["validate", str(tmp_path)]) == 2  # a directory as input
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_report_written_whole_or_not_at_all(tmp_path, monkeypatch, capsys):
    from pipeline_cli import validate_cmd

    path, target = tmp_path / "f.csv", tmp_path / "out" / "r.json"
    target.parent.mkdir()
    path.write_text(csv_file(row(1)))
    target.write_text("previous report\n")

    def broken_dump(obj, out, **kwargs):
        out.write('{"records": ')
        raise OSError("disk full")

    monkeypatch.setattr(validate_cmd.json, "dump", broken_dump)
    assert main(["validate", str(path), "--report", str(target)]) == 2
    assert "disk full" in capsys.readouterr().err
    assert target.read_text() == "previous report\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.json"]  # no temporary file left


def test_lambda_quarantines_lone_surrogate_rows(aws):
    event = {**put_incoming(aws, job_id="surrogate", body=SURROGATES + "\n", name="tx.jsonl"), "rejectThreshold": "0.5"}
    outputs = run_chain(event)
    assert outputs[-1]["status"] == "LOADED"
    job = get_job("surrogate")
    assert job["counts"]["records"] == 4 and job["counts"]["rejected"] == 2 and job["counts"]["loaded"] == 2
    assert job["counts"]["reasons"] == {"MALFORMED_ROW": 2}
    rejected = quarantined(aws, "surrogate")
    assert [(q["line"], q["reasons"]) for q in rejected] == [(2, ["MALFORMED_ROW"]), (3, ["MALFORMED_ROW"])]


# --- 8. stdin ---------------------------------------------------------------------------------


def test_cli_reads_stdin_with_format(tmp_path, monkeypatch, capsys):
    data = csv_file(row(1), row(2), row(3, amount="1.001")).encode()
    out = tmp_path / "r.json"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["validate", "-", "--format", "csv", "--report", str(out), "--reject-threshold", "0.5"]) == 0
    report = json.loads(out.read_text())
    assert (report["records"], report["valid"], report["rejected"]) == (3, 2, 1)
    assert report["reasons"] == {"AMOUNT_PRECISION": 1} and report["totals"]["rejected"] == {"USD": "1.001"}
    assert report["rejects"] == [{"line": 4, "transaction_id": "T3", "reasons": ["AMOUNT_PRECISION"]}]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["validate", "-"]) == 2
    assert "--format" in capsys.readouterr().err


# --- differential check against independent readers --------------------------------------------


def csv_reference(data: bytes) -> tuple[int, Counter]:
    """Records and transaction_ids as Python's csv module sees them: strict, no field size limit,
    lines split at LF only (a lone CR is not a line break: see the contract). A row csv cannot
    parse, or with the wrong column count, is a record without an id."""
    previous = csv.field_size_limit(sys.maxsize)
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig", "surrogateescape"), newline="\n"), strict=True)
        header = next(reader)
        records, ids = 0, Counter()
        while True:
            try:
                for fields in reader:
                    if fields:
                        records += 1
                        ids[fields[header.index("transaction_id")] if len(fields) == len(header) else None] += 1
                break
            except csv.Error:
                records += 1
                ids[None] += 1
        return records, ids
    finally:
        csv.field_size_limit(previous)


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def jsonl_reference(data: bytes) -> tuple[int, Counter]:
    """Records and transaction_ids as json.loads sees them, one LF-terminated line at a time."""
    records, ids = 0, Counter()
    for line in data.decode("utf-8").split("\n"):
        if not line.strip(" \t\r\n"):
            continue
        records += 1
        try:
            obj = json.loads(line, parse_constant=_no_constants, parse_int=Decimal)
        except ValueError:
            obj = None
        tid = obj.get("transaction_id") if isinstance(obj, dict) else None
        ids[tid if isinstance(tid, str) else None] += 1
    return records, ids


def ours(data: bytes, fmt: str) -> tuple[int, Counter]:
    report, valid, rejects = run(data, fmt)
    return report["records"], Counter([tid for _, tid in valid] + [tid for _, tid, _ in rejects])


def _csv_class_rows(kind: str, n: int, rng) -> tuple[list[str], list[str]]:
    """Rows of one class and the ids the contract reports as None where csv reports the id."""
    if kind == "long":
        choice = rng.choice([f'"{BIG}\n{FAKE}"', f'"{BIG}\nmore\n"', BIG])
        return [row(n, description=choice)], []
    if kind == "bare_quote":  # csv accepts it; RFC 4180 and the contract do not: no id reported
        return [row(n, tid=f"Q{n}", description=rng.choice(['say "hi"', 'a"', 'x""']))], [f"Q{n}"]
    if kind == "lone_cr":
        return [row(n, description=rng.choice(["a\rb", f"c\r{FAKE}"]))], []
    if kind == "dup_malformed":
        return [row(n, tid="D1", description="caf\udce9"), row(n, tid="D1"), "D1,ACC1"], []
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["long", "bare_quote", "lone_cr", "dup_malformed"])
def test_differential_against_csv_and_json_modules(kind):
    import random

    for seed in range(8):
        rng = random.Random(seed)  # noqa: S311 - test data
        rows, unreported = [], []
        for n in range(rng.randrange(1, 12)):
            if rng.random() < 0.4:
                extra, ids = _csv_class_rows(kind, n, rng)
                rows += extra
                unreported += ids
            else:
                rows.append(row(n))
        rows.append(row(99))
        data = csv_file(*rows, newline=rng.choice(["\n", "\r\n"])).encode("utf-8", "surrogateescape")
        records, ids = csv_reference(data)
        for tid in unreported:
            ids[tid] -= 1
            ids[None] += 1
        assert ours(data, "csv") == (records, ids)  # Counter equality ignores zero counts


def test_differential_jsonl_against_json_loads():
    import random

    for seed in range(8):
        rng = random.Random(seed)  # noqa: S311 - test data
        lines = []
        for n in range(rng.randrange(1, 12)):
            lines.append(
                rng.choice(
                    [
                        jrow(transaction_id=f"J{n}"),
                        jrow(transaction_id=f"J{n}").replace(": ", ":\r"),
                        jrow(transaction_id=f"J{n}")[:-1] + ', "big": ' + "7" * 5000 + "}",
                        jrow(transaction_id=f"J{n}")[:-1] + ', "x": NaN}',
                        jrow(transaction_id=""),
                        jrow(transaction_id="J1"),
                        "",
                        "[1]",
                    ]
                )
            )
        lines.append(jrow(transaction_id="J99"))
        data = "\n".join(lines).encode()
        assert ours(data, "jsonl") == jsonl_reference(data)
