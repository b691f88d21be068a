"""pyiceberg's FileIO over the functions' own S3 client.

pyiceberg reads and writes table metadata (metadata JSON, manifest lists, manifests) and reads
the footers of the Parquet files it registers through a FileIO. Ours uses boto3, so every write
carries its SHA-256 as every other write of the pipeline does (a bucket under Object Lock refuses
a write without a checksum), the endpoint comes from the environment like every other client's,
and no second S3 stack (Arrow's C++ SDK or s3fs) has to be configured or packaged.
"""

from __future__ import annotations

import io
from urllib.parse import urlparse

from botocore.exceptions import ClientError
from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream

from handlers.dal.clients import s3_client


def split_location(location: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    parsed = urlparse(location)
    if parsed.scheme not in ("s3", "s3a", "s3n") or not parsed.netloc:
        raise ValueError(f"not an S3 location: {location}")
    return parsed.netloc, parsed.path.lstrip("/")


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3InputFile(InputFile):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self._bucket, self._key = split_location(location)

    def __len__(self) -> int:
        return int(s3_client().head_object(Bucket=self._bucket, Key=self._key)["ContentLength"])

    def exists(self) -> bool:
        try:
            s3_client().head_object(Bucket=self._bucket, Key=self._key)
        except ClientError as error:
            if _missing(error):
                return False
            raise
        return True

    def open(self, seekable: bool = True) -> InputStream:
        # Metadata files and Parquet footers are small enough to read whole; a seekable buffer is
        # what pyarrow's footer reader wants.
        try:
            body = s3_client().get_object(Bucket=self._bucket, Key=self._key)["Body"].read()
        except ClientError as error:
            if _missing(error):
                raise FileNotFoundError(self.location) from error
            raise
        return io.BytesIO(body)


class _Upload(io.BytesIO):
    """Buffers a metadata file and puts it on close; never replaces an existing one unless told."""

    def __init__(self, bucket: str, key: str, *, overwrite: bool) -> None:
        super().__init__()
        self._bucket, self._key, self._overwrite = bucket, key, overwrite

    def close(self) -> None:
        if not self.closed:
            condition = {} if self._overwrite else {"IfNoneMatch": "*"}
            s3_client().put_object(
                Bucket=self._bucket, Key=self._key, Body=self.getvalue(), ChecksumAlgorithm="SHA256", **condition
            )
        super().close()


class S3OutputFile(OutputFile):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self._bucket, self._key = split_location(location)

    def __len__(self) -> int:
        return len(self.to_input_file())

    def exists(self) -> bool:
        return self.to_input_file().exists()

    def to_input_file(self) -> S3InputFile:
        return S3InputFile(self.location)

    def create(self, overwrite: bool = False) -> OutputStream:
        return _Upload(self._bucket, self._key, overwrite=overwrite)


class Boto3FileIO(FileIO):
    """Named in the catalog's properties as `py-io-impl` (handlers/dal/ledger.py)."""

    def new_input(self, location: str) -> InputFile:
        return S3InputFile(location)

    def new_output(self, location: str) -> OutputFile:
        return S3OutputFile(location)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        bucket, key = split_location(location if isinstance(location, str) else location.location)
        s3_client().delete_object(Bucket=bucket, Key=key)
