"""Permissions the local emulator cannot prove by running, asserted on the synthesized roles.

The emulator enforces IAM on every request it receives (docs/security.md, section 4), but some
permissions are used by AWS services without a request it sees: Lambda writing the function's
logs, creating its network interfaces in the VPC, decrypting its KMS-encrypted environment,
sending traces; Step Functions delivering execution logs and traces; and the TLS-only Deny
statements, which never apply to the emulator's plain HTTP. Each is asserted here instead.
"""

from __future__ import annotations

from typing import Any

from stacks.config import PipelineConfig
from tests.infra.synth import Synth

KMS_KEY = "${data.aws_ssm_parameter.import-kms-key-arn.value}"


def _function_statements(synthesized: Synth, function: str) -> dict[str, dict[str, Any]]:
    documents = synthesized.data("compute", "aws_iam_policy_document")
    (permissions,) = [body for lid, body in documents.items() if lid.startswith(f"{function}_permissions_")]
    return {s["sid"]: s for s in permissions["statement"]}


def test_each_function_may_run_where_and_how_it_is_deployed(synthesized: Synth, config: PipelineConfig) -> None:
    functions = synthesized.resources("compute", "aws_lambda_function")
    for function in config.functions:
        (deployed,) = [f for lid, f in functions.items() if lid.startswith(f"{function}_function_")]
        statements = _function_statements(synthesized, function)
        # Its own log group only, which it names as its LoggingConfig.
        logs = statements["WriteOwnLogs"]
        assert logs["actions"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
        (log_group,) = logs["resources"]
        assert log_group == deployed["logging_config"]["log_group"].replace(".name}", ".arn}") + ":*"
        # The environment is encrypted with the data key: Lambda decrypts it as the function.
        assert deployed["kms_key_arn"] == KMS_KEY
        assert {"kms:Decrypt"} <= set(statements["DecryptEnvironmentAndData"]["actions"])
        assert statements["DecryptEnvironmentAndData"]["resources"] == [KMS_KEY]
        # In the VPC: Lambda manages the function's interfaces with the function's role.
        assert deployed["vpc_config"]["subnet_ids"]
        assert {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"} <= set(
            statements["ManageOwnNetworkInterfaces"]["actions"]
        )
        assert statements["ManageVpcNetworkInterfaces"]["actions"] == ["ec2:DescribeNetworkInterfaces"]
        # Active tracing sends segments with the function's role.
        assert deployed["tracing_config"]["mode"] == "Active"
        assert "xray:PutTraceSegments" in statements["WriteTraces"]["actions"]


def test_the_state_machine_may_deliver_its_logs_and_traces(synthesized: Synth) -> None:
    machine = synthesized.only("orchestration", "aws_sfn_state_machine")
    documents = synthesized.data("orchestration", "aws_iam_policy_document")
    (permissions,) = [body for lid, body in documents.items() if lid.startswith("workflow-permissions")]
    statements = {s["sid"]: s for s in permissions["statement"]}
    assert machine["logging_configuration"]["level"] == "ALL"
    assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:DescribeLogGroups"} <= set(
        statements["DeliverExecutionLogs"]["actions"]
    )
    assert machine["tracing_configuration"]["enabled"] is True
    assert "xray:PutTraceSegments" in statements["WriteTraces"]["actions"]


def test_the_alert_topic_refuses_insecure_transport(synthesized: Synth) -> None:
    documents = synthesized.data("orchestration", "aws_iam_policy_document")
    (policy,) = [body for lid, body in documents.items() if lid.startswith("alerts-policy-document")]
    (deny,) = [s for s in policy["statement"] if s["effect"] == "Deny"]
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert set(deny["actions"]) == {"sns:Publish", "sns:Subscribe"}
