"""checkov over the four synthesized stacks (dev-like `qa7` and `prod`): the gate holds."""

from __future__ import annotations

import pytest

CUSTOM_CHECKS = {f"CKV_FIN_{n}" for n in range(1, 8)}


@pytest.mark.parametrize("which", ["gate", "prod_gate"])
def test_gate_passes(which: str, request: pytest.FixtureRequest) -> None:
    returncode, verdict, stderr = request.getfixturevalue(which)
    assert verdict["problems"] == [], stderr
    assert returncode == 0
    assert verdict["parsing_errors"] == 0
    assert verdict["failed"] == 0, verdict["failures"]
    # checkov exits 0 having checked nothing when it cannot parse a file.
    assert verdict["passed"] >= 150
    assert verdict["files"] == [f"/{layer}/cdk.tf.json" for layer in ("compute", "network", "orchestration", "storage")]


def test_every_skip_is_in_the_config_with_a_reason(gate: tuple[int, dict, str]) -> None:
    _, verdict, _ = gate
    skips = verdict["skips"]
    assert verdict["skipped_in_report"] == 0  # checkov's own suppressions: none
    assert 0 < len(skips) <= 15
    for check_id, reason in skips.items():
        assert len(reason) >= 40, f"{check_id} needs a reason in checkov/config.yaml"
    # A skip must never hide our own checks.
    assert not [s for s in skips if s.startswith("CKV_FIN_")]


def test_custom_checks_run(gate: tuple[int, dict, str], prod_gate: tuple[int, dict, str]) -> None:
    assert set(gate[1]["custom_checks_run"]) == CUSTOM_CHECKS - {"CKV_FIN_4"}  # no Object Lock outside production
    assert set(prod_gate[1]["custom_checks_run"]) == CUSTOM_CHECKS
