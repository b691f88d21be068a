"""Corrections: a job that replaces another, and the replaced job, SUPERSEDED, naming its successor.

A producer who corrects a file that has loaded sends it again saying which job it replaces (the
`replaces-job` object metadata or `pipeline run FILE --replaces JOB`, docs/data-contract.md). Its
load removes the replaced job's rows in the same commit that adds its own (handlers/dal/ledger.py);
then the replaced job is marked here. Only a LOADED job can be replaced, and only once.
"""

from __future__ import annotations

from handlers.dal import jobs
from handlers.errors import InvalidInputError

SUPERSEDED = "SUPERSEDED"
REPLACEABLE = ("LOADED",)


def check_replaceable(job_id: str, *, by: str) -> dict:
    """The job `by` replaces, which must exist, have loaded, and not be replaced by another job."""
    if job_id == by:
        raise InvalidInputError(f"job {by} cannot replace itself")
    replaced = jobs.get_job(job_id)
    if replaced is None:
        raise InvalidInputError(f"job {by} replaces job {job_id}, which does not exist")
    successor = replaced.get("supersededBy")
    if replaced.get("status") == SUPERSEDED and successor == by:
        return replaced  # this job's own earlier try got this far
    if replaced.get("status") not in REPLACEABLE:
        raise InvalidInputError(
            f"job {by} replaces job {job_id}, which is {replaced.get('status')}"
            + (f" (replaced by {successor})" if successor else "")
            + f"; only a job in {', '.join(REPLACEABLE)} can be replaced"
        )
    return replaced


def supersede(job_id: str, *, by: str, timestamp: str) -> None:
    """Mark `job_id` SUPERSEDED by `by` (once; a second try of the same successor is a no-op)."""
    done = jobs.updated(
        job_id,
        UpdateExpression="SET #status = :superseded, supersededBy = :by, supersededAt = :at",
        ConditionExpression="#status IN (:loaded) OR (#status = :superseded AND supersededBy = :by)",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":superseded": SUPERSEDED, ":by": by, ":at": timestamp, ":loaded": REPLACEABLE[0]},
    )
    if not done:
        check_replaceable(job_id, by=by)  # raises, naming what the replaced job has become
