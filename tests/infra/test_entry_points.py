"""The same four stacks, whichever way synthesis is started."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_constructs import provider_import
from tests.conftest import PROJECT_ROOT, TEST_ENV
from tests.infra.synth import LAYERS, Synth, read, tree_bytes


def _run_app(outdir: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **TEST_ENV, "CDKTF_OUTDIR": str(outdir), **extra_env}
    return subprocess.run(
        [sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_fast_provider_import_is_byte_identical_to_the_normal_import(synthesized: Synth, tmp_path: Path) -> None:
    # A provider upgrade that changes what the lean import registers fails here.
    result = _run_app(tmp_path, PIPELINE_FULL_PROVIDER_IMPORT="1")
    assert result.returncode == 0, result.stderr
    normal, fast = tree_bytes(tmp_path), tree_bytes(synthesized.outdir)
    assert sorted(normal) == sorted(fast)
    differing = [name for name in normal if normal[name] != fast[name]]
    assert differing == []
    assert len(normal) >= 4 + 2  # four stacks, the manifest, the assets


def test_the_fast_path_is_really_taken() -> None:
    import cdktf_cdktf_provider_aws.s3_bucket  # noqa: F401

    assert provider_import.is_active()
    loaded = [m for m in sys.modules if m.startswith("cdktf_cdktf_provider_aws.")]
    # The full import registers every one of the provider's ~2,100 submodules; the lean one only
    # those imported (how many depends on which tests this worker ran before).
    assert "cdktf_cdktf_provider_aws.s3_bucket" in loaded
    assert len(loaded) < 200, len(loaded)


@pytest.mark.slow
def test_cdktf_cli_synth_produces_the_same_stacks(synthesized: Synth, tmp_path: Path) -> None:
    cli = PROJECT_ROOT / "node_modules" / ".bin" / "cdktf"
    assert cli.exists(), "run `make install`: cdktf-cli is installed inside the project"
    env = {**os.environ, **TEST_ENV, "CHECKPOINT_DISABLE": "1", "CI": "1"}
    result = subprocess.run(
        [str(cli), "synth", "--output", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    through_cli = read(tmp_path)
    for layer in LAYERS:
        assert json.dumps(through_cli.stacks[layer], sort_keys=True) == json.dumps(
            synthesized.stacks[layer], sort_keys=True
        ), layer


def test_a_bad_setting_stops_synthesis_with_its_name(tmp_path: Path) -> None:
    result = _run_app(tmp_path, ENVIRONMENT_SUFFIX="Prod_1")
    assert result.returncode == 2
    assert "ENVIRONMENT_SUFFIX='Prod_1'" in result.stderr
    assert not (tmp_path / "stacks").exists()


def test_entry_points_silence_the_node_end_of_life_banner_without_hiding_stderr(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"}
    # An outdir of its own: Make's CDKTF_OUTDIR names cdktf.out/<environment>, absent on a clean clone.
    probe = (
        "from pipeline_constructs import provider_import; provider_import.enable(); import cdktf; "
        f"cdktf.App(outdir={str(tmp_path)!r})"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "end-of-life" not in result.stderr
