"""`pipeline report JOB --out FILE.html` (issue 29): the page's figures are the job record's, the
manifest's and the quarantine's; hostile values are escaped; the page asks for nothing outside itself.

Jobs run through the real handler chain against moto (conftest.run_chain); the page is read back
with the standard library's HTML parser through its ``data-figure`` hooks.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from decimal import Decimal
from html.parser import HTMLParser

import boto3
import pytest

from handlers import failure
from handlers.logic.localjob import validate_file
from lake.layout import manifest_key
from pipeline_cli.main import main
from pipeline_cli.report import MAX_TEXT, esc, render_html, visible
from pipeline_cli.report_data import report_for_validation
from tests.handlers.conftest import (
    BUCKET,
    DATABASE,
    TABLE,
    WORK_BUCKET,
    csv_text,
    get_job,
    good_row,
    invoke,
    put_incoming,
    quarantined,
    read_object,
    run_chain,
)

HOSTILE_ID = "<script>alert('id')</script>"
HOSTILE_COLUMN = "<img src=x onerror=alert(1)>"


@pytest.fixture
def deployed(aws):
    """The test tables and buckets, found as `pipeline` finds a deployment: through Parameter Store."""
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


class Page(HTMLParser):
    """What a test reads of the page: its figures, its chart bars, every tag and its attributes."""

    VOID = frozenset({"meta", "br"})

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: dict[str, list[dict]] = defaultdict(list)
        self.bars: list[dict] = []
        self.tags: list[tuple[str, dict]] = []
        self._open: list[tuple[str, dict | None]] = []  # every open element, with the figure it is
        self._bar: dict | None = None
        self._bar_part: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        figure = None
        if "data-figure" in attributes:
            figure = {"key": attributes.get("data-key"), "value": attributes.get("data-value"), "text": ""}
            self.figures[attributes["data-figure"]].append(figure)
        if tag == "g" and attributes.get("class") == "bar":
            self._bar = {"title": "", "label": "", "value": "", "rects": 0}
            self.bars.append(self._bar)
        elif self._bar is not None and tag == "rect":
            self._bar["rects"] += 1
        elif self._bar is not None and tag in ("title", "text"):
            self._bar_part = "title" if tag == "title" else attributes.get("class", "").removeprefix("bar-")
        if tag not in self.VOID:
            self._open.append((tag, figure))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass
        if tag == "g":
            self._bar = None
        self._bar_part = None

    def handle_data(self, data):
        for _, figure in self._open:
            if figure is not None:
                figure["text"] += data
        if self._bar is not None and self._bar_part in self._bar:
            self._bar[self._bar_part] += data

    def one(self, figure: str) -> dict:
        (found,) = self.figures[figure]
        return found

    def keyed(self, figure: str) -> dict[str, str]:
        return {entry["key"]: entry["value"] for entry in self.figures[figure]}


def report_page(job_id: str, tmp_path) -> tuple[str, Page]:
    out = tmp_path / f"{job_id}.html"
    assert main(["report", job_id, "--out", str(out), "--env", "test"]) == 0
    text = out.read_text(encoding="utf-8")
    return text, Page(text)


def assert_self_contained(text: str, page: Page) -> None:
    """No script, nothing fetched: no src or href anywhere, no external URL, no @import."""
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "base", "audio", "video"}, names
    for tag, attributes in page.tags:
        assert not {"src", "href", "xlink:href", "srcset", "action"} & attributes.keys(), (tag, attributes)
        assert not any(name.startswith("on") for name in attributes), (tag, attributes)
    assert not re.search(r"https?:|//|@import", text.replace("s3://", ""), re.IGNORECASE)  # S3 keys are text
    assert "url(" not in text.replace("url(#hatch)", "")


def assert_bars_labelled(page: Page) -> None:
    """Every bar of every chart has its label, its value in text and a <title>."""
    assert page.bars
    for bar in page.bars:
        assert bar["rects"] == 1 and bar["label"].strip() and bar["value"].strip(), bar
        assert bar["title"].strip() and bar["value"].strip() in bar["title"], bar


def assert_counts(page: Page, job: dict) -> None:
    counts = job["counts"]
    for name in ("received", "valid", "loaded", "rejected"):
        expected = str(counts[name]) if name in counts else ""
        assert page.one(f"rows-{name}")["value"] == expected, name
    assert page.keyed("reason-count") == {code: str(n) for code, n in counts.get("reasons", {}).items()}
    assert page.one("verdict")["value"] == page.one("verdict")["text"] == job["status"]


def test_the_report_of_a_loaded_job_holds_its_record_manifest_and_quarantine(deployed, tmp_path):
    rows = [
        good_row(n, booked_at=f"2024-03-0{1 + n % 3}T10:00:00Z", currency="EUR" if n % 4 else "USD", amount=f"{n}.25")
        for n in range(1, 61)
    ]
    rows += [
        f"{HOSTILE_ID},ACC1,2024-03-01T10:00:00Z,1.00,USD,CREDIT,hostile",  # INVALID_ID: transaction_id
        "T90001,ACC1,2024-03-01T10:00:00Z,1.001,USD,CREDIT,too fine",  # AMOUNT_PRECISION: amount
        "T90002,ACC1,2024-03-01T10:00:00Z,1.00",  # MALFORMED_ROW: the whole row
    ]
    event = {**put_incoming(deployed, job_id="loaded", body=csv_text(*rows)), "chunkBytes": 1200}
    run_chain(event)
    job, manifest = get_job("loaded"), json.loads(read_object(deployed, manifest_key("loaded")))
    assert job["status"] == "LOADED" and int(job["plan"]["chunks"]) > 1  # the quarantine in several parts

    text, page = report_page("loaded", tmp_path)

    assert_counts(page, job)
    assert page.one("rows-loaded")["value"] == str(manifest["rows"])
    assert page.keyed("column-count") == {"transaction_id": "1", "amount": "1", "(whole row)": "1"}
    assert page.keyed("valid-total") == job["totals"]["valid"] == manifest["totals"]
    assert page.keyed("valid-rows") == {c: str(n) for c, n in job["totals"]["rowsByCurrency"]["valid"].items()}
    # Per booking date and currency, exact: as summed here from the rows sent, and as the manifest's files hold.
    expected_rows: dict[str, int] = defaultdict(int)
    expected_totals: dict[str, Decimal] = defaultdict(Decimal)
    for n in range(1, 61):
        key = f"2024-03-0{1 + n % 3} {'EUR' if n % 4 else 'USD'}"
        expected_rows[key] += 1
        expected_totals[key] += Decimal(f"{n}.25")
    assert page.keyed("date-currency-rows") == {k: str(v) for k, v in expected_rows.items()}
    assert page.keyed("date-currency-total") == {k: str(v) for k, v in expected_totals.items()}
    files_rows: dict[str, int] = defaultdict(int)
    for entry in manifest["files"]:
        files_rows[entry["bookingDate"]] += entry["rows"]
    assert page.keyed("date-rows") == {day: str(n) for day, n in files_rows.items()}
    # The work files expire (14 days); the per-date figures stay, kept in the manifest by the load.
    work_keys = deployed.list_objects_v2(Bucket=WORK_BUCKET, Prefix="staging/loaded/").get("Contents", [])
    assert work_keys
    for entry in work_keys:
        deployed.delete_object(Bucket=WORK_BUCKET, Key=entry["Key"])
    _later, again = report_page("loaded", tmp_path)
    assert again.keyed("date-currency-total") == page.keyed("date-currency-total")
    assert again.keyed("date-currency-rows") == page.keyed("date-currency-rows")
    # Lineage: the source, the code, the ledger's snapshots.
    assert page.one("sha256")["text"] == job["source"]["sha256"] == manifest["source"]["sha256"]
    assert page.one("code-version")["text"] == manifest["codeVersion"]
    assert {e["key"]: e["text"] for e in page.figures["snapshot"]} == {
        table: str(snapshot) for table, snapshot in manifest["snapshots"].items()
    }
    assert [e["key"] for e in page.figures["stage-duration"]] == ["admitted", "plan", "summarize", "load"]
    # The rejected lines, in line order, the hostile id shown as text and never as markup.
    rejects = quarantined(deployed, "loaded")
    assert [e["value"] for e in page.figures["reject-line"]] == [str(entry["line"]) for entry in rejects]
    assert page.one("more-rejects")["value"] == "0"
    shown_ids = [e["text"] for e in page.figures["reject-transaction-id"]]
    assert shown_ids == [entry["transaction_id"] for entry in rejects if entry["transaction_id"] is not None]
    assert HOSTILE_ID in shown_ids
    assert "<script" not in text.lower()
    assert_self_contained(text, page)
    assert_bars_labelled(page)


def test_the_report_of_a_rejected_job_says_why_and_shows_the_first_50_rejects(deployed, tmp_path):
    rows = [good_row(n, booked_at=f"2024-03-0{1 + n % 2}T10:00:00Z") for n in range(1, 41)]
    rows += [f"T{n:05d},ACC1,not-a-time,1.00,USD,CREDIT,x" for n in range(100, 160)]  # 60 INVALID_TIMESTAMP
    run_chain(put_incoming(deployed, job_id="rejected", body=csv_text(*rows)))
    job = get_job("rejected")
    assert job["status"] == "REJECTED"

    text, page = report_page("rejected", tmp_path)

    assert_counts(page, job)
    assert page.one("rows-loaded")["value"] == ""  # nothing loaded
    assert page.one("threshold")["value"] == job["rejectThreshold"] == "0.05"
    assert page.one("rejected-share")["value"] == "60.00 %"
    why = page.one("verdict-reason")["text"]
    assert "60 of 100 rows" in why and "above the threshold 0.05" in why
    assert page.keyed("column-count") == {"booked_at": "60"}
    lines = [str(e["line"]) for e in quarantined(deployed, "rejected")]
    assert [e["value"] for e in page.figures["reject-line"]] == lines[:50]
    assert page.one("more-rejects")["value"] == "10"
    # A rejected job's per-date figures come from its chunks' summaries: its valid rows per date.
    assert page.keyed("date-currency-rows") == {"2024-03-01 USD": "20", "2024-03-02 USD": "20"}
    assert page.keyed("date-currency-total") == {"2024-03-01 USD": "200.00", "2024-03-02 USD": "200.00"}
    assert "load" not in {e["key"] for e in page.figures["stage-duration"]}
    assert_self_contained(text, page)
    assert_bars_labelled(page)


def test_the_report_of_a_failed_job_shows_its_error_and_stage(deployed, tmp_path):
    event = put_incoming(deployed, job_id="failed", body="T1,ACC1,2024-03-01T10:00:00Z,1.00,USD,CREDIT,x\r\n")
    with pytest.raises(Exception) as raised:  # noqa: B017 - whichever error the chain raises is recorded
        run_chain(event)
    error = {"Error": type(raised.value).__name__, "Cause": str(raised.value)}
    invoke(failure, {**event, "runId": get_job("failed")["runId"], "error": error})
    job = get_job("failed")
    assert job["status"] == "FAILED"

    text, page = report_page("failed", tmp_path)

    assert page.one("verdict")["value"] == "FAILED"
    assert page.one("failed-stage")["text"] == "Plan"
    assert page.one("error")["text"] == job["error"]["Error"]
    assert page.one("error-cause")["text"] == job["error"]["Cause"]
    assert "Plan" in page.one("verdict-reason")["text"]
    assert [e["key"] for e in page.figures["stage-duration"]] == ["admitted", "plan"]
    assert_self_contained(text, page)
    assert_bars_labelled(page)


def test_exit_codes_no_job_no_deployment_bad_arguments(deployed, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "nobody", "--out", str(out), "--env", "test"]) == 1
    assert main(["report", "nobody", "--out", str(out), "--env", "elsewhere"]) == 2
    assert main(["report", "nobody"]) == 2  # --out is required
    assert not out.exists()
    assert "no job 'nobody'" in capsys.readouterr().err


def test_pipeline_validate_html_writes_the_page_of_the_file_it_checked(tmp_path, capsys):
    """`pipeline validate FILE --html OUT`: the command's own verdict and figures, on the page."""
    rows = [good_row(n, booked_at=f"2024-03-0{1 + n % 3}T10:00:00Z", amount="1.05") for n in range(1, 31)]
    rows.append("T90001,ACC1,2024-03-01T10:00:00Z,1.001,USD,CREDIT,x")
    path = tmp_path / "tx.csv"
    path.write_text(csv_text(*rows))
    out, report = tmp_path / "tx.html", tmp_path / "tx.json"

    options = ["--html", str(out), "--report", str(report), "--chunk-bytes", "500", "--reject-threshold", "0.01"]
    code = main(["validate", str(path), *options])

    figures = json.loads(report.read_text())
    assert code == 1 and figures["result"] == "REJECTED"  # 1 of 31 is above 1 %
    page = Page(out.read_text(encoding="utf-8"))
    assert page.one("verdict")["value"] == "REJECTED"
    assert page.one("rows-received")["value"] == "31" and page.one("rows-rejected")["value"] == "1"
    assert page.keyed("reason-count") == {"AMOUNT_PRECISION": "1"} and page.keyed("column-count") == {"amount": "1"}
    assert page.keyed("date-currency-rows") == {f"2024-03-0{d} USD": "10" for d in (1, 2, 3)}
    assert page.keyed("date-currency-total") == {f"2024-03-0{d} USD": "10.50" for d in (1, 2, 3)}
    assert [e["value"] for e in page.figures["reject-line"]] == [str(r["line"]) for r in figures["rejects"]]
    assert "31 rows" in capsys.readouterr().out


