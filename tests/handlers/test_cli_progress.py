"""Progress on a terminal (issue 29): `pipeline validate` on a real pseudo-terminal and without one,
the validate callback of handlers/logic/localjob.py, and what `pipeline run --wait` shows of a job
(a pure rendering, and the follow loop against moto with the real stage handlers)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
import types
from pathlib import Path

import pytest

from handlers.config import get_settings
from handlers.logic import localjob
from lake import layout
from pipeline_cli import progress
from pipeline_cli.progress import RunDisplay, RunView, counts_chunks, run_view, shows_progress, validate_fields
from pipeline_cli.samples import write_transactions
from tests.handlers.conftest import WORK_BUCKET, csv_text, good_row, invoke, map_items, put_incoming
from tests.handlers.test_cli import deployed  # noqa: F401 - the fixture, found through Parameter Store

PIPELINE = str(Path(sys.executable).with_name("pipeline"))
ROWS = 100_000  # about 9.6 MB: some 2 s of `pipeline validate` in chunks of 1 MB on 2 processes
ARGS = ["--chunk-bytes", str(1 << 20), "--jobs", "2"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TIME = re.compile(r"\b\d+:\d\d:\d\d\b")
RATE = re.compile(r"\b\d+(\.\d+)? [kMG]?B/s\b")


# ------------------------------------------------------------------ `pipeline validate` on a terminal
def _terminal(columns: int = 100) -> tuple[int, int]:
    """A pseudo-terminal of ``columns``: (its controller's descriptor, its terminal's)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    return controller, terminal


def _on_terminal(args: list[str]) -> tuple[bytes, bytes, int]:
    """Run ``args`` with standard error on a pseudo-terminal (standard output a pipe): (standard
    output, what the terminal received, exit code)."""
    controller, terminal = _terminal()
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, env=env)
    os.close(terminal)
    shown = bytearray()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if not ready:
            if child.poll() is not None:
                break
            continue
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            break
        if not data:
            break
        shown += data
    os.close(controller)
    out, _ = child.communicate(timeout=60)
    return out, bytes(shown), child.returncode


def _frames(shown: bytes) -> list[str]:
    """What the terminal showed, one redraw of the progress line at a time, colours taken out."""
    text = ANSI.sub("", shown.decode("utf-8", "replace"))
    return [frame.strip() for frame in re.split(r"[\r\n]", text) if frame.strip()]


def _percent(frame: str) -> int | None:
    found = re.search(r"\b(\d{1,3})%", frame)
    return int(found.group(1)) if found else None


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_transactions(tmp_path_factory.mktemp("progress") / "tx.csv", rows=ROWS, bad_every=50)


@pytest.fixture(scope="module")
def shown_on_terminal(sample) -> tuple[bytes, bytes, int]:
    return _on_terminal([PIPELINE, "validate", str(sample), *ARGS])


def test_validate_on_a_terminal_shows_bytes_rows_rate_time_left_and_ends_at_100(sample, shown_on_terminal):
    out, shown, code = shown_on_terminal
    assert code == 0 and f"{ROWS} rows".encode() in out
    megabytes = f"{sample.stat().st_size / 1e6:.1f}"  # rich's decimal units
    frames = _frames(shown)
    running = [f for f in frames if 0 < (_percent(f) or 0) < 100]
    assert running, frames  # not only a start and an end
    # On the way: bytes done of the file's, rows, a rate and the time left, in one line.
    assert any(
        re.search(rf"\d+\.\d/{megabytes} MB", f) and " rows" in f and RATE.search(f) and TIME.search(f) for f in running
    ), running
    last = frames[-1]
    assert _percent(last) == 100 and f"{megabytes}/{megabytes} MB" in last and f"{ROWS:,} rows" in last
    assert last.startswith("checked")
    percents = [p for p in map(_percent, frames) if p is not None]
    assert percents == sorted(percents)  # never backwards


def test_validate_without_a_terminal_prints_no_progress_and_the_same_output(sample, shown_on_terminal):
    finished = subprocess.run([PIPELINE, "validate", str(sample), *ARGS], capture_output=True, timeout=60)
    assert finished.returncode == 0
    assert finished.stderr == b""
    assert finished.stdout == shown_on_terminal[0]


def test_validate_quiet_on_a_terminal_shows_nothing(sample, shown_on_terminal):
    out, shown, code = _on_terminal([PIPELINE, "validate", str(sample), *ARGS, "--quiet"])
    assert code == 0 and shown == b"" and out == shown_on_terminal[0]


