"""Real terraform (hashicorp/aws 5.100.0 from the offline mirror) against the emulator:
apply is fast (no retry storms on missing actions), plan shows no drift, destroy works."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from local_emu_helpers import make_zip, terraform_against

pytestmark = pytest.mark.slow

MIRROR = Path(os.environ.get("PIPELINE_TF_MIRROR", "/opt/tf-plugins"))
APPLY_BUDGET_SECONDS = 120  # measured ~20 s here; the unpatched emulator takes many minutes


def _trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": service}}],
        }
    )


def _config(url: str, zip_path: Path, zip_bytes: bytes) -> dict:
    services = ("iam", "sts", "lambda", "sfn", "sqs", "s3", "cloudwatchlogs", "sns")
    definition = {
        "StartAt": "Run",
        "States": {
            "Run": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${aws_lambda_function.fn.arn}", "Payload.$": "$"},
                "End": True,
            }
        },
    }
    return {
        **terraform_against(url, services),
        "resource": {
            "aws_iam_role": {
                "lambda": {"name": "tf-lambda-role", "assume_role_policy": _trust("lambda.amazonaws.com")},
                "sfn": {"name": "tf-sfn-role", "assume_role_policy": _trust("states.amazonaws.com")},
            },
            # An SNS topic as DLQ target: aws_sqs_queue alone costs ~26 s, the provider's own
            # attribute-propagation waiter (6 consecutive equal reads, >= 3 s apart), not the emulator.
            "aws_sns_topic": {"dlq": {"name": "tf-dlq"}},
            "aws_lambda_function": {
                "fn": {
                    "function_name": "tf-fn",
                    "role": "${aws_iam_role.lambda.arn}",
                    "handler": "app.handler",
                    "runtime": "python3.11",
                    "filename": str(zip_path),
                    "source_code_hash": base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode(),
                    "dead_letter_config": {"target_arn": "${aws_sns_topic.dlq.arn}"},
                }
            },
            "aws_sfn_state_machine": {
                "sm": {
                    "name": "tf-sm",
                    "role_arn": "${aws_iam_role.sfn.arn}",
                    "definition": json.dumps(definition),
                }
            },
        },
    }


@pytest.mark.skipif(shutil.which("terraform") is None or not MIRROR.is_dir(), reason="terraform/provider mirror absent")
def test_terraform_apply_plan_destroy(emulator, tmp_path):
    work = tmp_path / "tf"
    work.mkdir()
    zip_bytes = make_zip({"app.py": "def handler(event, context):\n    return event\n"})
    (work / "fn.zip").write_bytes(zip_bytes)
    (work / "main.tf.json").write_text(json.dumps(_config(emulator.url, work / "fn.zip", zip_bytes), indent=1))
    (tmp_path / "cli.tfrc").write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n'
    )
    cache = Path(os.environ.get("TF_PLUGIN_CACHE_DIR") or Path.home() / ".cache" / "pipeline-tf-plugin-cache")
    cache.mkdir(parents=True, exist_ok=True)  # the 675 MB provider is copied here once, then symlinked
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(tmp_path / "cli.tfrc"),
        "TF_PLUGIN_CACHE_DIR": str(cache),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "TF_LOG": "",
    }

    def tf(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            ["terraform", *args, "-input=false", "-no-color"],  # noqa: S607
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    init = tf("init")
    assert init.returncode == 0, init.stdout + init.stderr

    started = time.monotonic()
    apply = tf("apply", "-auto-approve", timeout=APPLY_BUDGET_SECONDS)
    apply_seconds = time.monotonic() - started
    try:
        assert apply.returncode == 0, apply.stdout + apply.stderr
        assert apply_seconds < APPLY_BUDGET_SECONDS

        plan = tf("plan", "-detailed-exitcode")
        assert plan.returncode == 0, "drift after apply:\n" + plan.stdout + plan.stderr
    finally:
        destroy = tf("destroy", "-auto-approve")
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    print(f"terraform apply took {apply_seconds:.1f}s")