def test_the_report_of_a_local_validation_in_chunks(tmp_path):
    """pipeline validate FILE --html: the same page from a local validation, dates merged across chunks."""
    rows = [good_row(n, booked_at=f"2024-03-0{1 + n % 2}T10:00:00Z", amount="0.10") + ",x" for n in range(1, 51)]
    rows.append(f"T90001,ACC1,2024-03-01T10:00:00Z,1.00,USD,SIDEWAYS,{HOSTILE_ID},x")  # direction
    header = f"transaction_id,account_id,booked_at,amount,currency,direction,description,{HOSTILE_COLUMN}"
    body = csv_text(*rows, header=header).encode() + b"T90002,ACC1,2024-03-01T10:00:00Z,1.00,USD,CREDIT,r,caf\xe9\r\n"
    path = tmp_path / "tx.csv"
    path.write_bytes(body)
    result = validate_file(path=str(path), fmt="csv", directory=str(tmp_path / "work"), chunk_bytes=600)
    assert len(result.chunks) > 1
    summary = result.summary.to_dict()

    model = report_for_validation(
        source=str(path),
        summary=summary,
        threshold="0.05",
        verdict="ACCEPTED",
        rejects=result.rejects(),
        chunk_dates_found=[chunk.dates for chunk in result.chunks],
    )
    text = render_html(model)
    page = Page(text)

    assert page.one("verdict")["value"] == "ACCEPTED"
    assert page.one("rows-received")["value"] == "52" and page.one("rows-rejected")["value"] == "2"
    assert summary["reasons"] == {"INVALID_DIRECTION": 1, "MALFORMED_ROW": 1}
    assert page.keyed("reason-count") == {code: str(n) for code, n in summary["reasons"].items()}
    # The undecodable bytes were in the hostile column: named (as text) by its quarantine detail.
    assert page.keyed("column-count") == {"direction": "1", HOSTILE_COLUMN: "1"}
    assert page.keyed("date-currency-rows") == {"2024-03-01 USD": "25", "2024-03-02 USD": "25"}
    assert page.keyed("date-currency-total") == {"2024-03-01 USD": "2.50", "2024-03-02 USD": "2.50"}
    assert page.keyed("valid-total") == summary["totals"]["valid"] == {"USD": "5.00"}
    assert HOSTILE_COLUMN not in text and HOSTILE_ID not in text and "<img" not in text
    assert_self_contained(text, page)
    assert_bars_labelled(page)