# ------------------------------------------------------------------ the callback of validate_file
def test_validate_file_tells_its_progress_up_to_the_whole_file(tmp_path):
    path = write_transactions(tmp_path / "tx.csv", rows=1500, bad_every=40)
    told: list[localjob.Progress] = []
    result = localjob.validate_file(
        path=str(path), fmt="csv", directory=str(tmp_path / "work"), chunk_bytes=25_000, progress=told.append
    )
    plain = localjob.validate_file(path=str(path), fmt="csv", directory=str(tmp_path / "plain"), chunk_bytes=25_000)
    assert result.summary.to_dict() == plain.summary.to_dict()  # followed or not, the same result
    size, chunks = path.stat().st_size, len(result.plan.chunks)
    assert chunks > 4
    first_pass = [p for p in told if p.step == localjob.CHUNKS]
    assert first_pass[-1] == localjob.Progress(
        step=localjob.CHUNKS,
        total_bytes=size,
        scanned_bytes=size,
        validated_bytes=size,
        chunks_done=chunks,
        chunks_known=chunks,
        planned=True,
        rows=1500,
    )
    assert [p.step for p in told][-1] == localjob.DUPLICATES  # then the step across chunks
    for field in ("scanned_bytes", "validated_bytes", "chunks_done", "rows"):
        values = [getattr(p, field) for p in told]
        assert values == sorted(values), field
    assert any(0 < p.chunks_done < chunks for p in told)  # told on the way, not only at the end


def test_validate_fields_show_bytes_validated_of_the_file_and_rows():
    state = localjob.Progress(
        step=localjob.CHUNKS,
        total_bytes=1000,
        scanned_bytes=800,
        validated_bytes=400,
        chunks_done=2,
        chunks_known=5,
        planned=False,
        rows=12345,
    )
    assert validate_fields(state) == {
        "description": "validating",
        "completed": 400,
        "total": 1000,
        "rows": "12,345 rows",
    }
    later = localjob.Progress(**{**state.__dict__, "step": localjob.DUPLICATES})
    assert validate_fields(later)["description"] == "duplicates"


# ------------------------------------------------------------------ what `pipeline run --wait` shows
PLAN = {"planId": "p1", "chunks": 40, "partitions": 1}


@pytest.mark.parametrize(
    ("job", "done", "place", "text"),
    [
        (None, None, None, "starting"),
        ({"status": "QUEUED"}, None, 3, "queued (place 3)"),
        ({"status": "ADMITTED"}, None, None, "planning (reading the file)"),
        ({"status": "RECEIVED", "plan": PLAN}, 12, None, "validating: 12 of 40 chunks"),
        ({"status": "RECEIVED", "plan": PLAN}, 0, None, "validating: 0 of 40 chunks"),
        ({"status": "VALIDATED", "plan": PLAN}, None, None, "transforming and loading (40 of 40 chunks validated)"),
        ({"status": "LOADED", "plan": PLAN}, None, None, "LOADED"),
        ({"status": "FAILED"}, None, None, "FAILED"),
    ],
)
def test_run_view_of_each_stage(job, done, place, text):
    assert run_view(job, chunks_done=done, place=place).text == text


def test_run_view_of_a_validating_job_measures_chunks_done_of_planned():
    view = run_view({"status": "RECEIVED", "plan": PLAN}, chunks_done=12)
    assert view == RunView(stage="validating", chunks_done=12, chunks_planned=40, validating=True)
    assert view.total == 40


def test_run_view_without_chunks_to_count_has_no_total():
    """The bar then shows the job is alive, not a measure: before the plan, once every chunk is
    done (their verdict awaited) and after validation."""
    assert run_view({"status": "ADMITTED"}, chunks_done=None).total is None
    assert run_view({"status": "RECEIVED", "plan": PLAN}, chunks_done=40).total is None
    assert run_view({"status": "VALIDATED", "plan": PLAN}, chunks_done=None).total is None


def test_chunks_are_listed_only_while_they_are_validated():
    assert counts_chunks({"status": "RECEIVED", "plan": PLAN})
    for job in (None, {"status": "ADMITTED"}, {"status": "RECEIVED"}, {"status": "VALIDATED", "plan": PLAN}):
        assert not counts_chunks(job)


def test_the_marker_delimiter_rolls_up_every_other_file_of_a_chunk():
    """The listing's cost rests on lake/layout.py's names: each chunk file but its marker holds
    the delimiter after the chunks' common prefix, and the marker does not."""
    prefix = progress.chunks_prefix("job", "plan")
    tail = layout.chunk_summary_key("job", "plan", 7).removeprefix(prefix)
    assert progress.MARKER_DELIMITER not in tail
    for other in (
        layout.chunk_rows_key("job", "plan", 7, "2024-03-01"),
        layout.chunk_keys_key("job", "plan", 7, 12),
    ):
        assert progress.MARKER_DELIMITER in other.removeprefix(prefix)


