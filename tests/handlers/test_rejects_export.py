"""`pipeline rejects`: a job's rejected records cut out of its source, bytes as sent.

The generated files are built record by record, so the test knows each record's bytes and the
line it starts on (the reference splitter); validation says which lines it rejects; the export
must be the source's preamble and exactly those records, and validating the export again rejects
every record but a DUPLICATE_ID whose first occurrence stayed behind.
"""

from __future__ import annotations

import csv
import io
import json
import os

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.logic import contract as c
from handlers.logic.localjob import validate_file
from pipeline_cli.main import main
from pipeline_cli.rejects import (
    SIDE_COLUMNS,
    ExportResult,
    RejectsOutOfOrder,
    export_rejects,
    fixed_records,
    refusal,
    source_header,
    splice_fixed,
    splice_refusal,
)
from pipeline_cli.rejects_cmd import NoRejectsRecord, quarantine_of
from tests.handlers.conftest import BUCKET, DATABASE, HEADER, TABLE, WORK_BUCKET, get_job, put_incoming, run_chain

BOM = b"\xef\xbb\xbf"
BLOCK_SIZES = (1, 3, 16, 257, 1 << 16)

# ------------------------------------------------------------------ generated files, record by record
ids = st.sampled_from(["T1", "T2", "T3", "T4"]) | st.from_regex(r"T[0-9]{5}", fullmatch=True)
words = st.text(alphabet=st.sampled_from("abc xyzé€中𝄞"), max_size=8)
line_ends = st.sampled_from([b"\n", b"\r\n"])


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


GOOD_CSV = {"account": "ACC1", "amount": "10.00", "currency": "USD"}
CSV_DEFECTS = {"account": ["acc-1", "A" * 40], "amount": ["1.234", "abc", ""], "currency": ["usd", "XXX"]}


@st.composite
def csv_records(draw) -> bytes:
    """A CSV record without its line end: good (about half), bad by a value, or malformed (framed
    as the plan frames it all the same)."""
    tid = draw(ids)
    values = dict(GOOD_CSV)
    if draw(st.booleans()):
        field = draw(st.sampled_from(sorted(CSV_DEFECTS)))
        values[field] = draw(st.sampled_from(CSV_DEFECTS[field]))
    text = draw(words)
    description = draw(
        st.sampled_from([text, _quoted(f"{text}\nsecond line"), _quoted(f'say "{text}"\r\nthen, more'), _quoted(text)])
    )
    row = f"{tid},{values['account']},2024-03-01T10:00:00Z,{values['amount']},{values['currency']},CREDIT,{description}"
    kind = draw(st.sampled_from(["row"] * 6 + ["short", "literal-quote", "undecodable"]))
    if kind == "short":
        return f"{tid},ACC1".encode()
    if kind == "literal-quote":
        return row.encode().replace(b",2024", b',20"24', 1)
    if kind == "undecodable":
        return row.encode() + b"\xff"
    return row.encode()


GOOD_JSON = {
    "account_id": "ACC1",
    "booked_at": "2024-03-01T10:00:00Z",
    "amount": "10.00",
    "currency": "USD",
    "direction": "DEBIT",
}
JSON_DEFECTS = {"account_id": ["acc"], "amount": ["1.234", 10.5], "currency": ["usd"], "direction": [None]}


