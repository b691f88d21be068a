"""One chunk of a job: validate its byte range and leave everything the later steps need on disk.

For chunk ``i`` of a plan, in a local directory:

* ``quarantine.jsonl``: its rejected rows, in line order;
* ``booking_date=D.arrow``: its valid rows of each booking date, normalised (``curated``);
* ``ids-P.arrow``: the (key, line) of every occurrence of a transaction id whose key falls in
  partition P, for the job-wide duplicate step (``dedupe``);
* the summary (counts, reasons, exact totals, per-date totals), returned as data.

Run a second time with ``late_duplicates`` (lines whose id first occurs in an earlier chunk), it
gives the chunk's final result, exactly what validating the whole file in one piece gives for
these lines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from handlers.errors import ReconciliationError
from handlers.logic.curated import DateSpill, write_date_parts
from handlers.logic.duplicates import DuplicateTracker
from handlers.logic.idkeys import IdKeys, partition_of
from handlers.logic.normalize import normalize_batch
from handlers.logic.planning import Chunk
from handlers.logic.recorder import ValidationSummary, json_text
from handlers.logic.streams import ReadsBytes, open_text
from handlers.logic.totals import CurrencyTotals, RejectedTotals
from handlers.logic.validation import CSV_FORMAT, validate_text

NORMALIZE_ROWS = 64 * 1024
KEYS_SCHEMA = pa.schema([("high", pa.int64()), ("low", pa.int64()), ("line", pa.int64())])


class _ValidRows:
    """Valid rows, normalised in batches and spilled by booking date."""

    def __init__(self, path: str) -> None:
        self.spill = DateSpill(path)
        self._pending: list[pa.Table] = []
        self._rows = 0

    def add(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        if self._rows >= NORMALIZE_ROWS:
            self._normalize()

    def _normalize(self) -> None:
        if self._rows:
            self.spill.add(normalize_batch(pa.concat_tables(self._pending).combine_chunks()))
        self._pending, self._rows = [], 0

    def finish(self) -> DateSpill:
        self._normalize()
        self.spill.finish()
        return self.spill


@dataclass
class ChunkResult:
    chunk: int
    summary: ValidationSummary
    dates: dict[str, dict]  # booking date -> {"path", "rows", "totals": CurrencyTotals.to_dict()}
    quarantine_path: str
    keys: dict[int, tuple[str, int]]  # partition -> (path, occurrences)

    def summary_document(self) -> dict:
        """What the chunk tells the later steps (its summary.json, paths left out)."""
        return {
            "chunk": self.chunk,
            "records": self.summary.records,
            "valid": self.summary.valid,
            "rejected": self.summary.rejected,
            "reasons": self.summary.to_dict()["reasons"],
            "valid_totals": self.summary.valid_totals.to_dict(),
            "rejected_totals": self.summary.rejected_totals.to_dict(),
            "unknownColumns": list(self.summary.unknown_columns),
            "dates": {
                day: {"rows": entry["rows"], "totals": entry["totals"]} for day, entry in sorted(self.dates.items())
            },
            "idPartitions": {str(p): count for p, (_, count) in sorted(self.keys.items())},
        }


def validate_chunk(
    *,
    raw: ReadsBytes,
    fmt: str,
    header: list[str] | None,
    chunk: Chunk,
    keys: IdKeys,
    partitions: int,
    directory: str,
    first_record: bool,
    late_duplicates: np.ndarray | None = None,
    on_reject: Callable[[dict], object] | None = None,
    stage_valid: bool = True,
) -> ChunkResult:
    """Validate ``raw`` (exactly the chunk's bytes) into ``directory``. Without ``stage_valid``
    (a check that only reports), valid rows are counted and summed but not normalised or kept."""
    os.makedirs(directory, exist_ok=True)
    quarantine_path = os.path.join(directory, "quarantine.jsonl")
    tracker = DuplicateTracker()
    valid = _ValidRows(os.path.join(directory, "valid.spill"))
    try:
        with open(quarantine_path, "w", encoding="utf-8") as quarantine:

            def reject(entry: dict) -> None:
                quarantine.write(json_text(entry) + "\n")
                if on_reject is not None:
                    on_reject(entry)

            summary = validate_text(
                # Only the file's first bytes may be a BOM: a chunk that starts later reads U+FEFF as data.
                text=open_text(raw, file_start=chunk.start == 0),
                fmt=fmt,
                keys=keys,
                duplicates=tracker,
                forced_duplicates=late_duplicates,
                header=header if fmt == CSV_FORMAT else None,
                first_line=chunk.first_line,
                first_record=first_record,
                allow_empty=True,
                on_valid_table=valid.add if stage_valid else None,
                on_reject=reject,
            )
        if summary.records != chunk.records:
            raise ReconciliationError(
                f"chunk {chunk.index}: validation read {summary.records} records, the plan counted {chunk.records}"
            )
        # The id keys first: the tracker's memory is given back before the parts are written.
        keys_written = _write_keys(tracker, partitions=partitions, directory=directory)
        parts = write_date_parts(valid.finish(), directory) if stage_valid else {}
    finally:
        valid.spill.close()
    dates = {
        day: {"path": path, "rows": rows, "totals": _totals(totals).to_dict()}
        for day, (path, rows, totals) in parts.items()
    }
    return ChunkResult(
        chunk=chunk.index,
        summary=summary,
        dates=dates,
        quarantine_path=quarantine_path,
        keys=keys_written,
    )


def _totals(totals: dict[str, tuple[int, int]]) -> CurrencyTotals:
    result = CurrencyTotals()
    for currency, (rows, minor) in totals.items():
        result.add(currency=currency, rows=rows, minor_units=minor)
    return result


def _write_keys(tracker: DuplicateTracker, *, partitions: int, directory: str) -> dict[int, tuple[str, int]]:
    high, low, lines = tracker.release()
    written = {}
    assigned = partition_of(high, partitions)
    order = np.argsort(assigned, kind="stable")  # by partition, in line order within each
    counts = np.bincount(assigned, minlength=partitions)
    del assigned
    start = 0
    for partition in np.flatnonzero(counts).tolist():
        count = int(counts[partition])
        picked = order[start : start + count]
        path = os.path.join(directory, f"ids-{partition:05d}.arrow")
        table = pa.table([high[picked], low[picked], lines[picked]], schema=KEYS_SCHEMA)
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, KEYS_SCHEMA) as writer:
            writer.write_table(table)
        written[partition] = (path, count)
        start += count
    return written


def read_keys(path: str) -> pa.Table:
    with pa.OSFile(path, "rb") as source:
        return pa.ipc.open_file(source).read_all()


def merge_summaries(documents: list[dict]) -> ValidationSummary:
    """The job's summary from its chunks' summaries (in chunk order)."""
    from handlers.logic.recorder import MAX_REPORTED_UNKNOWN_COLUMNS

    total = ValidationSummary(format="")
    for document in documents:
        total.records += document["records"]
        total.valid += document["valid"]
        total.rejected += document["rejected"]
        for code, count in document["reasons"].items():
            total.reasons[code] = total.reasons.get(code, 0) + count
        total.valid_totals.merge(CurrencyTotals.from_dict(document["valid_totals"]))
        total.rejected_totals.merge(RejectedTotals.from_dict(document["rejected_totals"]))
        for name in document["unknownColumns"]:
            if name not in total.unknown_columns and len(total.unknown_columns) < MAX_REPORTED_UNKNOWN_COLUMNS:
                total.unknown_columns.append(name)
    return total


def dumps(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
