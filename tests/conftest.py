"""Shared by every suite: synthesize once per session (in process, through app.py's fast provider path)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_constructs import provider_import

# Before any test module imports a provider class (as app.py does for the CLI and Make).
provider_import.enable()

from stacks.config import PipelineConfig, from_env  # noqa: E402
from tests.infra import synth  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A distinctive suffix, so "every name carries the suffix" cannot pass by accident.
TEST_ENV = {"ENVIRONMENT_SUFFIX": "qa7"}
PROD_ENV = {"ENVIRONMENT_SUFFIX": "prod"}
LOCAL_ENV = {**TEST_ENV, "LOCAL": "1"}


@pytest.fixture(scope="session")
def config() -> PipelineConfig:
    return from_env(TEST_ENV)


@pytest.fixture(scope="session")
def synthesized(config: PipelineConfig, tmp_path_factory: pytest.TempPathFactory) -> synth.Synth:
    return synth.synthesize(config, tmp_path_factory.mktemp("cdktf.out"))


@pytest.fixture(scope="session")
def prod_config() -> PipelineConfig:
    return from_env(PROD_ENV)


@pytest.fixture(scope="session")
def prod_synthesized(prod_config: PipelineConfig, tmp_path_factory: pytest.TempPathFactory) -> synth.Synth:
    return synth.synthesize(prod_config, tmp_path_factory.mktemp("cdktf.out.prod"))


@pytest.fixture(scope="session")
def local_config() -> PipelineConfig:
    return from_env(LOCAL_ENV)


@pytest.fixture(scope="session")
def local_synthesized(local_config: PipelineConfig, tmp_path_factory: pytest.TempPathFactory) -> synth.Synth:
    return synth.synthesize(local_config, tmp_path_factory.mktemp("cdktf.out.local"))


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Terraform pointed at the offline provider mirror, as `make install` sets it up."""
    subprocess.run(["make", "--no-print-directory", "build/terraform.rc"], cwd=PROJECT_ROOT, check=True)
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(PROJECT_ROOT / "build" / "terraform.rc"),
        "TF_PLUGIN_CACHE_DIR": str(PROJECT_ROOT / "build" / "terraform-plugins"),
        "TF_IN_AUTOMATION": "1",
    }


@pytest.fixture(scope="session")
def initialized(synthesized: synth.Synth, terraform_env: dict[str, str]) -> Iterator[synth.Synth]:
    for layer in synth.LAYERS:
        subprocess.run(
            ["terraform", "init", "-input=false", "-no-color"],
            cwd=synthesized.stack_dir(layer),
            env=terraform_env,
            check=True,
            capture_output=True,
        )
    yield synthesized
