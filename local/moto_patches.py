"""Fixes to moto that both the local emulator and the in-process handler tests need."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

_applied = False


def apply_s3_checksums() -> None:
    """moto stores the SHA-256 a PutObject carries but never checks it (a TODO in moto); S3
    refuses a body that does not match (BadDigest), which is what makes a stored checksum proof."""
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
    _applied = True
