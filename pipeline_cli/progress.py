"""Follow an execution state by state, then summarize the job record; and the progress shown on a
terminal while `pipeline validate` checks a file or `pipeline run --wait` follows a job.

Progress is drawn with rich on standard error, only when that is a terminal and ``--quiet`` is not
given: standard output stays the same bytes whether or not a terminal shows it (scripts parse it).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from handlers.jobflow import ADMITTED, QUEUED, RECEIVED, VALIDATED
from handlers.logic import localjob
from lake import layout
from pipeline_cli.deployment import Deployment, client

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def follow(
    execution_arn: str, *, say: Callable[[str], None] = print, poll_seconds: float = 0.5, timeout_seconds: float = 900
) -> str:
    """Print each state as it starts, retries and ends; return the execution's final status."""
    sfn = client("stepfunctions")
    seen = 0
    deadline = time.monotonic() + timeout_seconds
    while True:
        events = _history(sfn, execution_arn)
        for event in events[seen:]:
            line = describe_event(event)
            if line:
                say(line)
        seen = len(events)
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status in TERMINAL:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still {status} after {timeout_seconds:.0f} s")
        time.sleep(poll_seconds)


JOB_TERMINAL = {"LOADED", "REJECTED", "RESENT", "FAILED", "SUPERSEDED"}


def follow_job(
    deployment: Deployment,
    job_id: str,
    *,
    say: Callable[[str], None] = print,
    show: Callable[[RunView], None] | None = None,
    poll_seconds: float = 1.0,
    timeout_seconds: float = 1800,
) -> dict[str, Any]:
    """Print the job's status as it changes (its work may run in any execution: the one that
    queued it, or the one a finishing job started for it); return its final record. With ``show``,
    each poll also shows where the job is (``run_view``): while it validates, that costs one
    listing of its chunks' markers besides the read of its record."""
    deadline = time.monotonic() + timeout_seconds
    shown = None
    while True:
        job = deployment.job(job_id)
        status = (job or {}).get("status")
        place = deployment.place(job) if status == QUEUED else None
        line = status and (f"{status} (place {place} in the queue)" if status == QUEUED else status)
        if line and line != shown:
            say(f"  job {job_id}: {line}")
            shown = line
        if show is not None:
            counted = chunks_done(deployment, job) if counts_chunks(job) else None
            show(run_view(job, chunks_done=counted, place=place))
        if status in JOB_TERMINAL:
            return job  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status} after {timeout_seconds:.0f} s")
        time.sleep(poll_seconds)


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def describe_event(event: dict[str, Any]) -> str | None:
    kind = event["type"]
    if kind.endswith("StateEntered"):
        return f"  -> {event['stateEnteredEventDetails']['name']}"
    if kind.endswith("StateExited"):
        return f"  ok {event['stateExitedEventDetails']['name']}"
    if kind in {"LambdaFunctionFailed", "TaskFailed"}:
        details = event.get("lambdaFunctionFailedEventDetails") or event.get("taskFailedEventDetails") or {}
        return f"  !! {details.get('error', 'error')}: {_short(details.get('cause', ''))}"
    if kind in {"LambdaFunctionTimedOut", "TaskTimedOut"}:
        return "  !! task timed out"
    if kind.startswith("Execution") and kind != "ExecutionStarted":
        return f"  == execution {kind.removeprefix('Execution').lower()}"
    return None


def _short(cause: str, limit: int = 160) -> str:
    with contextlib.suppress(ValueError, AttributeError):  # Lambda errors come as JSON, others as text
        cause = json.loads(cause).get("errorMessage", cause)
    return cause if len(cause) <= limit else cause[: limit - 3] + "..."


