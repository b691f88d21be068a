"""A fresh emulator and the project's own deploy targets, for end-to-end tests and benchmarks.

Each suite deploys from its own copy of the project (`Workspace`), so a test that edits
handler code, or two environments synthesized side by side, never touch the working tree
or another suite running in parallel.
"""

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

PROJECT_ROOT = Path(__file__).resolve().parents[1]
E2E_ROOT = PROJECT_ROOT / "build" / "e2e"
SUFFIX = "e2e"
REGION = "us-east-2"
# The local deployments' settings: small chunks and id partitions (a file of a few hundred KB
# fans out), two jobs at a time, and retries measured in seconds, not minutes.
LOCAL_SETTINGS = {
    "RETRY_INTERVAL_SECONDS": "1",
    "CHUNK_BYTES": str(256 << 10),
    "DEDUP_PARTITION_RECORDS": "10000",
    "TRANSFORM_ITEM_ROWS": "3000",  # a one-date file of 9,000 rows is several transform items
    "MAX_RUNNING_JOBS": "2",
    "MAP_MAX_CONCURRENCY": "3",
    "THROTTLE_RETRY_INTERVAL_SECONDS": "1",
    "THROTTLE_RETRY_MAX_DELAY_SECONDS": "5",
    "THROTTLE_RETRY_MAX_ATTEMPTS": "90",
    "DRAIN_EVERY_MINUTES": "1",
}
# Installed once for the project (`make install` runs before the tests), shared by every copy.
SHARED_INSTALLS = (".venv", ".venv-scan", "node_modules", "build/layers")
# What those installs are made from: dated back in a copy, so its Make never reinstalls into them.
INSTALL_INPUTS = ("requirements.txt", "requirements-scan.txt", "pyproject.toml", "package.json", "package-lock.json")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Workspace:
    """build/e2e/<name>: a copy of the project's files (`src`) and the emulator's files."""

    name: str

    @property
    def path(self) -> Path:
        return E2E_ROOT / self.name

    @property
    def src(self) -> Path:
        return self.path / "src"

    def create(self) -> Workspace:
        if self.path.exists():
            shutil.rmtree(self.path)
        self.src.mkdir(parents=True)
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            source = PROJECT_ROOT / name
            if source.is_file() and not source.is_symlink() and name not in SHARED_INSTALLS:
                (self.src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, self.src / name)
        for name in SHARED_INSTALLS:
            shared = PROJECT_ROOT / name
            shared.mkdir(parents=True, exist_ok=True)
            (self.src / name).parent.mkdir(parents=True, exist_ok=True)
            (self.src / name).symlink_to(shared.resolve())
        for name in INSTALL_INPUTS:
            os.utime(self.src / name, (0, 0))
        return self


@dataclass
class Emulator:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, workspace: Workspace) -> Emulator:
        port = free_port()
        return cls(port=port, process=launcher.spawn(port, work_dir=workspace.path, detach=False))

    def inject(self, function: str, error_type: str, times: int) -> None:
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/_pipeline/faults",
            method="POST",
            data=json.dumps({"function": function, "errorType": error_type, "times": times}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310

    def lambda_concurrency(self, limit: int | None = None, *, set_limit: bool = False) -> dict[str, Any]:
        """The emulator's Lambda concurrency figures; with ``set_limit``, set its limit first."""
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/_pipeline/lambda",
            method="POST" if set_limit else "GET",
            data=json.dumps({"limit": limit}).encode() if set_limit else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

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
    """Make targets and AWS clients aimed at one emulator and one environment of a workspace."""

    emulator: Emulator
    workspace: Workspace
    suffix: str = SUFFIX
    settings: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.workspace.src

    @property
    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.emulator.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LOCAL": "1",
            "LOCAL_PORT": str(self.emulator.port),
            "LOCAL_ENDPOINT": self.emulator.url,
            "ENVIRONMENT_SUFFIX": self.suffix,
            **LOCAL_SETTINGS,
            **self.aws_env,
            **self.settings,
        }

    def other(self, suffix: str, **settings: str) -> Target:
        """The same emulator and workspace, another environment."""
        return Target(emulator=self.emulator, workspace=self.workspace, suffix=suffix, settings=settings)

    def make(self, *targets: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = subprocess.run(
            ["make", "--no-print-directory", *targets],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        self.timings[f"{self.suffix}: make {' '.join(targets)}"] = time.monotonic() - started
        if check:
            assert result.returncode == 0, (
                f"make {' '.join(targets)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    @property
    def environment(self) -> str:
        """Its name on disk, in cdktf.out/ and .state/ (stacks/base.py: environment_name)."""
        return f"local-{self.suffix}"

    def stack_dir(self, layer: str) -> Path:
        return self.root / self.settings.get("CDKTF_OUT", f"cdktf.out/{self.environment}") / "stacks" / layer

    def state_file(self, layer: str) -> Path:
        return self.root / ".state" / self.environment / f"{layer}.tfstate"

    def terraform(self, layer: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **self.env,
            "TF_CLI_CONFIG_FILE": str(self.root / "build" / "terraform.rc"),
            "TF_PLUGIN_CACHE_DIR": str(self.root / "build" / "terraform-plugins"),
        }
        return subprocess.run(
            ["terraform", f"-chdir={self.stack_dir(layer)}", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def client(self, service: str, *, config: Any = None) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.emulator.url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - the emulator's fixed credentials
            config=config,
        )

    def write_timings(self) -> None:
        (self.workspace.path / "timings.json").write_text(json.dumps(self.timings, indent=2))
