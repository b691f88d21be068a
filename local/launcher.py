"""Start and stop the local emulator in the background: `python -m local.launcher up|down`.

Used by `make local-up` / `make local-down` (and so by `make demo` and `LOCAL=1` deploys).
The emulator keeps its state in memory, so Terraform state of local deployments is reset
whenever a new emulator starts or the old one stops: it would describe resources that no
longer exist.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = PROJECT_ROOT / ".local"
PID_FILE = WORK_DIR / "emulator.pid"
LOG_FILE = WORK_DIR / "emulator.log"
LOCAL_STATES = PROJECT_ROOT / ".state"


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_pipeline/health", timeout=1) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _running_pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def _reset_local_states() -> None:
    for state in LOCAL_STATES.glob("local-*"):
        shutil.rmtree(state)


def spawn(port: int, *, work_dir: Path, detach: bool, timeout_seconds: float = 90) -> subprocess.Popen[bytes]:
    """Start `python -m local.emulator` in the background and wait until it answers."""
    from local.lambda_runner import link_runtime_dir

    work_dir.mkdir(parents=True, exist_ok=True)
    runtime = link_runtime_dir(work_dir / "runtime")
    command = [
        sys.executable,
        "-m",
        "local.emulator",
        "--port",
        str(port),
        "--state-dir",
        str(work_dir / "emulator"),
        "--runtime-dir",
        str(runtime),
    ]
    with (work_dir / "emulator.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            command,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
    deadline = time.monotonic() + timeout_seconds
    while not healthy(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"emulator did not start; see {work_dir / 'emulator.log'}")
        time.sleep(0.2)
    return process


def up(port: int) -> int:
    if healthy(port):
        print(f"emulator already running on http://127.0.0.1:{port}")
        return 0
    _reset_local_states()
    try:
        process = spawn(port, work_dir=WORK_DIR, detach=True)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    PID_FILE.write_text(str(process.pid))
    print(f"emulator running on http://127.0.0.1:{port} (pid {process.pid}, log {LOG_FILE.relative_to(PROJECT_ROOT)})")
    return 0


def down(port: int, *, timeout_seconds: float = 15) -> int:
    pid = _running_pid()
    if pid is None:
        PID_FILE.unlink(missing_ok=True)
        _reset_local_states()
        if healthy(port):
            print(f"an emulator not started by this project answers on port {port}; left alone", file=sys.stderr)
            return 1
        print("emulator not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    while _running_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running_pid() is not None:
        os.kill(pid, signal.SIGKILL)
    PID_FILE.unlink(missing_ok=True)
    _reset_local_states()
    print(f"emulator stopped (pid {pid}); local Terraform state cleared")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.launcher")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_PORT", "4566")))
    args = parser.parse_args(argv)
    return up(args.port) if args.action == "up" else down(args.port)


if __name__ == "__main__":
    sys.exit(main())