def test_controls_and_bidirectional_marks_are_shown_as_escapes_and_long_values_cut():
    assert esc("\u202e<b>&\x00") == "\\u202e&lt;b&gt;&amp;\\u0000"
    assert visible("x" * 1000) == "x" * MAX_TEXT + f"… ({1000 - MAX_TEXT} more characters)"


def test_resent_superseded_and_correcting_jobs_name_the_other_job(deployed, tmp_path):
    body = csv_text(*(good_row(n) for n in range(1, 11)))
    run_chain(put_incoming(deployed, job_id="first", body=body))
    run_chain(put_incoming(deployed, job_id="again", body=body, name="copy.csv"))  # the same bytes: RESENT
    fixed = csv_text(*(good_row(n, amount="11.00") for n in range(1, 11)))
    run_chain({**put_incoming(deployed, job_id="fix", body=fixed, name="fixed.csv"), "replaces": "first"})
    assert [get_job(j)["status"] for j in ("first", "again", "fix")] == ["SUPERSEDED", "RESENT", "LOADED"]

    _, superseded = report_page("first", tmp_path)
    _, resent = report_page("again", tmp_path)
    _, correction = report_page("fix", tmp_path)

    assert superseded.one("verdict")["value"] == "SUPERSEDED"
    assert {e["key"]: e["text"] for e in superseded.figures["linked-job"]} == {"Replaced by correction": "fix"}
    assert "fix" in superseded.one("verdict-reason")["text"]
    assert resent.one("verdict")["value"] == "RESENT"
    assert {e["key"]: e["text"] for e in resent.figures["linked-job"]} == {"Same file as job": "first"}
    assert "first (SUPERSEDED)" in resent.one("verdict-reason")["text"]
    assert {e["key"]: e["text"] for e in correction.figures["linked-job"]} == {"Corrects job": "first"}
    assert correction.keyed("valid-total") == {"USD": "110.00"}
