"""The job table: one item per jobId, plus source-sha256#<hex> marker items (same table).

Every write that moves a job forward is conditional on the run that owns it (``runId``) and on
the status it expects, so a stale or concurrent execution fails instead of overwriting.
Stage outputs are stored as JSON text under ``results.<stage>``, which keeps numbers out of
DynamoDB's Decimal conversion and lets a retried stage return exactly what it returned before.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal

from botocore.exceptions import ClientError

from handlers.config import get_settings
from handlers.dal.clients import dynamodb_resource

SOURCE_MARKER_PREFIX = "source-sha256#"
# mark_failed's answer when another run owns the job (or it finished): that run's state is left alone.
NOT_OWNER = "not-owner"


def table():
    return dynamodb_resource().Table(get_settings().jobs_table)


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def written(write: Callable[[], object]) -> bool:
    """Make a conditional write: True if it was written, False if its condition did not hold."""
    try:
        write()
        return True
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise


def updated(job_id: str, **request: object) -> bool:
    """A conditional UpdateItem of one job: True if it was written, False if its condition did not hold."""
    return written(lambda: table().update_item(Key={"jobId": job_id}, **request))


def now_epoch() -> int:
    return int(time.time())


def _plain(value: object) -> object:
    """DynamoDB numbers come back as Decimal; every number this table holds is a count."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def get_job(job_id: str) -> dict | None:
    item = table().get_item(Key={"jobId": job_id}, ConsistentRead=True).get("Item")
    return _plain(item) if item is not None else None


def stored_result(job: dict, stage: str) -> dict | None:
    text = (job.get("results") or {}).get(stage)
    return json.loads(text) if text else None


def put_new_job(item: dict) -> bool:
    """Register a job that does not exist yet. False if someone registered it first."""
    return written(lambda: table().put_item(Item=item, ConditionExpression="attribute_not_exists(jobId)"))


def replace_job(item: dict, *, expected_run_id: str, expected_updated_at: int) -> bool:
    """Take a job over (forced, after failure, or stale). False if it moved meanwhile."""
    return written(
        lambda: table().put_item(
            Item=item,
            ConditionExpression="runId = :run AND updatedAt = :updated",
            ExpressionAttributeValues={":run": expected_run_id, ":updated": expected_updated_at},
        )
    )


def _update_expression(assignments: dict[str, object]) -> tuple[str, dict, dict]:
    names: dict[str, str] = {}
    values: dict[str, object] = {}
    parts = []
    for number, (path, value) in enumerate(assignments.items()):
        segments = []
        for segment in path.split("."):
            placeholder = f"#n{len(names)}"
            names[placeholder] = segment
            segments.append(placeholder)
        values[f":v{number}"] = value
        parts.append(f"{'.'.join(segments)} = :v{number}")
    return "SET " + ", ".join(parts), names, values