@st.composite
def jsonl_records(draw) -> bytes:
    fields = {"transaction_id": draw(ids), **GOOD_JSON, "description": draw(words)}
    if draw(st.booleans()):
        field = draw(st.sampled_from(sorted(JSON_DEFECTS)))
        fields[field] = draw(st.sampled_from(JSON_DEFECTS[field]))
    text = json.dumps(fields, ensure_ascii=draw(st.booleans()))
    kind = draw(st.sampled_from(["object"] * 6 + ["broken", "array", "spaced"]))
    if kind == "broken":
        return text[: len(text) // 2].encode()
    if kind == "array":
        return b"[1, 2]"
    if kind == "spaced":
        return f"  {text}\t".encode()
    return text.encode()


@st.composite
def sources(draw, fmt: str):
    """(the file's bytes, its preamble, [(line, record bytes)] of its non-blank records)."""
    record = csv_records() if fmt == "csv" else jsonl_records()
    blank = st.sampled_from([b"\n", b"\r\n"] if fmt == "csv" else [b"\n", b"\r\n", b" \t\n"])
    bom = BOM if draw(st.booleans()) else b""
    preamble = bom + (HEADER.encode() + draw(line_ends) if fmt == "csv" else b"")
    piece = st.one_of(record.map(lambda r: ("record", r)), blank.map(lambda b: ("blank", b)))
    pieces = draw(st.lists(piece, min_size=2, max_size=30))
    body, records = [], []
    line = 1 + preamble.count(b"\n")
    for number, (kind, data) in enumerate(pieces):
        if kind == "record":
            last = number == len(pieces) - 1
            data = data + (b"" if last and draw(st.booleans()) else draw(line_ends))
            records.append((line, data))
        body.append(data)
        line += data.count(b"\n")
    # A file of no record at all is unreadable: one good record at least.
    if not records:
        good = b"T9,ACC1,2024-03-01T10:00:00Z,1.00,USD,CREDIT,x\n" if fmt == "csv" else b'{"a": 1}\n'
        records.append((line, good))
        body.append(good)
    return preamble + b"".join(body), preamble, records


def _write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _blocks(data: bytes, block: int) -> list[bytes]:
    return [data[i : i + block] for i in range(0, len(data), block)]


def _export(data: bytes, *, fmt: str, rejects: list[dict], block: int) -> tuple[bytes, list[dict], ExportResult]:
    out, side = io.BytesIO(), io.StringIO(newline="")
    result = export_rejects(blocks=_blocks(data, block), fmt=fmt, rejects=rejects, out=out, side=side)
    rows = list(csv.DictReader(io.StringIO(side.getvalue(), newline="")))
    return out.getvalue(), rows, result


def _occurrence(reject: dict) -> bool:
    """Whether a rejected record still counts as an occurrence of its id (handlers/logic/recorder.py)."""
    tid = reject["transaction_id"]
    return (
        c.MALFORMED_ROW not in reject["reasons"]
        and isinstance(tid, str)
        and len(tid) <= c.MAX_ID_LENGTH
        and c.ID_CHARS.fullmatch(tid) is not None
    )


def _rejected_again(rejects: list[dict], rows: list[dict]) -> list[int]:
    """The export's lines validation must reject: all, but a record rejected only as a DUPLICATE_ID
    whose id no earlier exported record holds (its first occurrence loaded and stayed behind)."""
    seen: set[str] = set()
    lines = []
    for reject, row in zip(rejects, rows, strict=True):
        only_duplicate = reject["reasons"] == [c.DUPLICATE_ID]
        if not only_duplicate or reject["transaction_id"] in seen:
            lines.append(int(row["line"]))
        if _occurrence(reject):
            seen.add(reject["transaction_id"])
    return lines


def _check_round_trip(tmp_path, source, *, fmt: str, chunk_bytes: int, block: int) -> None:
    data, preamble, records = source
    path = _write(tmp_path, f"source.{fmt}", data)
    rejects = list(validate_file(path=path, fmt=fmt, directory=str(tmp_path / "v1"), chunk_bytes=chunk_bytes).rejects())
    starts = dict(records)
    assert all(reject["line"] in starts for reject in rejects)  # quarantine lines are the records' first lines

    exported, rows, result = _export(data, fmt=fmt, rejects=rejects, block=block)

    assert exported == preamble + b"".join(starts[reject["line"]] for reject in rejects)
    assert refusal(result, sha256=None, rejected=len(rejects)) is None
    assert [int(row["source_line"]) for row in rows] == [reject["line"] for reject in rejects]
    assert [row["reasons"] for row in rows] == [";".join(reject["reasons"]) for reject in rejects]
    assert [row["transaction_id"] for row in rows] == [reject["transaction_id"] or "" for reject in rejects]
    before = [preamble + b"".join(starts[r["line"]] for r in rejects[:k]) for k in range(len(rejects))]
    assert [int(row["line"]) for row in rows] == [1 + written.count(b"\n") for written in before]

    # The export sent back unchanged puts the source back together, byte for byte (a last record
    # without a line end gets one).
    corrected = io.BytesIO()
    spliced = splice_fixed(
        blocks=_blocks(data, block),
        fmt=fmt,
        rejects=rejects,
        fixed=fixed_records(_blocks(exported, block), fmt=fmt, header=source_header([data]) if fmt == "csv" else None),
        out=corrected,
    )
    assert splice_refusal(spliced, sha256=None) is None and spliced.replaced == len(rejects)
    last_without_end = bool(records) and not records[-1][1].endswith(b"\n") and records[-1][0] in {
        r["line"] for r in rejects
    }
    assert corrected.getvalue() == data + (b"\n" if last_without_end else b"")

    if rejects:
        path = _write(tmp_path, f"export.{fmt}", exported)
        again = validate_file(path=path, fmt=fmt, directory=str(tmp_path / "v2"), chunk_bytes=chunk_bytes)
        assert [reject["line"] for reject in again.rejects()] == _rejected_again(rejects, rows)
        assert again.summary.records == len(rejects)


PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(source=sources("csv"), chunk_bytes=st.sampled_from([64, 1 << 20]), block=st.sampled_from(BLOCK_SIZES))
def test_csv_rejects_are_the_rejected_records_bytes(tmp_path_factory, source, chunk_bytes, block):
    _check_round_trip(tmp_path_factory.mktemp("csv"), source, fmt="csv", chunk_bytes=chunk_bytes, block=block)


@PROPERTY
@given(source=sources("jsonl"), chunk_bytes=st.sampled_from([64, 1 << 20]), block=st.sampled_from(BLOCK_SIZES))
def test_jsonl_rejects_are_the_rejected_records_bytes(tmp_path_factory, source, chunk_bytes, block):
    _check_round_trip(tmp_path_factory.mktemp("jsonl"), source, fmt="jsonl", chunk_bytes=chunk_bytes, block=block)


# ------------------------------------------------------------------ a record longer than 1 MiB
class _Sink(io.BytesIO):
    """Remembers its largest single write: a record copied in pieces never exceeds a block."""

    largest = 0

    def write(self, data) -> int:
        self.largest = max(self.largest, len(data))
        return super().write(data)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_oversized_record_is_copied_whole_in_pieces(tmp_path, fmt):
    block = 1 << 16
    huge_text = "é" * (c.MAX_RECORD_BYTES // 2) + "\r\nmore"
    if fmt == "csv":
        preamble = HEADER.encode() + b"\r\n"
        huge = f'T2,ACC1,2024-03-01T10:00:00Z,1.00,USD,CREDIT,"{huge_text}"\r\n'.encode()
        good = b"T1,ACC1,2024-03-01T10:00:00Z,1.00,USD,CREDIT,x\r\n"
        bad = b"T3,ACC1,2024-03-01T10:00:00Z,1.234,USD,CREDIT,x\r\n"
    else:
        preamble = b""
        huge = json.dumps({"transaction_id": "T2", "description": huge_text}).encode() + b"\n"
        good = b'{"transaction_id":"T1","account_id":"ACC1","booked_at":"2024-03-01T10:00:00Z","amount":"1.00",'
        good += b'"currency":"USD","direction":"CREDIT"}\n'
        bad = good.replace(b"1.00", b"1.234").replace(b'"T1"', b'"T3"')
    assert len(huge) > c.MAX_RECORD_BYTES
    data = preamble + good + huge + bad
    path = _write(tmp_path, f"f.{fmt}", data)
    rejects = list(validate_file(path=path, fmt=fmt, directory=str(tmp_path / "v")).rejects())
    assert [(r["transaction_id"], r["reasons"]) for r in rejects] == [
        (None, [c.MALFORMED_ROW]),
        ("T3", [c.AMOUNT_PRECISION]),
    ]

    sink, side = _Sink(), io.StringIO(newline="")
    blocks = (data[i : i + block] for i in range(0, len(data), block))
    result = export_rejects(blocks=blocks, fmt=fmt, rejects=rejects, out=sink, side=side)

    assert sink.getvalue() == preamble + huge + bad
    assert sink.largest <= block
    assert result.exported == 2 and refusal(result, sha256=None, rejected=2) is None
    rows = list(csv.DictReader(io.StringIO(side.getvalue(), newline="")))
    assert [(row["line"], row["source_line"]) for row in rows] == (
        [("2", "3"), ("4", "5")] if fmt == "csv" else [("1", "2"), ("2", "3")]
    )


# ------------------------------------------------------------------ refusals of the pure export
CSV_SOURCE = (HEADER + '\r\nT1,ACC1,2024-03-01T10:00:00Z,1.234,USD,CREDIT,"two\r\nlines"\r\n\r\n').encode()


def _reject(line: int) -> dict:
    return {"line": line, "transaction_id": "T1", "reasons": [c.AMOUNT_PRECISION], "details": ["amount: x"]}


@pytest.mark.parametrize("line", [3, 4, 5, 9])  # inside a record, a blank line, past the end
def test_a_reject_whose_line_starts_no_record_is_refused_naming_it(line):
    _, _, result = _export(CSV_SOURCE, fmt="csv", rejects=[_reject(2), _reject(line)], block=5)
    assert result.exported == 1 and result.missing_lines == [line]
    assert f"first: line {line}" in refusal(result, sha256=None, rejected=2)


def test_a_source_of_other_bytes_is_refused_before_anything_else():
    _, _, result = _export(CSV_SOURCE, fmt="csv", rejects=[_reject(2)], block=5)
    assert refusal(result, sha256=result.sha256, rejected=1) is None
    assert "SHA-256" in refusal(result, sha256="0" * 64, rejected=1)
    assert "job counted 2" in refusal(result, sha256=result.sha256, rejected=2)


def test_rejects_out_of_line_order_are_refused():
    with pytest.raises(RejectsOutOfOrder, match="line 2 after line 2"):
        _export(CSV_SOURCE, fmt="csv", rejects=[_reject(2), _reject(2)], block=5)


# ------------------------------------------------------------------ `pipeline rejects` on a deployment (moto)
@pytest.fixture
def deployed(aws):
    """The test buckets and table, found as `pipeline` finds a deployment: through Parameter Store."""
    from stacks import parameters

    ssm = boto3.client("ssm")
    for key, value in {
        parameters.BUCKET_NAME: BUCKET,
        parameters.WORK_BUCKET_NAME: WORK_BUCKET,
        parameters.GLUE_DATABASE: DATABASE,
        parameters.TABLE_NAME: TABLE,
        parameters.STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline-workflow-test",
    }.items():
        ssm.put_parameter(Name=parameters.name("test", key), Value=value, Type="String")
    return aws


def _row(n: int, amount: str = "10.00", description: str = "x") -> bytes:
    return f"T{n:03d},ACC1,2024-03-01T10:00:00Z,{amount},USD,CREDIT,{description}\r\n".encode()


BAD_MULTILINE = _row(7, "1.234", '"note: ""é""\r\nsecond line"')
JOB_FILE = BOM + HEADER.encode() + b"\r\n" + b"".join(
    [*(_row(n) for n in range(1, 7)), BAD_MULTILINE, b"\r\n", *(_row(n) for n in range(8, 20)), _row(3), _row(20, "x")]
)


def _run_job(s3, job_id: str, body: bytes) -> None:
    event = {**put_incoming(s3, job_id=job_id, body=body), "chunkBytes": 200, "rejectThreshold": "0.5"}
    run_chain(event)
    assert get_job(job_id)["status"] == "LOADED"


def test_pipeline_rejects_writes_the_records_as_sent_and_their_reasons(deployed, tmp_path, capsys):
    _run_job(deployed, "with-rejects", JOB_FILE)
    assert int(get_job("with-rejects")["plan"]["chunks"]) > 1
    out = tmp_path / "rejects.csv"
    capsys.readouterr()

    assert main(["rejects", "with-rejects", "--out", str(out), "--env", "test"]) == 0

    assert out.read_bytes() == BOM + HEADER.encode() + b"\r\n" + BAD_MULTILINE + _row(3) + _row(20, "x")
    with open(f"{out}.reasons.csv", encoding="utf-8", newline="") as side:
        rows = list(csv.reader(side))
    assert rows[0] == list(SIDE_COLUMNS)
    assert [row[:4] for row in rows[1:]] == [
        ["2", "8", "T007", "AMOUNT_PRECISION"],
        ["4", "23", "T003", "DUPLICATE_ID"],
        ["5", "24", "T020", "INVALID_AMOUNT"],
    ]
    assert "3 rejected records" in capsys.readouterr().out


def test_the_export_fixed_gives_the_source_corrected_and_the_command_to_send_it(deployed, tmp_path, capsys):
    _run_job(deployed, "to-fix", JOB_FILE)
    exported, fixed, corrected = tmp_path / "rejects.csv", tmp_path / "fixed.csv", tmp_path / "corrected.csv"
    assert main(["rejects", "to-fix", "--out", str(exported), "--env", "test"]) == 0
    fixes = {_row(7, "1.234", '"note: ""é""\r\nsecond line"'): _row(7, "1.23", "fixed"), _row(3): _row(21)}
    fixes[_row(20, "x")] = _row(20, "5.00")
    text = exported.read_bytes()
    for bad, good in fixes.items():
        text = text.replace(bad, good)
    fixed.write_bytes(text)
    capsys.readouterr()

    assert main(["rejects", "to-fix", "--fixed", str(fixed), "--out", str(corrected), "--env", "test"]) == 0

    expected = JOB_FILE
    for bad, good in fixes.items():
        expected = expected[::-1].replace(bad[::-1], good[::-1], 1)[::-1]  # the rejected (last) occurrence
    assert corrected.read_bytes() == expected
    assert f"send it: pipeline run {corrected} --replaces to-fix" in capsys.readouterr().out
    again = validate_file(path=str(corrected), fmt="csv", directory=str(tmp_path / "v"))
    assert again.summary.rejected == 0 and again.summary.records == 21


def test_a_fixed_file_with_records_added_or_another_header_is_refused(deployed, tmp_path, capsys):
    _run_job(deployed, "fix-refused", JOB_FILE)
    exported, corrected = tmp_path / "rejects.csv", tmp_path / "corrected.csv"
    assert main(["rejects", "fix-refused", "--out", str(exported), "--env", "test"]) == 0
    for name, text, says in (
        ("added.csv", exported.read_bytes() + _row(30), "the fixed file holds 4 records, the job rejected 3"),
        ("header.csv", exported.read_bytes().replace(b"transaction_id,", b"id,", 1), "is not the source's"),
    ):
        (tmp_path / name).write_bytes(text)
        capsys.readouterr()
        arguments = ["--fixed", str(tmp_path / name), "--out", str(corrected), "--env", "test"]
        code = main(["rejects", "fix-refused", *arguments])
        assert code == 2 and says in capsys.readouterr().err and not corrected.exists()


def test_pipeline_rejects_refuses_a_source_that_is_not_the_jobs(deployed, tmp_path, capsys):
    _run_job(deployed, "changed", JOB_FILE)
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"jobId": {"S": "changed"}},
        UpdateExpression="SET #s.sha256 = :other",
        ExpressionAttributeNames={"#s": "source"},
        ExpressionAttributeValues={":other": {"S": "0" * 64}},
    )
    out = tmp_path / "rejects.csv"
    capsys.readouterr()

    assert main(["rejects", "changed", "--out", str(out), "--reasons", str(tmp_path / "why.csv"), "--env", "test"]) == 2

    assert "SHA-256" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []  # nothing at --out, no temporary file left