def summary(job: dict[str, Any] | None, *, deployment: Deployment) -> list[str]:
    if job is None:
        return ["  no job record (the job never reached ingest)"]
    counts, totals, outputs = job.get("counts", {}), job.get("totals", {}), job.get("outputs", {})
    lines = [f"  status     {job.get('status')}"]
    if job.get("originalJobId"):
        lines.append(f"  original   job {job['originalJobId']} holds the same bytes (nothing loaded again)")
    if job.get("replaces"):
        lines.append(f"  replaces   job {job['replaces']} (its rows were replaced by this job's in one commit)")
    if job.get("supersededBy"):
        lines.append(f"  superseded by job {job['supersededBy']} (a correction: its rows replaced these)")
    if "received" in counts or "records" in counts:
        lines.append(
            f"  rows       received {counts.get('received', counts.get('records', '?'))}, "
            f"loaded {counts.get('loaded', 0)}, rejected {counts.get('rejected', 0)}"
        )
    for reason, count in sorted((counts.get("reasons") or {}).items()):
        lines.append(f"             {reason}: {count}")
    for label in ("valid", "rejected", "loaded"):
        by_currency = totals.get(label) or {}
        if by_currency:
            rendered = ", ".join(f"{amount} {currency}" for currency, amount in sorted(by_currency.items()))
            lines.append(f"  {label:<10} {rendered}")
    if job.get("error"):
        error = job["error"]
        lines.append(f"  error      {error.get('Error')}: {_short(str(error.get('Cause', '')))}")
    for label in ("manifest", "quarantine", "processed"):
        location = outputs.get(label)
        if isinstance(location, list):
            location = f"{len(location)} file(s) under s3://{deployment.bucket}/processed/"
        elif location:
            location = f"s3://{deployment.bucket}/{location}"
        if location:
            lines.append(f"  {label:<10} {location}")
    return lines


# ------------------------------------------------------------------ progress of `pipeline run --wait`
# What a job is doing in each status it passes through before its end (handlers/jobflow.py).
STAGES = {
    QUEUED: "queued",
    ADMITTED: "planning (reading the file)",
    RECEIVED: "validating",
    VALIDATED: "transforming and loading",
}


@dataclass(frozen=True, kw_only=True)
class RunView:
    """Where a followed job is: its stage and, once it is planned, its chunks validated of planned."""

    stage: str
    chunks_done: int | None = None
    chunks_planned: int | None = None
    validating: bool = False  # the chunks are being validated: the bar measures them

    @property
    def text(self) -> str:
        if self.chunks_planned is None:
            return self.stage
        if self.validating:
            return f"{self.stage}: {self.chunks_done} of {self.chunks_planned} chunks"
        return f"{self.stage} ({self.chunks_done} of {self.chunks_planned} chunks validated)"

    @property
    def total(self) -> int | None:
        """What the bar measures, None for a bar that only shows the job is alive (its work has no
        count here, or every chunk is done and their verdict is awaited)."""
        measured = self.validating and self.chunks_planned is not None and self.chunks_done < self.chunks_planned
        return self.chunks_planned if measured else None


def run_view(job: dict[str, Any] | None, *, chunks_done: int | None, place: int | None = None) -> RunView:
    """What to show of ``job`` (its record, None before ingest registered it), given the chunks
    whose completion markers were found (None: not counted) and its place in the queue."""
    status = (job or {}).get("status")
    if status is None:
        return RunView(stage="starting")
    if status == QUEUED:
        return RunView(stage=f"queued (place {place})" if place else STAGES[QUEUED])
    planned = planned_chunks(job)
    if planned is not None and status == RECEIVED:
        return RunView(stage=STAGES[RECEIVED], chunks_done=chunks_done or 0, chunks_planned=planned, validating=True)
    if planned is not None and status == VALIDATED:  # every chunk validated: no need to count them
        return RunView(stage=STAGES[VALIDATED], chunks_done=planned, chunks_planned=planned)
    return RunView(stage=STAGES.get(status, status))


def planned_chunks(job: dict[str, Any] | None) -> int | None:
    """The chunks of the job's plan, once its plan stage recorded it (handlers/plan.py)."""
    chunks = ((job or {}).get("plan") or {}).get("chunks")
    return int(chunks) if chunks is not None else None


def counts_chunks(job: dict[str, Any] | None) -> bool:
    """Whether a poll lists the chunks' markers: only while they are being written."""
    return (job or {}).get("status") == RECEIVED and planned_chunks(job) is not None


