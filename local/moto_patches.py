"""Fixes to moto that both the local emulator and the in-process handler tests need."""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import hashlib
import io
import threading
import time
import urllib.parse
from typing import Any

_applied = False
_atomic = False
_WRITE_LOCK = threading.RLock()


def apply_atomic_dynamodb_writes() -> None:
    """moto evaluates a write's condition and applies it in two steps; two threads (two Lambda
    invocations, two emulator requests) can both pass a condition only one of them should. DynamoDB
    does each conditional write atomically: so does moto, once its writes take one lock."""
    global _atomic
    if _atomic:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _WRITE_LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    _atomic = True


def apply_s3_checksums() -> None:
    """moto stores the SHA-256 a PutObject carries but never checks it (a TODO in moto); S3
    refuses a body that does not match (BadDigest), which is what makes a stored checksum proof.
    And moto refuses a CopyObject into an Object Lock bucket for want of a body checksum."""
    global _applied
    if _applied:
        return
    from moto.s3 import responses
    from moto.s3.exceptions import S3ClientError

    original = responses.S3Response._get_checksum

    def _get_checksum(self: Any, response_headers: dict[str, Any]) -> tuple[str, str | None]:
        algorithm, value = original(self, response_headers)
        if algorithm.upper() == "SHA256" and value and "x-amz-copy-source" not in self.headers:
            actual = base64.b64encode(hashlib.sha256(self.body or b"").digest()).decode()
            if actual != value:
                raise S3ClientError("BadDigest", "The SHA256 you specified did not match the calculated checksum.")
        return algorithm, value

    responses.S3Response._get_checksum = _get_checksum

    original_put = responses.S3Response._key_response_put

    def _key_response_put(self: Any, query: dict[str, Any], key_name: str) -> Any:
        # A server-side copy has no body to checksum: S3 accepts it into an Object Lock bucket
        # without Content-MD5 (moto asks every PUT for one).
        if "x-amz-copy-source" in self.headers and not query:
            self._set_action("KEY", "PUT", query)
            self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)
            return self.copy_object()
        return original_put(self, query, key_name)

    responses.S3Response._key_response_put = _key_response_put
    _applied = True