def test_pipeline_rejects_of_a_clean_job_is_the_header_and_of_no_job_exits_1(deployed, tmp_path, capsys):
    _run_job(deployed, "clean", HEADER.encode() + b"\n" + _row(1) + _row(2))
    out = tmp_path / "rejects.csv"
    capsys.readouterr()

    assert main(["rejects", "clean", "--out", str(out), "--env", "test"]) == 0
    assert out.read_bytes() == HEADER.encode() + b"\n"
    assert "no rejected records" in capsys.readouterr().out

    assert main(["rejects", "nobody", "--out", str(tmp_path / "x.csv"), "--env", "test"]) == 1
    assert "no job 'nobody'" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("job", "says"),
    [
        ({"status": "RESENT", "originalJobId": "first", "plan": {}}, "whose rejects these are"),
        ({"status": "FAILED", "error": {"Error": "SourceChangedError"}}, "never planned"),
        ({"status": "RECEIVED", "plan": {"planId": "p1", "chunks": 2}, "outputs": {}}, "once its validation"),
    ],
)
def test_a_job_without_a_final_quarantine_has_no_rejects_to_export(job, says):
    with pytest.raises(NoRejectsRecord, match=says):
        quarantine_of({"jobId": "j1", **job})


def test_a_validated_job_s_quarantine_is_its_chunks_parts_in_order():
    job = {
        "jobId": "j1",
        "status": "LOADED",
        "plan": {"planId": "p1", "chunks": 2},
        "outputs": {"quarantine": "quarantine/j1/p1/"},
        "counts": {"rejected": 4},
    }
    assert quarantine_of(job) == (["quarantine/j1/p1/part-000000.jsonl", "quarantine/j1/p1/part-000001.jsonl"], 4)