def complete_stage(
    *,
    job_id: str,
    run_id: str,
    stage: str,
    from_statuses: tuple[str, ...],
    status: str,
    output: dict,
    attributes: dict[str, object],
    timestamp: str,
) -> bool:
    """Record a stage's outcome once. False if the job is not (any more) in an expected state."""
    assignments = {
        "status": status,
        f"results.{stage}": json.dumps(output, sort_keys=True),
        f"stageTimes.{stage}": timestamp,
        "updatedAt": now_epoch(),
        "codeVersion": get_settings().code_version,
        **attributes,
    }
    expression, names, values = _update_expression(assignments)
    names.update({"#run": "runId", "#st": "status", "#res": "results", "#stage": stage})
    status_values = {f":from{i}": s for i, s in enumerate(from_statuses)}
    values.update({":run": run_id, **status_values})
    condition = f"#run = :run AND #st IN ({', '.join(status_values)}) AND attribute_not_exists(#res.#stage)"
    return updated(
        job_id,
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def mark_failed(*, job_id: str, run_id: str | None, error: dict, timestamp: str, finished: tuple[str, ...]) -> str:
    """Set FAILED with the error. Returns "updated", "created", "kept" (the run had already failed:
    its first error stays) or "not-owner" (also for a job in one of the ``finished`` statuses,
    which a late error of its execution never changes).

    With ``run_id`` only that run's job is changed. Without one (ingest failed before it
    registered anything) the job is created as FAILED if missing, or updated if it is
    already FAILED; a job that another run owns or that finished is left alone.
    """
    assignments = {
        "status": "FAILED",
        "error": error,
        "stageTimes.failed": timestamp,
        "updatedAt": now_epoch(),
        "codeVersion": get_settings().code_version,
    }
    expression, names, values = _update_expression(assignments)
    expression += " REMOVE #queue"  # a failed job waits for nothing
    names["#st"] = "status"
    names["#queue"] = "queue"
    if run_id:
        names["#run"] = "runId"
        names["#error"] = "error"
        # The first error of a run is its cause (a failed map item, then the map's own error): kept.
        final = {f":finished{i}": status for i, status in enumerate(finished)}
        condition = (
            f"#run = :run AND NOT #st IN ({', '.join(final)}) AND (#st <> :failed OR attribute_not_exists(#error))"
        )
        values.update({":run": run_id, ":failed": "FAILED", **final})
    else:
        condition = "#st = :failed"
        values[":failed"] = "FAILED"
    if updated(
        job_id,
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    ):
        return "updated"
    if run_id and get_job(job_id) is not None:
        current = get_job(job_id) or {}
        if current.get("runId") == run_id and current.get("status") == "FAILED":
            return "kept"  # this run already failed with its cause recorded
        return NOT_OWNER
    item = {
        "jobId": job_id,
        "status": "FAILED",
        "error": error,
        "runId": "none",
        "stageTimes": {"failed": timestamp},
        "results": {},
        "updatedAt": now_epoch(),
        "codeVersion": get_settings().code_version,
        "createdAt": timestamp,
    }
    return "created" if put_new_job(item) else NOT_OWNER


def note_refused_start(*, job_id: str, error: dict, timestamp: str) -> None:
    """Keep a trace of a start that was refused, without touching the job's status."""
    expression, names, values = _update_expression({"lastRefusedStart": {**error, "at": timestamp}})
    table().update_item(
        Key={"jobId": job_id},
        UpdateExpression=expression,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ConditionExpression="attribute_exists(jobId)",
    )


def claim_source(*, sha256: str, job_id: str, timestamp: str) -> str | None:
    """Make ``job_id`` the owner of a source digest. Returns the other owner if it is taken."""
    key = SOURCE_MARKER_PREFIX + sha256
    if written(
        lambda: table().put_item(
            Item={"jobId": key, "ownerJobId": job_id, "claimedAt": timestamp},
            ConditionExpression="attribute_not_exists(jobId) OR ownerJobId = :me",
            ExpressionAttributeValues={":me": job_id},
        )
    ):
        return None
    item = table().get_item(Key={"jobId": key}, ConsistentRead=True).get("Item") or {}
    return item.get("ownerJobId")


def transfer_source(*, sha256: str, from_job_id: str, to_job_id: str, timestamp: str) -> bool:
    """Move a digest marker from one job to another, only if it still belongs to the first."""
    return written(
        lambda: table().put_item(
            Item={
                "jobId": SOURCE_MARKER_PREFIX + sha256,
                "ownerJobId": to_job_id,
                "claimedAt": timestamp,
                "previousOwnerJobId": from_job_id,
            },
            ConditionExpression="ownerJobId = :previous",
            ExpressionAttributeValues={":previous": from_job_id},
        )
    )


def touch(*, job_id: str, run_id: str) -> None:
    """Note progress of this run (a chunk done), so admission does not take a busy job's slot
    back during a long map. Nothing if the run no longer owns the job."""
    updated(
        job_id,
        UpdateExpression="SET updatedAt = :now",
        ConditionExpression="#run = :run",
        ExpressionAttributeNames={"#run": "runId"},
        ExpressionAttributeValues={":run": run_id, ":now": now_epoch()},
    )


def admit(*, job_id: str, run_id: str, timestamp: str, into: str) -> bool:
    """QUEUED -> ADMITTED for this run, taking the job off the waiting index. False if it moved.
    ``into``: the execution that runs it now (admit.OWN_EXECUTION or admit.NEW_EXECUTION)."""
    return updated(
        job_id,
        UpdateExpression=(
            "SET #st = :admitted, stageTimes.admitted = :at, updatedAt = :now, admittedInto = :by REMOVE #queue"
        ),
        ConditionExpression="#run = :run AND #st = :queued",
        ExpressionAttributeNames={"#st": "status", "#run": "runId", "#queue": "queue"},
        ExpressionAttributeValues={
            ":admitted": "ADMITTED",
            ":queued": "QUEUED",
            ":run": run_id,
            ":at": timestamp,
            ":now": now_epoch(),
            ":by": into,
        },
    )
