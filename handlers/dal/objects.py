"""S3 object access in the data bucket: streaming reads, uploads, server-side copies."""

from __future__ import annotations

import hashlib
import json

from botocore.exceptions import ClientError

from handlers.dal.clients import s3_client
from handlers.errors import SourceChangedError

COPY_CHUNK_BYTES = 1 << 20
# S3 stores a SHA-256 of every object we write, and a bucket with Object Lock (production)
# refuses writes that carry no checksum.
CHECKSUM = {"ChecksumAlgorithm": "SHA256"}


def head_object(*, bucket: str, key: str) -> dict:
    return s3_client().head_object(Bucket=bucket, Key=key)


def open_object(*, bucket: str, key: str, etag: str | None = None):
    """The object's streaming body. With ``etag``, fails if the object changed since."""
    kwargs = {"Bucket": bucket, "Key": key}
    if etag:
        kwargs["IfMatch"] = etag
    try:
        return s3_client().get_object(**kwargs)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
            raise SourceChangedError(
                f"s3://{bucket}/{key} changed after ingest registered it (ETag {etag}); start a new job"
            ) from exc
        raise


def put_bytes(*, bucket: str, key: str, body: bytes, content_type: str) -> str:
    """Returns the new object's ETag."""
    return s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **CHECKSUM)["ETag"]


def put_json(*, bucket: str, key: str, document: object) -> None:
    body = json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False).encode()
    put_bytes(bucket=bucket, key=key, body=body, content_type="application/json")


def get_json(*, bucket: str, key: str) -> dict:
    return json.loads(s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())


def upload_file(*, bucket: str, key: str, path: str, content_type: str) -> None:
    s3_client().upload_file(path, bucket, key, ExtraArgs={"ContentType": content_type, **CHECKSUM})


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
