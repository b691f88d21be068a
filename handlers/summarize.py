"""Summarize: the job's verdict from its chunks, once every chunk is final.

Reads every chunk's summary (and, for plans of several chunks, the duplicate step's findings).
A chunk holding late duplicates that it has not been validated with yet sends the state machine
round once more (``REVALIDATE``: those chunks only). Otherwise the sums are checked against the
plan, the reject threshold is judged on the whole file, and the job becomes VALIDATED (with the
booking dates transform will write) or REJECTED.
"""

from __future__ import annotations

import json
from decimal import Decimal

from handlers import jobflow
from handlers.config import Settings
from handlers.dal import jobs, objects
from handlers.errors import ReconciliationError
from handlers.logic.chunkwork import merge_summaries
from handlers.logic.totals import CurrencyTotals
from handlers.logic.validation import exceeds_threshold
from handlers.logic.values import parse_threshold
from handlers.observability import JOBS_REJECTED, REJECT_RATE, ROWS_RECEIVED, ROWS_REJECTED, MetricUnit, count, logger
from handlers.validate import late_digest, late_lines_by_chunk
from lake import layout

REVALIDATE = "REVALIDATE"
STAGE = "summarize"


@jobflow.task(STAGE, statuses=(jobflow.RECEIVED, jobflow.VALIDATED, jobflow.REJECTED))
def lambda_handler(job: dict, event: dict, settings: Settings) -> dict:
    previous = jobs.stored_result(job, STAGE)
    if previous is not None:
        return previous
    job_id, plan_id, bucket = job["jobId"], event["planId"], settings.work_bucket
    plan = objects.get_json(bucket=bucket, key=layout.plan_key(job_id, plan_id))
    summaries = objects.parallel(
        lambda item: objects.get_json(bucket=bucket, key=layout.chunk_summary_key(job_id, plan_id, item["index"])),
        plan["chunks"],
    )
    if len(plan["chunks"]) > 1:
        stale = _chunks_to_revalidate(bucket=bucket, job_id=job_id, plan=plan, summaries=summaries)
        if stale:
            objects.put_json(bucket=bucket, key=layout.revalidate_key(job_id, plan_id), document=stale)
            logger.info("chunks hold ids first seen in earlier chunks", extra={"chunks": [s["index"] for s in stale]})
            return {
                **_ids(job, event, bucket),
                "status": REVALIDATE,
                "revalidateKey": layout.revalidate_key(job_id, plan_id),
            }
    return _verdict(job=job, event=event, plan=plan, summaries=summaries, settings=settings)


def _ids(job: dict, event: dict, bucket: str) -> dict:
    return {"jobId": job["jobId"], "runId": job["runId"], "planId": event["planId"], "bucket": bucket}


def _chunks_to_revalidate(*, bucket: str, job_id: str, plan: dict, summaries: list[dict]) -> list[dict]:
    items = {item["index"]: item for item in plan["chunks"]}
    late = late_lines_by_chunk(bucket=bucket, job_id=job_id, plan=plan)  # each partition read once, not per chunk
    stale = []
    for summary in summaries:
        lines = late.get(summary["chunk"], [])
        if (late_digest(lines) if lines else None) != summary.get("lateDigest"):
            stale.append({**items[summary["chunk"]], "late": True})
    return stale


def _verdict(*, job: dict, event: dict, plan: dict, summaries: list[dict], settings: Settings) -> dict:
    job_id = job["jobId"]
    total = merge_summaries(summaries)
    if total.records != plan["records"]:
        raise ReconciliationError(
            f"job {job_id}: chunks hold {total.records} records, the plan counted {plan['records']}"
        )
    threshold = _threshold(job, default=settings.reject_threshold)
    rejected_job = exceeds_threshold(rejected=total.rejected, records=total.records, threshold=threshold)
    status = jobflow.REJECTED if rejected_job else jobflow.VALIDATED
    report = total.to_dict()
    output = {
        **_ids(job, event, settings.work_bucket),
        "status": status,
        "records": total.records,
        "valid": total.valid,
        "rejected": total.rejected,
    }
    attributes: dict[str, object] = {
        "counts.records": total.records,
        "counts.valid": total.valid,
        "counts.rejected": total.rejected,
        "counts.reasons": report["reasons"],
        "totals": {**report["totals"], "rowsByCurrency": report["rowsByCurrency"]},
        "unknownColumns": report["unknownColumns"],
        "rejectThreshold": str(threshold),
        "outputs.quarantine": f"{layout.quarantine_prefix(job_id)}/{event['planId']}/",
    }
    if rejected_job:
        output["reason"] = f"{total.rejected} of {total.records} rows rejected, above the threshold {threshold}"
        attributes["rejection"] = output["reason"]
    else:
        dates = _dates(summaries, item_rows=settings.transform_item_rows)
        objects.put_json(bucket=settings.work_bucket, key=layout.dates_key(job_id, event["planId"]), document=dates)
        output.update(items=len(dates), datesKey=layout.dates_key(job_id, event["planId"]))
    count(ROWS_RECEIVED, total.records)
    count(ROWS_REJECTED, total.rejected)
    count(
        REJECT_RATE, float(Decimal(100 * total.rejected) / total.records) if total.records else 0.0, MetricUnit.Percent
    )
    if rejected_job:
        count(JOBS_REJECTED, 1)
    logger.info("job judged", extra={"status": status, "records": total.records, "rejected": total.rejected})
    return jobflow.complete_stage(
        job=job,
        stage=STAGE,
        from_statuses=(jobflow.RECEIVED,),
        outcome=jobflow.Outcome(status=status, output=output, attributes=attributes),
    )


