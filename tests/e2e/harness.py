"""A fresh emulator and the project's own deploy targets, for end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local import launcher

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORK = PROJECT_ROOT / "build" / "e2e"
SUFFIX = "e2e"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Emulator:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls) -> Emulator:
        port = free_port()
        return cls(port=port, process=launcher.spawn(port, work_dir=WORK, detach=False))

    def inject(self, function: str, error_type: str, times: int) -> None:
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/_pipeline/faults",
            method="POST",
            data=json.dumps({"function": function, "errorType": error_type, "times": times}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310

    def clear_faults(self) -> None:
        urllib.request.urlopen(  # noqa: S310
            urllib.request.Request(f"{self.url}/_pipeline/faults", method="DELETE"), timeout=5
        ).close()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Target:
    """Make targets and AWS clients aimed at one emulator and the `e2e` environment."""

    emulator: Emulator
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LOCAL": "1",
            "LOCAL_PORT": str(self.emulator.port),
            "LOCAL_ENDPOINT": self.emulator.url,
            "ENVIRONMENT_SUFFIX": SUFFIX,
            "CDKTF_OUT": str((WORK / "cdktf.out").relative_to(PROJECT_ROOT)),
            "RETRY_INTERVAL_SECONDS": "1",
            "AWS_ENDPOINT_URL": self.emulator.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-2",
            "AWS_DEFAULT_REGION": "us-east-2",
        }

    def make(self, *targets: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = subprocess.run(
            ["make", "--no-print-directory", *targets],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        self.timings[" ".join(targets)] = time.monotonic() - started
        if check:
            assert result.returncode == 0, (
                f"make {' '.join(targets)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def terraform(self, layer: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **self.env,
            "TF_CLI_CONFIG_FILE": str(PROJECT_ROOT / "build" / "terraform.rc"),
            "TF_PLUGIN_CACHE_DIR": str(PROJECT_ROOT / "build" / "terraform-plugins"),
        }
        return subprocess.run(
            ["terraform", f"-chdir={WORK / 'cdktf.out' / 'stacks' / layer}", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.emulator.url,
            region_name="us-east-2",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )  # noqa: S106


def fresh_workdir() -> None:
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True, exist_ok=True)
