"""Reading the ingest input: {"jobId", "source": {bucket, key}} | {"jobId", "data"} | S3 event."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import unquote_plus

from handlers.config import parse_threshold
from handlers.errors import InvalidInputError
from handlers.logic.validation import FORMATS, JSONL_FORMAT, format_from_name

_JOB_ID_FROM_KEY = re.compile(r"incoming/([^/]+)/")


@dataclass(frozen=True)
class IngestRequest:
    job_id: str
    bucket: str | None
    key: str | None
    inline_data: object  # None unless the input carried "data"
    fmt: str
    force: bool
    reject_threshold: Decimal | None


def inline_bytes(data: object) -> bytes:
    """Inline data landed as JSON Lines: an object is one line, a list one line per element."""
    rows = data if isinstance(data, list) else [data]
    return "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows).encode()


def _from_s3_event(event: dict) -> dict:
    records = event.get("Records")
    if not isinstance(records, list) or len(records) != 1:
        raise InvalidInputError("an S3 event must carry exactly one record")
    s3 = records[0].get("s3") or {}
    bucket = (s3.get("bucket") or {}).get("name")
    key = unquote_plus((s3.get("object") or {}).get("key") or "")
    match = _JOB_ID_FROM_KEY.match(key)
    # incoming/<jobId>/<file> names its job; any other key gets a job per object version.
    job_id = match.group(1) if match else key.replace("/", "_")
    return {"jobId": job_id, "source": {"bucket": bucket, "key": key}}


def parse_ingest_request(event: object, *, default_bucket: str) -> IngestRequest:
    if not isinstance(event, dict):
        raise InvalidInputError("ingest input must be a JSON object")
    if "Records" in event and "jobId" not in event:
        event = {**_from_s3_event(event), **{k: v for k, v in event.items() if k != "Records"}}
    job_id = event.get("jobId")
    if not isinstance(job_id, str) or not job_id or len(job_id) > 200 or "/" in job_id:
        raise InvalidInputError(f"jobId must be a non-empty string without '/', got {job_id!r}")
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInputError(f"force must be true or false, got {force!r}")
    threshold = event.get("rejectThreshold")
    threshold = None if threshold is None else parse_threshold(threshold, setting="rejectThreshold")
    explicit_format = event.get("format")
    if explicit_format is not None and explicit_format not in FORMATS:
        raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}, got {explicit_format!r}")

    has_data, has_source = "data" in event, "source" in event
    if has_data == has_source:
        raise InvalidInputError(f"job {job_id}: give exactly one of 'source' or 'data'")
    if has_data:
        if not isinstance(event["data"], (dict, list)):
            raise InvalidInputError(f"job {job_id}: data must be an object or a list of objects")
        return IngestRequest(job_id, None, None, event["data"], JSONL_FORMAT, force, threshold)

    source = event["source"]
    if not isinstance(source, dict) or not source.get("key"):
        raise InvalidInputError(f"job {job_id}: source must be {{'bucket': ..., 'key': ...}}")
    bucket = source.get("bucket") or default_bucket
    key = source["key"]
    if not key.startswith(("incoming/", "raw/")):
        raise InvalidInputError(f"job {job_id}: source key {key!r} must be under incoming/ or raw/")
    fmt = explicit_format or format_from_name(key)
    if fmt is None:
        raise InvalidInputError(
            f"job {job_id}: cannot tell the format of {key!r}; name it .csv/.jsonl/.ndjson or pass 'format'"
        )
    return IngestRequest(job_id, bucket, key, None, fmt, force, threshold)