class _ShallowVersionCopies:
    """moto.s3.models' ``copy`` module, but a list of object versions is copied shallowly."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, list):
            copies = []
            for version in value:
                shallow = object.__new__(type(version))
                shallow.__dict__.update(version.__dict__)  # its own is_latest
                if "_value_buffer" in version.__dict__:
                    _ = version.etag  # computed from the contents once, kept on the key
                    # The copy owns no contents: when it is collected, it closes nothing of the key's.
                    shallow.__dict__.update(_value_buffer=io.BytesIO(), multipart=None, disposed=True)
                copies.append(shallow)
            return copies
        return copy.deepcopy(value, memo)


def apply_s3_version_listing() -> None:
    """moto lists object versions by deep-copying every version of every key, contents included
    (to mark each copy's is_latest), on every page: a bucket of a few thousand objects takes
    minutes and gigabytes per ListObjectVersions, which Terraform's force_destroy pages through.
    The listing only needs each version's attributes."""
    from moto.s3 import models

    if not isinstance(models.copy, _ShallowVersionCopies):
        models.copy = _ShallowVersionCopies()  # its one deepcopy is that listing's
    if getattr(models.S3Backend.list_object_versions, "paged", False):
        return
    original = models.S3Backend.list_object_versions

    def list_object_versions(
        self: Any,
        bucket_name: str,
        delimiter: str | None = None,
        key_marker: str | None = None,
        max_keys: int | None = 1000,
        prefix: str = "",
        version_id_marker: str | None = None,
    ) -> Any:
        """moto's listing, page by page: it also copied and sorted every version of the bucket for
        each page, so emptying a bucket of N versions a page at a time took N^2 / 1000 copies.
        Here only the page's versions are copied; the rules are moto's (names in order, versions
        newest first, the markers' skipping). Listings by delimiter stay moto's own."""
        if delimiter or max_keys is None:
            return original(self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker)
        store = self.get_bucket(bucket_name).keys
        names = sorted(n for n in list(store) if n.startswith(prefix) and (key_marker is None or n >= key_marker))
        versions: list[Any] = []
        markers: list[Any] = []
        skipping, last = key_marker is not None, None
        for name in names:
            newest_first = sorted(store.getlist(name) or [], key=lambda v: -models.unix_time_millis(v.last_modified))
            for position, version in enumerate(newest_first):
                if skipping:
                    if not version_id_marker:
                        skipping = name < key_marker
                    elif name == key_marker and version.version_id == version_id_marker:
                        skipping = False
                    continue
                if len(versions) + len(markers) >= max_keys:
                    return versions, [], markers, last.name if last else name, last.version_id if last else None
                (listed,) = _ShallowVersionCopies.deepcopy([version])
                listed.is_latest = position == 0
                last = listed
                (versions if isinstance(version, models.FakeKey) else markers).append(listed)
        return versions, [], markers, None, None

    list_object_versions.paged = True  # type: ignore[attr-defined]
    models.S3Backend.list_object_versions = list_object_versions


ACCESS_LOG_BATCH_SECONDS = 60
ACCESS_LOG_BATCH_RECORDS = 5000


class AccessLogBatches:
    """Server access log records of each (target bucket, prefix), delivered as one object when
    the oldest is ACCESS_LOG_BATCH_SECONDS old or ACCESS_LOG_BATCH_RECORDS are waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str], tuple[float, list[str]]] = {}

    def add(self, target: tuple[str, str], record: str, now: float) -> list[str] | None:
        """Queue a record; the batch to deliver now, if one is due."""
        with self._lock:
            since, records = self._waiting.setdefault(target, (now, []))
            records.append(record)
            if now - since < ACCESS_LOG_BATCH_SECONDS and len(records) < ACCESS_LOG_BATCH_RECORDS:
                return None
            del self._waiting[target]
            return records


def apply_s3_access_log_batching() -> None:
    """S3 delivers server access logs in batches, many records to an object, minutes late and on
    a best-effort basis. moto writes one object per request: a bucket a test run used holds one
    log object per request it served (tens of thousands after a burst), and a destroy's paging
    through the versions of the log bucket, each page listing them all, took longer than the
    whole run. Records here are batched as S3 does; one that is still waiting when the emulator
    stops is lost, which S3's best effort allows."""
    from moto.moto_api._internal import mock_random as random
    from moto.s3 import models

    if getattr(models.S3Backend.log_incoming_request, "batched", False):
        return
    batches = AccessLogBatches()

    def log_incoming_request(self: Any, request: Any, bucket_name: str) -> None:
        try:
            config = self.get_bucket(bucket_name).logging
            target = (config["TargetBucket"], config.get("TargetPrefix", ""))
        except Exception:  # noqa: BLE001 - no such bucket, or no logging: nothing to record
            return
        now = datetime.datetime.now(datetime.UTC)
        path = urllib.parse.urlparse(request.url).path or "-"
        record = (
            f"- {bucket_name} [{now:%d/%b/%Y:%H:%M:%S +0000}] 127.0.0.1 - - REST.{request.method}.OBJECT - "
            f'"{request.method} {path} HTTP/1.1" - - - - - - "{request.headers.get("User-Agent", "-")}" -'
        )
        due = batches.add(target, record, time.monotonic())
        if due:
            key = f"{target[1]}{now:%Y-%m-%d-%H-%M-%S}-{random.get_random_hex(16).upper()}"
            self.put_object(target[0], key, value="\n".join(due) + "\n")

    log_incoming_request.batched = True  # type: ignore[attr-defined]
    models.S3Backend.log_incoming_request = log_incoming_request


_RANGE = threading.local()  # the byte range of the GetObject this request thread is serving


def _single_range(header: str | None) -> tuple[int, int | None] | None:
    """(first, last or None) of a Range header of one range with a first byte; None for any
    other shape (suffix ranges, several ranges, bad syntax), which moto serves as before."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    if last and int(last) < int(first):
        return None
    return int(first), int(last) if last else None


def apply_s3_ranged_reads() -> None:
    """moto answers a ranged GetObject by reading the whole object out of its buffer and slicing
    the range from it: reading a file of N bytes back in ranges of B costs N^2 / B (the plan of a
    2 GB source read 500 GB, and outran its 300 s). S3 reads only the range; so does moto here:
    for a GET of one range the object's value is read from the range's first byte, the range's
    length only, and the 206 answer is made from it as moto's own range handling makes it."""
    from moto.s3 import models, responses

    if getattr(responses.S3Response.key_response, "ranged", False):
        return
    original_value = models.FakeKey.value
    original_key_response = responses.S3Response.key_response
    original_range = responses.S3Response._handle_range_header

    def value(key: Any) -> bytes:
        window = getattr(_RANGE, "window", None)
        if window is None or window[0] >= key.size:  # out of range: moto's InvalidRange
            return original_value.fget(key)
        _RANGE.window = None  # the request's one read of the object
        first, last = window
        last = key.size - 1 if last is None else min(last, key.size - 1)
        with key.lock:
            key._value_buffer.seek(first)
            data = key._value_buffer.read(last - first + 1)
        _RANGE.served = (first, last, key.size)
        return data

    def key_response(self: Any, request: Any, full_url: str, headers: dict[str, Any]) -> Any:
        ranged = request.method == "GET" and "partNumber=" not in full_url
        _RANGE.window = _single_range(request.headers.get("range")) if ranged else None
        _RANGE.served = None
        try:
            return original_key_response(self, request, full_url, headers)
        finally:
            _RANGE.window = _RANGE.served = None

    def _handle_range_header(self: Any, request: Any, response_headers: dict[str, Any], content: Any) -> Any:
        served = getattr(_RANGE, "served", None)
        if served is None:
            return original_range(self, request, response_headers, content)
        first, last, size = served
        if first or last < size - 1:  # a range's answer carries no whole-object checksum
            for name in [h for h in response_headers if h.startswith("x-amz-checksum-")]:
                del response_headers[name]
        response_headers["content-range"] = f"bytes {first}-{last}/{size}"
        response_headers["content-length"] = str(len(content))
        return 206, response_headers, content

    models.FakeKey.value = property(value, original_value.fset)
    key_response.ranged = True  # type: ignore[attr-defined]
    key_response.moto = (original_value, original_key_response, original_range)  # type: ignore[attr-defined]
    responses.S3Response.key_response = key_response
    responses.S3Response._handle_range_header = _handle_range_header



def apply_s3_delete_marker_disposal() -> None:
    """Deleting the last version of a key whose versions include a delete marker failed with a 500
    (moto disposes of every version's buffer, and a delete marker has none): a bucket emptied by
    `force_destroy` after such deletes could not be destroyed."""
    from moto.s3.models import FakeDeleteMarker

    if not hasattr(FakeDeleteMarker, "dispose"):
        FakeDeleteMarker.dispose = lambda self, garbage=False: None  # type: ignore[attr-defined]
