"""Admission: at most MAX_RUNNING_JOBS jobs run at once; the others wait, oldest first.

Runs at three moments, and each time admits waiting jobs while slots are free:

* ``arrive``: right after ingest queued a job (the execution goes on if it admitted its own job);
* ``release``: when a job ends, whatever its outcome (its slot is freed first);
* ``drain``: on a schedule, as a safety net (an execution that died without releasing).

A job admitted here by another job's execution is started as an execution of its own, named from
its run (``start`` in the output; the state machine starts them), so a repeated start of the same
admitted job is refused by Step Functions instead of running twice. Nothing waits in memory: a
waiting job is a row in the table's queue index, and costs nothing until a slot frees.
"""

from __future__ import annotations

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import admission, jobs
from handlers.errors import InvalidInputError
from handlers.logic.requests import execution_name
from handlers.observability import logger

ARRIVE, RELEASE, DRAIN = "arrive", "release", "drain"
# Which execution runs an admitted job: the one its arrival started (named by EventBridge, so
# it cannot be started again by name), or a new one named from its run.
OWN_EXECUTION, NEW_EXECUTION = "own", "new"
# A job admitted into a new execution that has not moved it for this long is started again
# (same name: a no-op if that execution exists). A job running in its own execution is never
# restarted: its plan may well take longer than this, and a second execution would run it twice.
RESTART_AFTER_SECONDS = 300


@jobflow.entry("admit")
def lambda_handler(event: dict, settings: Settings) -> dict:
    action = event.get("action")
    if action not in (ARRIVE, RELEASE, DRAIN):
        raise InvalidInputError(f"admission action must be one of {ARRIVE}, {RELEASE}, {DRAIN}; got {action!r}")
    job_id = event.get("jobId")
    # A release after a failure that was not the job's (a refused second start, a stale run after a
    # forced takeover) leaves the slot to the run that owns the job: that run releases it as it ends.
    if action == RELEASE and isinstance(job_id, str) and event.get("recorded") != jobs.NOT_OWNER:
        admission.release(job_id)
    arriving = (job_id, event.get("runId")) if action == ARRIVE else None
    admitted = admit_waiting(settings, arriving=arriving)
    own = next((entry for entry in admitted if (entry["jobId"], entry["runId"]) == arriving), None)
    others = [entry for entry in admitted if entry is not own]
    if action == DRAIN:
        others += _stalled(settings, exclude={entry["jobId"] for entry in others})
    output = {
        "admitted": own is not None,
        "start": [{"name": execution_name(e["jobId"], e["runId"]), "input": _admitted_input(e)} for e in others],
    }
    if isinstance(job_id, str):
        output.update(jobId=job_id, runId=event.get("runId"))
        if action == ARRIVE and own is None:
            output["place"] = _place(job_id)
    logger.info("admission", extra={"action": action, "admitted": [e["jobId"] for e in admitted]})
    return output


def _admitted_input(entry: dict) -> dict:
    return {"admitted": True, "jobId": entry["jobId"], "runId": entry["runId"]}


def _place(job_id: str) -> int | None:
    job = jobs.get_job(job_id) or {}
    return admission.place(int(job["ticket"])) if job.get("status") == jobflow.QUEUED else None


def admit_waiting(settings: Settings, *, arriving: tuple[object, object] | None = None) -> list[dict]:
    """Give free slots to the oldest waiting jobs; the jobs admitted (jobId, runId), oldest first.
    The ``arriving`` run (jobId, runId), if admitted, goes on in the execution its arrival started.
    Only that run: a job another start took over since (a forced start) is a new run, which this
    execution would not run (its next stage finds the job owned by the other run), so it is
    started in an execution of its own like any job admitted here."""
    slots = settings.max_running_jobs
    _free_abandoned_slots(settings)
    admitted: list[dict] = []
    # A few more than the slots: the queue index may still list jobs that just left it.
    for waiting in admission.waiting(limit=2 * slots):
        job = jobs.get_job(waiting["jobId"])
        if job is None or job.get("status") != jobflow.QUEUED:
            continue
        if not admission.hold(job["jobId"], slots=slots):
            break  # full: the others keep their place
        into = OWN_EXECUTION if (job["jobId"], job["runId"]) == arriving else NEW_EXECUTION
        if jobs.admit(job_id=job["jobId"], run_id=job["runId"], timestamp=jobflow.utc_now(), into=into):
            admitted.append({"jobId": job["jobId"], "runId": job["runId"]})
        # Otherwise it moved meanwhile, most often admitted by a concurrent admitter into this
        # very slot: releasing it here would let a third job run. A slot kept for a job that
        # failed or ended instead is freed by the next round's look at the holders.
    return admitted


def _free_abandoned_slots(settings: Settings) -> None:
    """Slots held by jobs that ended without releasing them, or stopped making progress."""
    now = jobs.now_epoch()
    for holder in admission.holders():
        job = jobs.get_job(holder)
        status = (job or {}).get("status")
        if status == jobflow.QUEUED:
            continue  # holds a slot but was not marked admitted yet: admitted in this round
        idle = now - int((job or {}).get("updatedAt") or 0)
        if status not in jobflow.RUNNING_STATUSES or idle >= settings.job_lease_seconds:
            logger.warning("freeing an abandoned slot", extra={"holder": holder, "status": status, "idle": idle})
            admission.release(holder)


def _stalled(settings: Settings, *, exclude: set[str]) -> list[dict]:
    """Jobs admitted into a new execution that never moved them (its start was lost): start them again."""
    now = jobs.now_epoch()
    stalled = []
    for holder in sorted(admission.holders() - exclude):
        job = jobs.get_job(holder) or {}
        if job.get("status") != jobflow.ADMITTED or job.get("admittedInto") == OWN_EXECUTION:
            continue
        if now - int(job.get("updatedAt") or 0) >= RESTART_AFTER_SECONDS:
            stalled.append({"jobId": holder, "runId": job["runId"]})
    return stalled