# Chunks done are counted from their completion markers (lake/layout.py chunk_summary_key), one
# paginated listing per poll, rather than from the Distributed Map's DescribeMapRun item counts:
# the markers belong to the job whichever execution runs it (a queued job runs in an execution
# its predecessor started, found only through ListMapRuns of each execution), they include the
# chunks an earlier run of the same plan validated (not validated again), and the second pass of
# chunks with late duplicates, a map run of its own, does not reset them.
#
# A chunk's folder also holds a file per booking date and per id partition (thousands at 500 GB a
# day): listed one by one, they would be most of the keys. A delimiter found in their names but not
# in the marker's ("i": booking_date=..., ids/...; summary.json) rolls each chunk's other files into
# at most two common prefixes, so a listing returns about three entries per chunk. Delimiters are
# any string in S3's ListObjectsV2; tests/handlers/test_cli_progress.py checks the names still fit.
MARKER_DELIMITER = "i"


def chunks_prefix(job_id: str, plan_id: str) -> str:
    """What every chunk's keys of a plan start with (chunk_prefix without the chunk's number)."""
    return layout.chunk_prefix(job_id, plan_id, 0).rstrip("0")


def chunks_done(deployment: Deployment, job: dict[str, Any]) -> int:
    """The chunks of the job's plan whose completion marker is written (in the work bucket)."""
    job_id, plan_id = job["jobId"], job["plan"]["planId"]
    marker = layout.chunk_summary_key(job_id, plan_id, 0).removeprefix(layout.chunk_prefix(job_id, plan_id, 0))
    pages = (
        client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=deployment.work_bucket, Prefix=chunks_prefix(job_id, plan_id), Delimiter=MARKER_DELIMITER)
    )
    return sum(1 for page in pages for entry in page.get("Contents", []) if entry["Key"].endswith(marker))


class RunDisplay:
    """A one-line display of a followed job on standard error, above which the status lines are
    printed to standard output: the display is taken down for each line and drawn again, so a
    terminal showing both never mixes them (and standard output gets exactly the lines)."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=None),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            redirect_stdout=False,
            redirect_stderr=False,
            transient=True,
            expand=True,
        )
        self._task = self._progress.add_task("starting", total=None)

    def __enter__(self) -> RunDisplay:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def say(self, line: str) -> None:
        self._progress.stop()
        print(line, flush=True)
        self._progress.start()

    def show(self, view: RunView) -> None:
        self._progress.update(self._task, description=view.text, total=view.total, completed=view.chunks_done or 0)


# ------------------------------------------------------------------ progress of `pipeline validate`
def shows_progress(*, quiet: bool) -> bool:
    """Progress is for a person at a terminal: never with --quiet, nor when standard error goes
    elsewhere or to a terminal that cannot redraw a line (TERM=dumb)."""
    return not quiet and sys.stderr.isatty() and Console(file=sys.stderr).is_interactive


def validate_fields(progress: localjob.Progress) -> dict[str, Any]:
    """What the validate display shows of ``progress``: bytes of the file validated of its size
    (the bar, its rate and the time left follow from them) and the rows of the chunks done."""
    return {
        "description": "duplicates" if progress.step == localjob.DUPLICATES else "validating",
        "completed": progress.validated_bytes,
        "total": progress.total_bytes,
        "rows": f"{progress.rows:,} rows",
    }


@contextlib.contextmanager
def validate_display(*, show: bool) -> Iterator[localjob.ProgressCallback | None]:
    """A callback drawing `pipeline validate`'s progress on standard error (None without ``show``).
    The display starts with its first call (a copy of standard input comes before it) and stays,
    at 100 % and the time taken once the file is checked, when the block ends."""
    if not show:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        TaskProgressColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]}"),
        TransferSpeedColumn(),
        TimeRemainingColumn(elapsed_when_finished=True),
        console=Console(file=sys.stderr),
        redirect_stdout=False,
        redirect_stderr=False,
        expand=True,
    )
    task = progress.add_task("validating", total=None, rows="")

    def tell(state: localjob.Progress) -> None:
        # Drawn now, not at the next of rich's ten refreshes a second: each chunk done is seen.
        progress.update(task, **validate_fields(state), refresh=True)
        progress.start()  # the first call draws it (with something to show); later ones do nothing

    try:
        yield tell
        progress.update(task, description="checked")
    finally:
        progress.stop()
