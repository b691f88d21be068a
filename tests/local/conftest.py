"""Fixtures for the local emulator tests.

The emulator runs as a separate process (`python -m local.emulator`), because moto's
backends/settings and our patches are process-global and must not leak into other tests.
"""

from __future__ import annotations

import signal

import pytest
from local_emu_helpers import Emulator, free_port

from local.launcher import spawn


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    base = tmp_path_factory.mktemp("emulator")
    port = free_port()
    try:  # as `make local-up` starts it, in the foreground
        proc = spawn(port, work_dir=base, detach=False, timeout_seconds=60)
    except RuntimeError as error:
        pytest.fail(f"{error}:\n" + (base / "emulator.log").read_text())
    yield Emulator(f"http://127.0.0.1:{port}", base / "emulator", proc)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=20)
    assert rc == 0, (base / "emulator.log").read_text()
