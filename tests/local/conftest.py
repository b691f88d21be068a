"""Fixtures for the local emulator tests.

The emulator runs as a separate process (`python -m local.emulator`), because moto's
backends/settings and our patches are process-global and must not leak into other tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from local_emu_helpers import REPO, Emulator, free_port

from local.lambda_runner import link_runtime_dir


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    base = tmp_path_factory.mktemp("emulator")
    runtime_dir = link_runtime_dir(base / "runtime")
    port = free_port()
    log = open(base / "emulator.out", "w+b")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "local.emulator",
            "--port",
            str(port),
            "--state-dir",
            str(base / "state"),
            "--runtime-dir",
            str(runtime_dir),
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    ready = f"emulator ready on http://127.0.0.1:{port}".encode()
    deadline = time.monotonic() + 60
    while ready not in (base / "emulator.out").read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("emulator did not start:\n" + (base / "emulator.out").read_text())
        time.sleep(0.1)
    yield Emulator(f"http://127.0.0.1:{port}", base / "state", proc)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=20)
    log.close()
    assert rc == 0, (base / "emulator.out").read_text()
