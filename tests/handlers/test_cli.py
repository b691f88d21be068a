import json

from pipeline_cli.main import main
from tests.handlers.conftest import csv_text, good_row


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_exit_0_and_report(tmp_path, capsys):
    rows = [good_row(i) for i in range(1, 40)] + ["T99,ACC1,2024-01-01T00:00:00Z,1.234,USD,DEBIT,x"]
    report_path = tmp_path / "r.json"
    assert main(["validate", write(tmp_path, "f.csv", csv_text(*rows)), "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["records"] == 40 and report["valid"] == 39 and report["rejected"] == 1
    assert report["reasons"] == {"AMOUNT_PRECISION": 1}
    assert report["totals"] == {"valid": {"USD": "390.00"}, "rejected": {"USD": "1.234"}}
    assert report["rejects"] == [{"line": 41, "transaction_id": "T99", "reasons": ["AMOUNT_PRECISION"]}]
    assert "40 rows" in capsys.readouterr().out


def test_exit_1_over_threshold_and_jsonl_by_extension(tmp_path):
    path = write(tmp_path, "f.ndjson", '{"sample": "data"}\n')
    assert main(["validate", path]) == 1
    assert main(["validate", path, "--reject-threshold", "1"]) == 0


def test_exit_2_unreadable_or_bad_arguments(tmp_path):
    assert main(["validate", write(tmp_path, "empty.csv", "")]) == 2
    assert main(["validate", write(tmp_path, "bin.csv", b"\xff\xfe\x00\x01")]) == 2
    assert main(["validate", str(tmp_path / "missing.csv")]) == 2
    assert main(["validate", write(tmp_path, "f.txt", "x")]) == 2
    assert main(["validate"]) == 2
    assert main(["validate", write(tmp_path, "g.csv", csv_text(good_row(1))), "--reject-threshold", "7"]) == 2
    assert main([]) == 2
