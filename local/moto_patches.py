"""Fixes to moto that both the local emulator and the in-process handler tests need."""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import io
import threading
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
