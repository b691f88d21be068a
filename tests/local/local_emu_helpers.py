"""Helpers shared by the local emulator tests (unique module name: tests/ has no packages)."""

from __future__ import annotations

import io
import socket
import subprocess
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-2"
ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


class Emulator:
    def __init__(self, url: str, state_dir: Path, proc: subprocess.Popen):
        self.url, self.state_dir, self.proc = url, state_dir, proc

    def client(self, service: str, **config):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - the emulator's fake credentials
            config=Config(retries={"total_max_attempts": 1}, read_timeout=120, **config),
        )


def terraform_against(url: str, services: list[str]) -> dict:
    """A Terraform configuration's provider part, pointed at the emulator for `services`."""
    return {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "5.100.0"}}},
        "provider": {
            "aws": {
                "region": REGION,
                "access_key": "test",
                "secret_key": "test",
                "skip_credentials_validation": True,
                "skip_requesting_account_id": True,
                "skip_metadata_api_check": True,
                "s3_use_path_style": True,
                "endpoints": [{service: url for service in services}],
            }
        },
    }
