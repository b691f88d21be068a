"""The operator's view on the local deployment: a job followed on a terminal, its report opened in
a real headless Chromium, its rejects sent back fixed.

* `pipeline run FILE --wait` on a pseudo-terminal shows the job's stage and its chunks done of
  chunks planned; with its output on pipes it shows none of that, and its standard output is the
  same lines.
* `pipeline report JOB` of a loaded, a rejected and a failed job: each figure on the page is the
  job record's; Chromium (Debian's, tests/browser.py) opens each page with no console error and no
  request but the file itself. The loaded job's page is the README's picture
  (build/screenshots/job-report.png; docs/images/job-report.png is a copy of it).
* The round trip: the loaded job's rejects exported (`pipeline rejects`), fixed the way a producer
  would, put back into the source (`--fixed`), sent as the correction of the job: the corrected
  job loads every row, the first is SUPERSEDED, and the ledger holds the corrected job's rows only.

Runs in the "capacity" group, on its deployment, after the burst and the denial suite (which only
reads); alone: `pytest tests/e2e/test_operator_view.py`.
"""

from __future__ import annotations

import csv
import os
import pty
import re
import select
import subprocess
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pyiceberg.expressions import EqualTo

from lake import schema
from local.workspace import SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.main import main
from pipeline_cli.samples import HEADER, write_transactions
from tests.browser import open_page
from tests.e2e.conftest import CAPACITY_GROUP
from tests.e2e.jobs import DAYS, assert_reconciled, published_table, run_file, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(CAPACITY_GROUP), pytest.mark.usefixtures("deployed")]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PIPELINE = PROJECT_ROOT / ".venv" / "bin" / "pipeline"
SCREENSHOT = PROJECT_ROOT / "build" / "screenshots" / "job-report.png"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ROWS, BAD_EVERY = 3000, 60  # 50 rejects of every kind, within the 5 % threshold


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str  # as the terminal showed it, escape sequences removed