def test_run_display_prints_status_lines_to_stdout_and_the_progress_to_the_terminal(monkeypatch, capsys):
    controller, terminal = _terminal()
    shown = bytearray()

    def drain() -> None:  # a terminal whose screen is never read stops its writer
        with contextlib.suppress(OSError):  # EIO once the terminal is closed
            while data := os.read(controller, 65536):
                shown.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()
    monkeypatch.setenv("TERM", "xterm-256color")
    with open(terminal, "w", encoding="utf-8") as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)
        assert shows_progress(quiet=False) and not shows_progress(quiet=True)
        with RunDisplay() as display:
            display.say("  job j: RECEIVED")
            display.show(run_view({"status": "RECEIVED", "plan": PLAN}, chunks_done=12))
            time.sleep(0.3)  # a refresh or two
            display.say("  job j: VALIDATED")
    reader.join(timeout=10)
    os.close(controller)
    assert capsys.readouterr().out == "  job j: RECEIVED\n  job j: VALIDATED\n"  # exactly what print gives
    frames = _frames(bytes(shown))
    assert any("validating: 12 of 40 chunks" in frame for frame in frames), frames
    assert not any("job j" in frame for frame in frames)  # the status lines never went to the terminal


def _stages(s3, job: dict):
    """The state machine's path for one queued job, a stage (or one chunk) per step."""
    from handlers import admit, dedupe, load, plan, summarize, transform, validate

    invoke(admit, {"action": "arrive", **job})
    yield
    planned = invoke(plan, job)
    yield
    ids = {**job, "planId": planned["planId"]}
    for item in map_items(s3, planned["chunksKey"]):
        invoke(validate, {**ids, "chunk": item})
        yield
    for item in map_items(s3, planned["partitionsKey"]):
        invoke(dedupe, {**ids, "partition": item})
    verdict = invoke(summarize, ids)
    assert verdict["status"] == "VALIDATED"
    yield
    for item in map_items(s3, verdict["datesKey"]):
        invoke(transform, {**ids, "item": item})
    invoke(load, ids)
    invoke(admit, {"action": "release", **job})
    yield


def test_following_a_run_shows_its_stage_and_chunks_done_of_planned(deployed, monkeypatch):  # noqa: F811
    from handlers import ingest
    from pipeline_cli.deployment import Deployment

    monkeypatch.setenv("CHUNK_BYTES", "400")  # several chunks, each with rows of three booking dates
    get_settings.cache_clear()
    rows = [good_row(n, booked_at=f"2024-03-0{1 + n % 3}T10:00:00Z") for n in range(1, 40)]
    event = put_incoming(deployed, job_id="followed", body=csv_text(*rows))
    queued = invoke(ingest, {"input": event, "executionArn": "arn:test"})
    job = {"jobId": queued["jobId"], "runId": queued["runId"]}
    pipeline = _stages(deployed, job)
    # The follow loop's wait between two polls: the pipeline moves one step meanwhile.
    advance = types.SimpleNamespace(monotonic=time.monotonic, sleep=lambda _seconds: next(pipeline, None))
    monkeypatch.setattr(progress, "time", advance)
    lines: list[str] = []
    views: list[RunView] = []
    final = progress.follow_job(
        Deployment.discover("test"), "followed", say=lines.append, show=views.append, poll_seconds=0
    )

    assert final["status"] == "LOADED"
    planned = int(final["plan"]["chunks"])
    assert planned >= 4
    texts = [view.text for view in views]
    assert texts[:2] == ["queued (place 1)", "planning (reading the file)"]
    validating = [view for view in views if view.stage == "validating"]
    assert [view.chunks_done for view in validating] == list(range(planned + 1))  # one more after each chunk
    assert {view.chunks_planned for view in validating} == {planned}
    assert texts[-2:] == [f"transforming and loading ({planned} of {planned} chunks validated)", "LOADED"]
    assert lines == [
        "  job followed: QUEUED (place 1 in the queue)",
        "  job followed: ADMITTED",
        "  job followed: RECEIVED",
        "  job followed: VALIDATED",
        "  job followed: LOADED",
    ]
    # The count came from a listing of about three entries a chunk, not of every file.
    prefix = progress.chunks_prefix("followed", final["plan"]["planId"])
    everything = deployed.list_objects_v2(Bucket=WORK_BUCKET, Prefix=prefix)["KeyCount"]
    rolled = deployed.list_objects_v2(Bucket=WORK_BUCKET, Prefix=prefix, Delimiter=progress.MARKER_DELIMITER)
    assert rolled["KeyCount"] <= 3 * planned < everything
