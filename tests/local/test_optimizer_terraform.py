"""The provider's aws_glue_catalog_table_optimizer (hashicorp/aws 5.100.0) against the emulator:
apply creates the three optimizers of an Iceberg table, plan shows no drift, an edit updates in
place, destroy deletes them (local/glue_iceberg.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from iceberg_helpers import LEDGER, glue_catalog, new_lake
from local_emu_helpers import ACCOUNT, terraform_against

pytestmark = pytest.mark.slow

MIRROR = Path(os.environ.get("PIPELINE_TF_MIRROR", "/opt/tf-plugins"))
ROLE = f"arn:aws:iam::{ACCOUNT}:role/optimizer"


def _config(url: str, database: str, retention_days: int) -> dict:
    def optimizer(kind: str, **configuration) -> dict:
        return {
            "catalog_id": ACCOUNT,
            "database_name": database,
            "table_name": "ledger",
            "type": kind,
            "configuration": [{"role_arn": ROLE, "enabled": True, **configuration}],
        }

    return {
        **terraform_against(url, ["glue", "sts"]),
        "resource": {
            "aws_glue_catalog_table_optimizer": {
                "compaction": optimizer("compaction"),
                "retention": optimizer(
                    "retention",
                    retention_configuration=[
                        {
                            "iceberg_configuration": [
                                {
                                    "snapshot_retention_period_in_days": retention_days,
                                    "number_of_snapshots_to_retain": 10,
                                    "clean_expired_files": True,
                                }
                            ]
                        }
                    ],
                ),
                "orphans": optimizer(
                    "orphan_file_deletion",
                    orphan_file_deletion_configuration=[
                        {"iceberg_configuration": [{"orphan_file_retention_period_in_days": 7}]}
                    ],
                ),
            }
        },
    }


@pytest.mark.skipif(shutil.which("terraform") is None or not MIRROR.is_dir(), reason="terraform/provider mirror absent")
def test_terraform_manages_table_optimizers(emulator, tmp_path):
    bucket, database = new_lake(emulator, "tf-optim")
    glue_catalog(emulator.url).create_table(f"{database}.ledger", schema=LEDGER, location=f"s3://{bucket}/ledger")
    work = tmp_path / "tf"
    work.mkdir()
    (tmp_path / "cli.tfrc").write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n'
    )
    cache = Path(os.environ.get("TF_PLUGIN_CACHE_DIR") or Path.home() / ".cache" / "pipeline-tf-plugin-cache")
    cache.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(tmp_path / "cli.tfrc"),
        "TF_PLUGIN_CACHE_DIR": str(cache),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }

    def tf(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            ["terraform", *args, "-input=false", "-no-color"],  # noqa: S607
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def write(retention_days: int) -> None:
        (work / "main.tf.json").write_text(json.dumps(_config(emulator.url, database, retention_days), indent=1))

    glue = emulator.client("glue")
    name = {"CatalogId": ACCOUNT, "DatabaseName": database, "TableName": "ledger"}
    write(400)
    init = tf("init")
    assert init.returncode == 0, init.stdout + init.stderr
    try:
        apply = tf("apply", "-auto-approve")
        assert apply.returncode == 0, apply.stdout + apply.stderr
        retention = glue.get_table_optimizer(**name, Type="retention")["TableOptimizer"]["configuration"]
        assert retention["retentionConfiguration"]["icebergConfiguration"]["snapshotRetentionPeriodInDays"] == 400
        assert glue.get_table_optimizer(**name, Type="compaction")["TableOptimizer"]["configuration"]["enabled"]
        plan = tf("plan", "-detailed-exitcode")
        assert plan.returncode == 0, "drift after apply:\n" + plan.stdout + plan.stderr

        write(800)  # an edit of the configuration updates in place
        apply = tf("apply", "-auto-approve")
        assert apply.returncode == 0, apply.stdout + apply.stderr
        assert "0 added, 1 changed, 0 destroyed" in apply.stdout
        retention = glue.get_table_optimizer(**name, Type="retention")["TableOptimizer"]["configuration"]
        assert retention["retentionConfiguration"]["icebergConfiguration"]["snapshotRetentionPeriodInDays"] == 800
    finally:
        destroy = tf("destroy", "-auto-approve")
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    for kind in ("compaction", "retention", "orphan_file_deletion"):
        with pytest.raises(glue.exceptions.EntityNotFoundException):
            glue.get_table_optimizer(**name, Type=kind)
