"""The report's model (pipeline_cli/report.py) from what the pipeline already wrote, or from a local check.

Every figure is read, not computed again: counts, reasons and control totals from the job record;
per booking date and currency rows and exact totals from a loaded job's manifest (as load
reconciled them), else from summarize's transform items (``results.summarize.datesKey``, in the
work bucket, which expire) or, for a rejected job, from its chunks' summaries; snapshot ids from
the manifest. The quarantine is streamed once, part by part, for the first rejected lines and the
rejects per column (named by each entry's ``details``); it is never held whole.

``report_for_job`` reads a deployment; ``report_for_validation`` takes a local validation
(``pipeline validate``); the rest is pure.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from handlers.logic import contract
from handlers.logic.amounts import format_minor_units
from handlers.logic.totals import CurrencyTotals
from lake import layout
from pipeline_cli.deployment import Deployment, client
from pipeline_cli.report import (
    CurrencyFigure,
    DateFigure,
    Failure,
    JobLink,
    JobReport,
    Lineage,
    RejectLine,
    StageSpan,
)

FIRST_REJECTS = 50
WHOLE_ROW = "(whole row)"
_UNDECODABLE = ": contains bytes that are not valid UTF-8"  # handlers/logic/rules.py: any column, named first
# Step Functions' Catch passes the failed state's error; the stages record when each one completed.
# Each span runs from the previous mark to its own: (mark on the job's stageTimes, what ran up to it).
STAGES = (
    ("admitted", "Waiting for a slot"),
    ("plan", "Plan"),
    ("summarize", "Validate and judge"),
    ("load", "Transform and load"),
)
MEANINGS = {
    "LOADED": "its valid rows are in the ledger; its rejected rows are in the quarantine",
    "REJECTED": "too large a share of its rows failed the data contract, so nothing was loaded",
    "FAILED": "the pipeline stopped on an error before the job finished",
    "RESENT": "its file's bytes had been sent before as another job, so nothing was done again",
    "SUPERSEDED": "it loaded, then a correction replaced its rows in the ledger",
    "ACCEPTED": "its rejected share is within the threshold, so the file would load (checked locally only)",
}
RUNNING_MEANING = "the job has not finished yet: the figures are those written so far"


# ------------------------------------------------------------------ rejects, streamed
def column_of(detail: str) -> str:
    """The column a quarantine detail names ("amount: not an unsigned plain decimal string"), or
    WHOLE_ROW for a row that could not be read into columns ("row has 5 columns, header has 7")."""
    if detail.endswith(_UNDECODABLE):
        return detail[: -len(_UNDECODABLE)]
    name, separator, _ = detail.partition(": ")
    return name if separator and name in contract.CONTRACT_FIELDS else WHOLE_ROW


class RejectScan:
    """One pass over the rejects, in line order: the first few kept, every one counted per column."""

    def __init__(self, *, first: int = FIRST_REJECTS) -> None:
        self.first_count = first
        self.first: list[RejectLine] = []
        self.total = 0
        self.columns: Counter[str] = Counter()
        self.without_details = 0  # entries that name no detail (a caller's trimmed rejects)

    def add(self, entry: Mapping[str, Any]) -> None:
        self.total += 1
        details = entry.get("details")
        if isinstance(details, list):
            for column in {column_of(str(detail)) for detail in details}:
                self.columns[column] += 1
        else:
            self.without_details += 1
        if len(self.first) < self.first_count:
            self.first.append(_reject_line(entry))

    def add_all(self, entries: Iterable[Mapping[str, Any]]) -> RejectScan:
        for entry in entries:
            self.add(entry)
        return self

    def by_column(self) -> tuple[tuple[str, int], ...] | None:
        if self.without_details:
            return None
        return tuple(sorted(self.columns.items(), key=lambda item: (-item[1], item[0])))


def _reject_line(entry: Mapping[str, Any]) -> RejectLine:
    shown = entry.get("record", entry.get("raw"))
    line = entry.get("line")
    transaction_id = entry.get("transaction_id")
    return RejectLine(
        line=line if isinstance(line, int) else None,
        transaction_id=None if transaction_id is None else str(transaction_id),
        reasons=tuple(str(code) for code in entry.get("reasons") or ()),
        details=tuple(str(detail) for detail in entry.get("details") or ()),
        record=None if shown is None else json.dumps(shown, ensure_ascii=False, sort_keys=True, default=str),
    )


# ------------------------------------------------------------------ figures read from summaries
def date_figures(entries: Iterable[tuple[str, Mapping[str, Any]]]) -> tuple[DateFigure, ...]:
    """Per booking date and currency rows and exact totals from the pipeline's own per-date entries
    (booking date, CurrencyTotals.to_dict()): a transform item's date, a chunk's date. A date found
    in several entries (a large date's items, or its chunks) is merged as summarize merges it."""
    dates: dict[str, CurrencyTotals] = {}
    for booking_date, totals in entries:
        dates.setdefault(booking_date, CurrencyTotals()).merge(CurrencyTotals.from_dict(totals))
    return tuple(
        DateFigure(
            booking_date=booking_date,
            rows=totals.row_count,
            currencies=tuple(
                CurrencyFigure(
                    currency=currency,
                    rows=totals.rows[currency],
                    total=format_minor_units(
                        minor_units=totals.minor_units[currency], exponent=contract.CURRENCY_EXPONENTS[currency]
                    ),
                )
                for currency in sorted(totals.rows)
            ),
        )
        for booking_date, totals in sorted(dates.items())
    )


def transform_item_dates(items: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The per-date entries of summarize's transform items (``dates.json``)."""
    for item in items:
        for entry in item["dates"]:
            yield entry["bookingDate"], entry["totals"]


def chunk_dates(chunks: Iterable[Mapping[str, Mapping[str, Any]]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The per-date entries of chunks: a chunk summary's ``dates``, or a local ChunkResult's."""
    for dates in chunks:
        for booking_date, entry in dates.items():
            yield booking_date, entry["totals"]


def currency_figures(amounts: Mapping[str, str], rows: Mapping[str, Any]) -> tuple[CurrencyFigure, ...]:
    return tuple(
        CurrencyFigure(currency=currency, rows=int(rows.get(currency, 0)), total=str(amount))
        for currency, amount in sorted(amounts.items())
    )


def share_text(*, rejected: int | None, received: int | None) -> str | None:
    """The rejected share in percent, for reading (the verdict was judged by the pipeline)."""
    if rejected is None or not received:
        return None
    return f"{(Decimal(100 * rejected) / received).quantize(Decimal('0.01'))} %"


def threshold_text(threshold: str | None) -> str:
    if threshold is None:
        return "(not recorded)"
    percent = (Decimal(threshold) * 100).normalize()
    return f"{threshold} ({percent:f} %)"


# ------------------------------------------------------------------ stages
def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _milliseconds(later: str, earlier: str) -> int:
    return (_instant(later) - _instant(earlier)) // timedelta(milliseconds=1)


def stage_spans(job: Mapping[str, Any]) -> tuple[tuple[StageSpan, ...], str | None]:
    """The stages that ran, each from the previous mark to its own, and for a FAILED job the
    stage it failed in (the first without a mark; "Ingest" when the job was never registered)."""
    times = job.get("stageTimes") or {}
    start = times.get("queued") or job.get("createdAt")
    failed_at = times.get("failed") if job.get("status") == "FAILED" else None
    if start is None:
        return (), ("Ingest" if failed_at else None)
    spans, previous = [], start
    for mark, label in STAGES:
        at = times.get(mark)
        if at is None:
            if failed_at is None:
                break
            spans.append(_span(mark, label, previous, failed_at, origin=start, failed=True))
            return tuple(spans), label
        spans.append(_span(mark, label, previous, at, origin=start))
        previous = at
    return tuple(spans), None


def _span(mark: str, label: str, started: str, ended: str, *, origin: str, failed: bool = False) -> StageSpan:
    return StageSpan(
        stage=mark,
        label=label,
        started=started,
        offset_ms=_milliseconds(started, origin),
        duration_ms=max(0, _milliseconds(ended, started)),
        failed=failed,
    )


def failure_of(job: Mapping[str, Any], stage: str | None) -> Failure | None:
    if job.get("status") != "FAILED":
        return None
    error = job.get("error") or {}
    return Failure(stage=stage or "unknown", error=str(error.get("Error") or "UnknownError"), cause=_cause(error))


def _cause(error: Mapping[str, Any]) -> str:
    """A Lambda error's cause is JSON (errorType, errorMessage, stackTrace): its message is the cause."""
    cause = str(error.get("Cause") or "")
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


# ------------------------------------------------------------------ the job's report
def _count(counts: Mapping[str, Any], name: str) -> int | None:
    value = counts.get(name)
    return None if value is None else int(value)


def verdict_text(*, job: Mapping[str, Any], failed_stage: str | None, other_status: str | None) -> str:
    status = job.get("status")
    counts = job.get("counts") or {}
    received, loaded, rejected = (_count(counts, name) for name in ("received", "loaded", "rejected"))
    share = share_text(rejected=rejected, received=received)
    threshold = threshold_text(job.get("rejectThreshold"))
    if status == "LOADED":
        return (
            f"All {received} rows are accounted for: {loaded} loaded into the ledger and {rejected} rejected "
            f"({share}), within the threshold {threshold}."
        )
    if status == "REJECTED":
        return (
            f"{rejected} of {received} rows ({share}) failed the data contract, above the threshold {threshold}: "
            "nothing was loaded."
        )
    if status == "FAILED":
        error = (job.get("error") or {}).get("Error") or "an unknown error"
        return f"The job failed in the stage “{failed_stage or 'unknown'}” with {error}; it did not finish."
    if status == "RESENT":
        other = job.get("originalJobId")
        return f"Its file's bytes are those of job {other} ({other_status or 'status unknown'}): not processed again."
    if status == "SUPERSEDED":
        return (
            f"It loaded {loaded} rows; the correction job {job.get('supersededBy')} replaced them "
            f"at {job.get('supersededAt')}."
        )
    return f"The job is {status}: it has not finished."


def job_links(job: Mapping[str, Any], statuses: Mapping[str, str | None]) -> tuple[JobLink, ...]:
    links = []
    if job.get("replaces"):
        links.append(JobLink(relation="Corrects job", job_id=job["replaces"], status=statuses.get(job["replaces"])))
    if job.get("supersededBy"):
        links.append(
            JobLink(relation="Replaced by correction", job_id=job["supersededBy"], at=job.get("supersededAt"))
        )
    if job.get("originalJobId"):
        other = job["originalJobId"]
        links.append(JobLink(relation="Same file as job", job_id=other, status=statuses.get(other)))
    return tuple(links)


def job_report(
    *,
    job: Mapping[str, Any],
    manifest: Mapping[str, Any] | None,
    dates: tuple[DateFigure, ...] | None,
    dates_note: str | None,
    rejects: RejectScan,
    statuses: Mapping[str, str | None],
    notes: Iterable[str] = (),
    generated_at: str,
) -> JobReport:
    """The report of a job, from its record, its manifest (None before load), its per-date figures
    (None with a note saying why) and one scan of its quarantine; ``statuses``: of the jobs it names."""
    counts = job.get("counts") or {}
    totals = job.get("totals") or {}
    rows_by_currency = totals.get("rowsByCurrency") or {}
    stages, failed_stage = stage_spans(job)
    received, rejected = _count(counts, "received"), _count(counts, "rejected")
    notes = list(notes)
    if rejected is not None and rejects.total != rejected:
        notes.append(f"The quarantine holds {rejects.total} rejected rows; the job record counts {rejected}.")
    status = str(job.get("status"))
    return JobReport(
        title=f"Job {job['jobId']}",
        job_id=job["jobId"],
        verdict=status,
        verdict_meaning=MEANINGS.get(status, RUNNING_MEANING),
        why=verdict_text(job=job, failed_stage=failed_stage, other_status=statuses.get(job.get("originalJobId", ""))),
        received=received,
        valid=_count(counts, "valid"),
        loaded=_count(counts, "loaded"),
        rejected=rejected,
        threshold=job.get("rejectThreshold"),
        rejected_share=share_text(rejected=rejected, received=received),
        reasons=tuple((code, int(n)) for code, n in (counts.get("reasons") or {}).items()),
        columns=rejects.by_column(),
        columns_note=None,
        valid_totals=currency_figures(totals.get("valid") or {}, rows_by_currency.get("valid") or {}),
        rejected_totals=currency_figures(totals.get("rejected") or {}, rows_by_currency.get("rejected") or {}),
        dates=dates,
        dates_note=dates_note,
        first_rejects=tuple(rejects.first),
        more_rejects=max(0, rejects.total - len(rejects.first)),
        unknown_columns=tuple(job.get("unknownColumns") or ()),
        lineage=_lineage(job, manifest),
        stages=stages,
        failure=failure_of(job, failed_stage),
        links=job_links(job, statuses),
        notes=tuple(notes),
        generated_at=generated_at,
    )


def _lineage(job: Mapping[str, Any], manifest: Mapping[str, Any] | None) -> Lineage:
    source = job.get("source") or {}
    plan = job.get("plan") or {}
    outputs = job.get("outputs") or {}
    snapshots = (manifest or {}).get("snapshots") or outputs.get("snapshots") or {}
    return Lineage(
        source=f"s3://{source.get('bucket')}/{source.get('key')}" if source else "(not recorded)",
        version_id=source.get("versionId"),
        sha256=source.get("sha256"),
        bytes=int(source["bytes"]) if source.get("bytes") is not None else None,
        format=source.get("format"),
        code_version=(manifest or {}).get("codeVersion") or job.get("codeVersion"),
        plan_id=plan.get("planId"),
        chunks=int(plan["chunks"]) if plan.get("chunks") is not None else None,
        manifest=outputs.get("manifest"),
        quarantine=outputs.get("quarantine"),
        committed_at=(manifest or {}).get("committedAt"),
        snapshots=tuple((table, str(snapshot)) for table, snapshot in sorted(snapshots.items())),
    )


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------ reading a deployment
def _get_json(bucket: str, key: str) -> Any | None:
    try:
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body.read())


def quarantine_entries(*, bucket: str, keys: Iterable[str], missing: list[str]) -> Iterator[dict]:
    """The quarantine's entries part by part, line by line (a part is streamed, never held)."""
    s3 = client("s3")
    for key in keys:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                missing.append(key)
                continue
            raise
        for line in body.iter_lines(chunk_size=1 << 20):
            if line:
                yield json.loads(line)


def manifest_dates(manifest: Mapping[str, Any]) -> tuple[DateFigure, ...]:
    """The per-date figures a load keeps in its manifest, as it reconciled them."""
    return tuple(
        DateFigure(
            booking_date=entry["bookingDate"],
            rows=int(entry["rows"]),
            currencies=currency_figures(entry["totals"], entry["rowsByCurrency"]),
        )
        for entry in manifest["dates"]
    )


def _dates_of(
    deployment: Deployment, job: Mapping[str, Any], manifest: Mapping[str, Any] | None
) -> tuple[tuple[DateFigure, ...] | None, str | None]:
    """Per-date figures as the pipeline wrote them (a loaded job's manifest, kept with the record;
    before that, or for a manifest older than them, the job's work files), or None and why not."""
    if manifest and "dates" in manifest:
        return manifest_dates(manifest), None
    summarized = json.loads((job.get("results") or {}).get("summarize") or "null") or {}
    plan = job.get("plan") or {}
    if summarized.get("datesKey"):
        items = _get_json(deployment.work_bucket, summarized["datesKey"])
        if items is None:
            return None, (
                f"The per-date figures were in the job's work files (s3://{deployment.work_bucket}/"
                f"{summarized['datesKey']}), which have expired."
            )
        return date_figures(transform_item_dates(items)), None
    if job.get("status") == "REJECTED" and plan.get("planId"):
        keys = [layout.chunk_summary_key(job["jobId"], plan["planId"], n) for n in range(int(plan["chunks"]))]
        summaries = [_get_json(deployment.work_bucket, key) for key in keys]
        if any(summary is None for summary in summaries):
            return None, "The chunks' summaries, which hold the per-date figures, have expired with the work files."
        note = "The job was rejected, so no booking dates were prepared: these are its chunks' figures, merged."
        return date_figures(chunk_dates(summary["dates"] for summary in summaries)), note
    return None, "The job has no verdict, so no per-date figures were written."


def report_for_job(*, deployment: Deployment, job_id: str, first: int = FIRST_REJECTS) -> JobReport | None:
    """The report of a deployed job, or None if there is no such job."""
    job = deployment.job(job_id)
    if job is None:
        return None
    outputs = job.get("outputs") or {}
    manifest = _get_json(deployment.bucket, outputs["manifest"]) if outputs.get("manifest") else None
    notes: list[str] = []
    if outputs.get("manifest") and manifest is None:
        notes.append(f"The manifest {outputs['manifest']} is missing.")
    dates, dates_note = _dates_of(deployment, job, manifest)
    plan = job.get("plan") or {}
    missing: list[str] = []
    rejects = RejectScan(first=first)
    if plan.get("planId") and (job.get("counts") or {}).get("rejected") is not None:  # judged: its quarantine is whole
        keys = layout.quarantine_keys(job_id, plan["planId"], int(plan["chunks"]))
        rejects.add_all(quarantine_entries(bucket=deployment.bucket, keys=keys, missing=missing))
    if missing:
        notes.append(f"{len(missing)} quarantine parts are missing (the first: {missing[0]}).")
    others = {job[name] for name in ("replaces", "originalJobId") if job.get(name)}
    statuses = {other: (deployment.job(other) or {}).get("status") for other in others}
    return job_report(
        job=job,
        manifest=manifest,
        dates=dates,
        dates_note=dates_note,
        rejects=rejects,
        statuses=statuses,
        notes=notes,
        generated_at=now_text(),
    )


# ------------------------------------------------------------------ a local validation
def report_for_validation(
    *,
    source: str,
    summary: Mapping[str, Any],
    threshold: str,
    verdict: str,
    rejects: Iterable[Mapping[str, Any]],
    chunk_dates_found: Iterable[Mapping[str, Mapping[str, Any]]] | None = None,
    first: int = FIRST_REJECTS,
) -> JobReport:
    """The report of ``pipeline validate FILE``: ``summary`` is ValidationSummary.to_dict(),
    ``verdict`` "ACCEPTED" or "REJECTED" as the command judged it against ``threshold``; ``rejects``
    the quarantine entries in line order (with their ``details`` for the per-column figures), read
    once; ``chunk_dates_found`` each chunk's ``dates`` (handlers/logic/localjob.py ChunkResult.dates,
    kept only when the chunks staged their valid rows), None when not kept."""
    scan = RejectScan(first=first).add_all(rejects)
    received, rejected = int(summary["records"]), int(summary["rejected"])
    totals, rows = summary.get("totals") or {}, summary.get("rowsByCurrency") or {}
    share = share_text(rejected=rejected, received=received)
    if verdict == "REJECTED":
        why = f"{rejected} of {received} rows ({share}) failed the data contract, above the threshold "
        why += f"{threshold_text(threshold)}: the pipeline would load nothing."
    else:
        why = f"{rejected} of {received} rows ({share}) failed the data contract, within the threshold "
        why += f"{threshold_text(threshold)}. Checked on this machine; nothing was sent or loaded."
    dates = None if chunk_dates_found is None else date_figures(chunk_dates(chunk_dates_found))
    notes = []
    if scan.total != rejected:
        notes.append(f"{scan.total} rejected rows were given to the report; the summary counts {rejected}.")
    return JobReport(
        title=f"File {source}",
        job_id=None,
        verdict=verdict,
        verdict_meaning=MEANINGS[verdict],
        why=why,
        received=received,
        valid=int(summary["valid"]),
        loaded=None,
        rejected=rejected,
        threshold=threshold,
        rejected_share=share,
        reasons=tuple((code, int(n)) for code, n in (summary.get("reasons") or {}).items()),
        columns=scan.by_column(),
        columns_note=None if scan.by_column() is not None else "The rejects given carry no details to name columns.",
        valid_totals=currency_figures(totals.get("valid") or {}, rows.get("valid") or {}),
        rejected_totals=currency_figures(totals.get("rejected") or {}, rows.get("rejected") or {}),
        dates=dates,
        dates_note=None if dates is not None else "This check did not keep per-date figures.",
        first_rejects=tuple(scan.first),
        more_rejects=max(0, scan.total - len(scan.first)),
        unknown_columns=tuple(summary.get("unknownColumns") or ()),
        lineage=Lineage(source=source, format=summary.get("format") or None),
        stages=(),
        failure=None,
        links=(),
        notes=tuple(notes),
        generated_at=now_text(),
    )