def on_terminal(*arguments: str, timeout: float = 600) -> Ran:
    """`pipeline ARGUMENTS` with its standard error on a pseudo-terminal (as a person runs it) and
    its standard output on a pipe (to compare with a run whose output is all pipes)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [str(PIPELINE), *arguments], stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL
    )
    os.close(follower)
    shown = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 1 << 16)
            except OSError:  # the terminal's other end closed: the command has ended
                break
            if not data:
                break
            shown += data
        elif process.poll() is not None:
            break
    os.close(leader)
    stdout = process.communicate(timeout=60)[0].decode()
    return Ran(code=process.returncode, stdout=stdout, stderr=ANSI.sub("", shown.decode(errors="replace")))


def on_pipes(*arguments: str) -> Ran:
    done = subprocess.run([str(PIPELINE), *arguments], capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    return Ran(code=done.returncode, stdout=done.stdout, stderr=done.stderr)


def job_id_in(stdout: str) -> str:
    found = re.search(r"^job (\S+): s3://", stdout, re.M)
    assert found, stdout
    return found.group(1)


# ------------------------------------------------------------------ the jobs
@dataclass(frozen=True)
class Jobs:
    loaded: str
    rejected: str
    failed: str
    followed: Ran  # the loaded job's `pipeline run --wait` on a terminal
    piped: Ran  # the rejected job's, on pipes


@pytest.fixture(scope="module")
def jobs(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Jobs:
    tmp = tmp_path_factory.mktemp("operator")
    sample = write_transactions(tmp / "partner-o.csv", rows=ROWS, bad_every=BAD_EVERY, days=DAYS, seed=29)
    followed = on_terminal("run", str(sample), "--wait", "--env", SUFFIX)
    assert followed.code == 0, followed
    over = write_transactions(tmp / "partner-o-broken.csv", rows=400, bad_every=4, days=DAYS, seed=30)
    piped = on_pipes("run", str(over), "--wait", "--env", SUFFIX)
    assert piped.code == 0, piped  # REJECTED is a verdict, not a failure of the command
    target.emulator.inject(f"pipeline-validate-{SUFFIX}", "Lambda.ServiceException", times=100)
    try:
        _job, _deployment = run_file(tmp, "partner-o-fails", rows=500, seed=31)
    finally:
        target.emulator.clear_faults()
    return Jobs(
        loaded=job_id_in(followed.stdout),
        rejected=job_id_in(piped.stdout),
        failed=_job["jobId"],
        followed=followed,
        piped=piped,
    )


def deployment() -> Deployment:
    return Deployment.discover(SUFFIX)


# ------------------------------------------------------------------ progress
def test_a_run_followed_on_a_terminal_shows_its_stage_and_chunks_and_on_pipes_nothing_more(jobs: Jobs) -> None:
    job = deployment().job(jobs.loaded)
    assert job is not None and job["status"] == "LOADED"
    chunks = int(job["plan"]["chunks"])
    shown = jobs.followed.stderr
    assert f"of {chunks} chunks" in shown and ("validating" in shown or "transforming" in shown), shown
    assert "status     LOADED" in jobs.followed.stdout
    # On pipes: the same lines on standard output, and no progress on standard error.
    assert "chunks" not in jobs.piped.stderr and "validating" not in jobs.piped.stderr, jobs.piped.stderr
    assert "status     REJECTED" in jobs.piped.stdout


# ------------------------------------------------------------------ the report
class Figures(HTMLParser):
    """The page's figures (pipeline_cli/report.py gives each a `data-figure`, a `data-key` and its
    machine value in `data-value`), by figure and key: the value, else the text shown."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.figures: dict[str, dict[str, str]] = {}
        self._open: list[tuple[str, str, str, str | None]] = []  # tag, figure, key, value
        self._text: list[list[str]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if "data-figure" in named:
            self._open.append((tag, named["data-figure"] or "", named.get("data-key") or "", named.get("data-value")))
            self._text.append([])

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            _tag, figure, key, value = self._open.pop()
            text = "".join(self._text.pop()).strip()
            self.figures.setdefault(figure, {})[key] = text if value is None else value

    def handle_data(self, data: str) -> None:
        for parts in self._text:
            parts.append(data)


@pytest.mark.parametrize("which", ["loaded", "rejected", "failed"])
def test_the_report_shows_the_job_records_figures_and_opens_in_chromium_with_no_error(
    jobs: Jobs, which: str, tmp_path: Path
) -> None:
    job_id = getattr(jobs, which)
    job = deployment().job(job_id)
    assert job is not None and job["status"] == {"loaded": "LOADED", "rejected": "REJECTED", "failed": "FAILED"}[which]
    page = tmp_path / f"{which}.html"
    assert main(["report", job_id, "--out", str(page), "--env", SUFFIX]) == 0
    figures = Figures(page.read_text(encoding="utf-8")).figures

    assert figures["verdict"][""] == job["status"]
    counts = job.get("counts") or {}
    for name in ("received", "loaded", "rejected"):
        if name in counts:
            assert int(figures[f"rows-{name}"][""]) == counts[name], name
    assert {reason: int(n) for reason, n in figures.get("reason-count", {}).items()} == counts.get("reasons", {})
    for currency, amount in ((job.get("totals") or {}).get("valid") or {}).items():
        assert figures["valid-total"][currency] == amount
    if which == "failed":
        assert job["error"]["Error"] in figures["error"][""]

    opened = open_page(page, screenshot=SCREENSHOT if which == "loaded" else None)
    assert opened.errors == [], opened.errors
    assert opened.requests == [page.resolve().as_uri()]  # nothing but the page itself
    assert job_id in opened.title and job["status"] in opened.text
    if which == "loaded":
        assert SCREENSHOT.stat().st_size > 10_000


# ------------------------------------------------------------------ rejects sent back
def fixed(exported: Path, into: Path) -> int:
    """Each rejected record rewritten as its producer would fix it: the same transaction id, valid
    fields (a record too broken to read keeps its id, the rest is typed again)."""
    lines = exported.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[0] == HEADER
    out = [HEADER]
    for line in lines[1:]:
        transaction_id = line.split(",", 1)[0]
        out.append(f"{transaction_id},ACC00000001,2026-03-01T10:00:00Z,12.34,USD,CREDIT,fixed by the producer\n")
    into.write_text("".join(out), encoding="utf-8")
    return len(out) - 1


def test_rejects_exported_fixed_and_sent_back_as_the_correction_load_whole(
    target: Target, jobs: Jobs, tmp_path: Path
) -> None:
    first = deployment().job(jobs.loaded)
    assert first is not None and first["counts"]["rejected"] == ROWS // BAD_EVERY
    exported, fixes, corrected = tmp_path / "rejects.csv", tmp_path / "fixed.csv", tmp_path / "corrected.csv"

    assert main(["rejects", jobs.loaded, "--out", str(exported), "--env", SUFFIX]) == 0
    with open(f"{exported}.reasons.csv", encoding="utf-8", newline="") as side:
        reasons = list(csv.DictReader(side))
    assert len(reasons) == first["counts"]["rejected"] == fixed(exported, fixes)
    assert main(["rejects", jobs.loaded, "--fixed", str(fixes), "--out", str(corrected), "--env", SUFFIX]) == 0

    sent = on_pipes("run", str(corrected), "--replaces", jobs.loaded, "--wait", "--env", SUFFIX)
    assert sent.code == 0, sent
    second = wait_for_job(deployment(), job_id_in(sent.stdout))
    assert second["status"] == "LOADED" and second["replaces"] == jobs.loaded
    assert second["counts"]["received"] == second["counts"]["loaded"] == ROWS and second["counts"]["rejected"] == 0
    assert deployment().job(jobs.loaded)["status"] == "SUPERSEDED"
    assert_reconciled(target, second, deployment())
    table = published_table(deployment(), schema.TRANSACTIONS.name)
    assert table.scan(row_filter=EqualTo("job_id", jobs.loaded)).count() == 0
    assert table.scan(row_filter=EqualTo("job_id", second["jobId"])).count() == ROWS

