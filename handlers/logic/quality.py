"""A job's quality figures as rows of the job_quality table (lake/schema.py), one row per figure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from handlers.logic.totals import CurrencyTotals


def quality_rows(
    *, job: dict, verdict: str, loaded: CurrencyTotals, committed_at: datetime, code_version: str
) -> list[dict]:
    """rows_received, rows_loaded, rows_rejected; rejected per reason; rows_valid and total_valid per
    currency (exact amounts, the totals reconciliation checked)."""
    counts = job.get("counts") or {}
    source = job.get("source") or {}
    common = {
        "job_id": job["jobId"],
        "committed_at": committed_at,
        "verdict": verdict,
        "source_key": str(source.get("key") or ""),
        "source_sha256": str(source.get("sha256") or ""),
        "code_version": code_version,
    }
    figures: list[tuple[str, str, Decimal]] = [
        ("rows_received", "", Decimal(int(counts.get("received") or 0))),
        ("rows_loaded", "", Decimal(loaded.row_count)),
        ("rows_rejected", "", Decimal(int(counts.get("rejected") or 0))),
    ]
    figures += [("rejected", reason, Decimal(int(n))) for reason, n in sorted((counts.get("reasons") or {}).items())]
    figures += [("rows_valid", currency, Decimal(n)) for currency, n in sorted(loaded.rows.items())]
    figures += [("total_valid", currency, Decimal(amount)) for currency, amount in sorted(loaded.amounts().items())]
    return [{**common, "measure": measure, "key": key, "value": value} for measure, key, value in figures]
