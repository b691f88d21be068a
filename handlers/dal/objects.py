"""S3 object access in the data bucket: ranged reads, verified writes, verified server-side copies.

Every object the pipeline writes carries its SHA-256, which S3 checks on arrival and keeps (a
bucket with Object Lock refuses writes without a checksum); copies are checked against it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from botocore.exceptions import ClientError

from handlers.dal.clients import s3_client
from handlers.errors import ReconciliationError, SourceChangedError

COPY_CHUNK_BYTES = 1 << 20
# Objects read or written at once when a step handles many (chunk summaries, copies).
PARALLEL_REQUESTS = 16
_CHECKSUM = {"ChecksumAlgorithm": "SHA256"}
T = TypeVar("T")
R = TypeVar("R")


def _precondition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412")


def head_object(*, bucket: str, key: str) -> dict:
    return s3_client().head_object(Bucket=bucket, Key=key)


def open_range(*, bucket: str, key: str, etag: str, start: int | None = None, end: int | None = None):
    """The streaming body of the object (or of bytes [start, end)), only if its ETag is still ``etag``."""
    kwargs = {"Bucket": bucket, "Key": key, "IfMatch": etag}
    if start is not None and end is not None:
        if end <= start:
            return _Empty()
        kwargs["Range"] = f"bytes={start}-{end - 1}"
    try:
        return s3_client().get_object(**kwargs)["Body"]
    except ClientError as exc:
        if _precondition_failed(exc):
            raise SourceChangedError(
                f"s3://{bucket}/{key} changed after the job was registered (ETag {etag}); start a new job"
            ) from exc
        raise


class _Empty:
    def read(self, size: int = -1) -> bytes:
        return b""


def blocks(body, size: int) -> Iterator[bytes]:
    return iter(lambda: body.read(size), b"")


def sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(binascii.unhexlify(hex_digest)).decode()


def put_bytes(*, bucket: str, key: str, body: bytes, content_type: str) -> str:
    """Returns the new object's ETag."""
    digest = sha256_b64(hashlib.sha256(body).hexdigest())
    return s3_client().put_object(
        Bucket=bucket, Key=key, Body=body, ContentType=content_type, ChecksumSHA256=digest, **_CHECKSUM
    )["ETag"]


def put_json(*, bucket: str, key: str, document: object) -> None:
    body = json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False).encode()
    put_bytes(bucket=bucket, key=key, body=body, content_type="application/json")


def get_json(*, bucket: str, key: str) -> dict:
    return json.loads(s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())


def get_json_or_none(*, bucket: str, key: str) -> dict | None:
    """None when the object does not exist. S3 says so (NoSuchKey) only to callers that may list
    the prefix; the functions that look for their own earlier results are granted that."""
    try:
        return get_json(bucket=bucket, key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(COPY_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def put_file(*, bucket: str, key: str, path: str, content_type: str) -> dict:
    """Upload a local file in one request with its SHA-256; returns {key, bytes, sha256}."""
    sha256 = file_sha256(path)
    with open(path, "rb") as body:
        s3_client().put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, ChecksumSHA256=sha256_b64(sha256), **_CHECKSUM
        )
    return {"key": key, "bytes": os.path.getsize(path), "sha256": sha256}


def download_file(*, bucket: str, key: str, path: str) -> tuple[str, int]:
    """Stream an object to a local file; returns its SHA-256 hex digest and size."""
    body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    size = 0
    with open(path, "wb") as out:
        for chunk in iter(lambda: body.read(COPY_CHUNK_BYTES), b""):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def copy_verified(*, source_bucket: str, source_key: str, target_bucket: str, target_key: str, sha256: str) -> None:
    """Server-side copy of an object whose stored SHA-256 must be ``sha256`` (hex), before and after."""
    expected = sha256_b64(sha256)
    head = s3_client().head_object(Bucket=source_bucket, Key=source_key, ChecksumMode="ENABLED")
    if head.get("ChecksumSHA256") != expected:
        raise ReconciliationError(
            f"s3://{source_bucket}/{source_key} has SHA-256 {head.get('ChecksumSHA256')}, its index says {expected}"
        )
    copied = s3_client().copy_object(
        Bucket=target_bucket,
        Key=target_key,
        CopySource={"Bucket": source_bucket, "Key": source_key},
        CopySourceIfMatch=head["ETag"],
        MetadataDirective="COPY",
        **_CHECKSUM,
    )
    if copied.get("CopyObjectResult", {}).get("ChecksumSHA256") != expected:
        raise ReconciliationError(
            f"the copy of s3://{source_bucket}/{source_key} to s3://{target_bucket}/{target_key} "
            "does not match its source"
        )


def parallel(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``function`` over ``items`` with a few requests in flight; results in order."""
    items = list(items)
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(items))) as pool:
        return list(pool.map(function, items))


def ranged_blocks(*, bucket: str, key: str, etag: str, size: int, block: int, ahead: int = 4) -> Iterator[bytes]:
    """The object's bytes in order, ``block`` bytes at a time, with ``ahead`` ranged GETs in flight
    (one stream reads S3 at about 100 MB/s; a few in parallel keep a scan at memory speed)."""
    from collections import deque

    def fetch(start: int) -> bytes:
        return open_range(bucket=bucket, key=key, etag=etag, start=start, end=min(start + block, size)).read()

    with ThreadPoolExecutor(max_workers=ahead) as pool:
        pending: deque = deque()
        offsets = iter(range(0, size, block))
        for start in offsets:
            pending.append(pool.submit(fetch, start))
            if len(pending) >= ahead:
                break
        while pending:
            data = pending.popleft().result()
            start = next(offsets, None)
            if start is not None:
                pending.append(pool.submit(fetch, start))
            yield data