def _threshold(job: dict, *, default: Decimal) -> Decimal:
    stored = (job.get("params") or {}).get("rejectThreshold")
    return parse_threshold(stored, setting="rejectThreshold") if stored is not None else default


# A transform item is a run of small booking dates, closed once it holds this many rows (or the
# setting's, if fewer) or dates: a day's file is a few items, a file spread over a year of dates is
# not hundreds of invocations. A date of more than TRANSFORM_ITEM_ROWS rows is cut instead into
# runs of its chunks, each an item of its own (``_slices``).
ITEM_ROWS = 4_000_000
ITEM_DATES = 64
ITEM_BYTES = 100_000  # well below the 256 KiB a Map item may hold


def _dates(summaries: list[dict], *, item_rows: int) -> list[dict]:
    """Transform's items: runs of booking dates, each date with the chunks holding it (in order),
    its rows and totals; a date larger than ``item_rows`` as several items (``item`` of ``items``)."""
    dates: dict[str, list[tuple[int, int, CurrencyTotals]]] = {}
    for summary in summaries:
        for booking_date, entry in summary["dates"].items():
            dates.setdefault(booking_date, []).append(
                (summary["chunk"], entry["rows"], CurrencyTotals.from_dict(entry["totals"]))
            )
    items: list[dict] = []
    size = 0
    for booking_date, chunks in sorted(dates.items()):
        slices = _slices(chunks, item_rows)
        if len(slices) > 1:
            date_totals = _merged(totals for _, _, totals in chunks).to_dict()
            for number, run in enumerate(slices):
                entry = {**_entry(booking_date, run), "item": number, "items": len(slices), "dateTotals": date_totals}
                items.append({"dates": [entry], "rows": entry["rows"]})
            size = ITEM_BYTES  # the next date starts an item of its own
            continue
        entry = _entry(booking_date, chunks)
        entry_size = len(json.dumps(entry))
        if (
            not items
            or items[-1]["rows"] >= min(ITEM_ROWS, item_rows)
            or len(items[-1]["dates"]) >= ITEM_DATES
            or size + entry_size > ITEM_BYTES
        ):
            items.append({"dates": [], "rows": 0})
            size = 0
        items[-1]["dates"].append(entry)
        items[-1]["rows"] += entry["rows"]
        size += entry_size
    return items


def _slices(chunks: list[tuple[int, int, CurrencyTotals]], item_rows: int) -> list[list]:
    """The date's chunks (in order) cut into runs of at most ``item_rows`` rows; a chunk holding
    more rows of the date than that is a run of its own (a chunk is bounded by CHUNK_BYTES)."""
    runs: list[list] = [[]]
    rows = 0
    for chunk in chunks:
        if runs[-1] and rows + chunk[1] > item_rows:
            runs.append([])
            rows = 0
        runs[-1].append(chunk)
        rows += chunk[1]
    return runs


def _merged(totals) -> CurrencyTotals:
    merged = CurrencyTotals()
    for one in totals:
        merged.merge(one)
    return merged


def _entry(booking_date: str, chunks: list[tuple[int, int, CurrencyTotals]]) -> dict:
    return {
        "bookingDate": booking_date,
        "chunks": [chunk for chunk, _, _ in chunks],
        "rows": sum(rows for _, rows, _ in chunks),
        "totals": _merged(totals for _, _, totals in chunks).to_dict(),
    }
