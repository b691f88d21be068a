"""Environments side by side on disk: own directory, own state, and no way to write one over another.

The end-to-end proof (two environments deployed on one emulator) is tests/e2e/test_environments.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app import claim
from pipeline_constructs.framework import App
from stacks.base import STATE_DIR, environment_name
from stacks.config import ConfigError, from_env
from stacks.network import NetworkStack
from tests.conftest import PROJECT_ROOT


def _network(outdir: Path, **env: str) -> dict[str, Any]:
    """The network layer alone (no Lambda packaging), synthesized into `outdir`."""
    outdir.mkdir(parents=True)
    app = App(outdir=str(outdir))
    NetworkStack(app, config=from_env(env))
    app.synth()
    return json.loads((outdir / "stacks" / "network" / "cdk.tf.json").read_text())


def test_s3_state_is_one_key_per_environment_and_layer_with_the_native_lock_file(tmp_path: Path) -> None:
    backends = {
        suffix: _network(tmp_path / suffix, ENVIRONMENT_SUFFIX=suffix, TF_STATE_BUCKET="fin-state")["terraform"]
        for suffix in ("dev", "qa")
    }
    for suffix, terraform in backends.items():
        assert terraform["backend"] == {
            "s3": {
                "bucket": "fin-state",
                "key": f"pipeline/{suffix}/network.tfstate",
                "region": "us-east-2",
                "encrypt": True,
                "use_lockfile": True,
            }
        }


@pytest.mark.parametrize("local", ["0", "1"])
def test_local_state_is_found_from_wherever_the_environment_is_synthesized(tmp_path: Path, local: str) -> None:
    # Make's cdktf.out/<environment> and the cdktf CLI's --output are at different depths.
    config = from_env({"ENVIRONMENT_SUFFIX": "qa", "LOCAL": local})
    expected = STATE_DIR / environment_name(config) / "network.tfstate"
    for outdir in (tmp_path / "cli", tmp_path / "cdktf.out" / environment_name(config)):
        path = _network(outdir, ENVIRONMENT_SUFFIX="qa", LOCAL=local)["terraform"]["backend"]["local"]["path"]
        assert not Path(path).is_absolute()
        assert (outdir / "stacks" / "network" / path).resolve() == expected
    assert environment_name(config) == ("local-qa" if local == "1" else "qa")


@pytest.mark.parametrize(("local", "directory"), [("0", "cdktf.out/qa"), ("1", "cdktf.out/local-qa")])
def test_make_gives_each_environment_its_own_directory(local: str, directory: str) -> None:
    result = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "synth", "ENVIRONMENT_SUFFIX=qa", f"LOCAL={local}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"synthesized {directory}/stacks/" in result.stdout


def test_one_directory_holds_one_environment(tmp_path: Path) -> None:
    claim(tmp_path, "dev")
    claim(tmp_path, "qa")  # nothing initialized yet: nothing to protect
    claim(tmp_path, "dev")
    (tmp_path / "stacks" / "network" / ".terraform").mkdir(parents=True)
    claim(tmp_path, "dev")  # the same environment again
    with pytest.raises(ConfigError, match="holds the Terraform working directories of 'dev', not 'qa'"):
        claim(tmp_path, "qa")
    assert (tmp_path / "environment").read_text() == "dev\n"
