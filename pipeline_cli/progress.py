"""Follow an execution state by state, then summarize the job record."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

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
    poll_seconds: float = 1.0,
    timeout_seconds: float = 1800,
) -> dict[str, Any]:
    """Print the job's status as it changes (its work may run in any execution: the one that
    queued it, or the one a finishing job started for it); return its final record."""
    deadline = time.monotonic() + timeout_seconds
    shown = None
    while True:
        job = deployment.job(job_id)
        status = (job or {}).get("status")
        line = status and (f"{status} (place {deployment.place(job)} in the queue)" if status == "QUEUED" else status)
        if line and line != shown:
            say(f"  job {job_id}: {line}")
            shown = line
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
