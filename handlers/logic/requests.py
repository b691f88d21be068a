"""What a job is asked to process, from any of the execution inputs the state machine accepts.

* An upload: the S3 "Object Created" event, as the EventBridge rule passes it
  (``{"trigger": "s3-eventbridge", "event": <the event>}``).
* A named source: ``{"jobId", "source": {"bucket"?, "key", "versionId"?}}`` (``pipeline run``).
* Inline data: ``{"jobId", "data": {...} | [...]}`` (e.g. ``{"jobId": "test-123", "data": {"sample": "data"}}``).

Options on the last two: ``force``, ``rejectThreshold``, ``format``, ``chunkBytes``.

The job id of an upload comes from the object: its ``job-id`` metadata when the producer names
the job, else the key and version id. So the same event delivered twice is the same job, and a
re-upload of the same key (a new version) is a new one.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent

from handlers.errors import InvalidInputError
from handlers.logic.validation import FORMATS, JSONL_FORMAT, format_from_name
from handlers.logic.values import parse_positive, parse_threshold
from lake.layout import INCOMING, RAW

S3_TRIGGER = "s3-eventbridge"
JOB_ID_METADATA = "job-id"
# An upload correcting a file that loaded names the job it replaces (docs/data-contract.md).
REPLACES_METADATA = "replaces-job"
JOB_ID_RULE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Source:
    bucket: str
    key: str
    version_id: str | None = None


@dataclass(frozen=True)
class IngestRequest:
    job_id: str | None  # None: named by the object (metadata or key and version)
    source: Source | None
    inline_data: object  # None unless the input carried "data"
    fmt: str | None  # None: from the key's extension
    force: bool
    reject_threshold: Decimal | None
    chunk_bytes: int | None
    trigger: str
    replaces: str | None = None  # the job this one corrects: its rows are replaced by this job's


def job_id_for_object(*, key: str, version_id: str | None) -> str:
    """``<file stem>-<16 hex digits of the key and version>``: readable, and one per version."""
    stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    readable = _UNSAFE.sub("-", stem).strip("-.")[:40] or "file"
    digest = hashlib.sha256(f"{key}\0{version_id or ''}".encode()).hexdigest()[:16]
    return f"{readable}-{digest}"


def execution_name(job_id: str, run_id: str) -> str:
    """The Step Functions execution of one run of a job. Names allow only letters, digits, "-" and
    "_" (80 at most): the digest keeps job ids that differ only in other characters apart."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", job_id)[:40]
    return f"{readable}-{hashlib.sha256(job_id.encode()).hexdigest()[:10]}-{run_id[:16]}"


def check_job_id(job_id: object, *, setting: str = "jobId") -> str:
    if not isinstance(job_id, str) or not JOB_ID_RULE.match(job_id):
        raise InvalidInputError(f"{setting} must be 1-64 characters of A-Z a-z 0-9 . _ : -, got {job_id!r}")
    return job_id


def inline_bytes(data: object) -> bytes:
    """Inline data landed as JSON Lines: an object is one line, a list one line per element."""
    rows = data if isinstance(data, list) else [data]
    return "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows).encode()


def source_format(key: str, explicit: str | None) -> str:
    fmt = explicit or format_from_name(key)
    if fmt is None:
        raise InvalidInputError(f"cannot tell the format of {key!r}; name it .csv/.jsonl/.ndjson or pass 'format'")
    return fmt


def parse_ingest_request(event: object, *, default_bucket: str) -> IngestRequest:
    if not isinstance(event, dict):
        raise InvalidInputError("the execution input must be a JSON object")
    if event.get("trigger") == S3_TRIGGER:
        return _from_upload(event)
    job_id = check_job_id(event.get("jobId"))
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInputError(f"force must be true or false, got {force!r}")
    threshold = event.get("rejectThreshold")
    threshold = None if threshold is None else parse_threshold(threshold, setting="rejectThreshold")
    chunk_bytes = event.get("chunkBytes")
    chunk_bytes = None if chunk_bytes is None else parse_positive(chunk_bytes, setting="chunkBytes")
    explicit_format = event.get("format")
    if explicit_format is not None and explicit_format not in FORMATS:
        raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}, got {explicit_format!r}")
    replaces = event.get("replaces")
    replaces = None if replaces is None else check_job_id(replaces, setting="replaces")
    options = {
        "force": force,
        "reject_threshold": threshold,
        "chunk_bytes": chunk_bytes,
        "trigger": "manual",
        "replaces": replaces,
    }

    has_data, has_source = "data" in event, "source" in event
    if has_data == has_source:
        raise InvalidInputError(f"job {job_id}: give exactly one of 'source' or 'data'")
    if has_data:
        if not isinstance(event["data"], (dict, list)):
            raise InvalidInputError(f"job {job_id}: data must be an object or a list of objects")
        return IngestRequest(job_id=job_id, source=None, inline_data=event["data"], fmt=JSONL_FORMAT, **options)

    source = event["source"]
    if not isinstance(source, dict) or not isinstance(source.get("key"), str) or not source["key"]:
        raise InvalidInputError(f"job {job_id}: source must be {{'bucket': ..., 'key': ...}}")
    key = source["key"]
    if not key.startswith((f"{INCOMING}/", f"{RAW}/")):
        raise InvalidInputError(f"job {job_id}: source key {key!r} must be under {INCOMING}/ or {RAW}/")
    version = source.get("versionId")
    return IngestRequest(
        job_id=job_id,
        source=Source(bucket=source.get("bucket") or default_bucket, key=key, version_id=version or None),
        inline_data=None,
        fmt=source_format(key, explicit_format),
        **options,
    )


def uploaded_object(event: dict) -> Source:
    """The object of an upload's execution input (Powertools' model of the S3 event)."""
    notification = S3EventBridgeNotificationEvent(event.get("event") or {})
    try:
        return Source(
            bucket=notification.detail.bucket.name,
            key=notification.detail.object.key,
            version_id=notification.detail.object.get("version-id"),
        )
    except (KeyError, TypeError) as exc:
        raise InvalidInputError(f"not an S3 Object Created event: {exc!r} missing") from None


def _from_upload(event: dict) -> IngestRequest:
    source = uploaded_object(event)
    key = source.key
    if not key.startswith(f"{INCOMING}/"):
        raise InvalidInputError(f"uploads start jobs only under {INCOMING}/, not {key!r}")
    return IngestRequest(
        job_id=None,
        source=source,
        inline_data=None,
        fmt=source_format(key, None),
        force=False,
        reject_threshold=None,
        chunk_bytes=None,
        trigger=S3_TRIGGER,
    )
