"""Permissions the local emulator cannot prove by running, asserted on the synthesized roles.

The emulator enforces IAM on every request it receives (docs/security.md, section 4), but some
permissions are used by AWS services without a request it sees: Lambda writing the function's
logs, creating its network interfaces in the VPC, decrypting its KMS-encrypted environment,
sending traces; Step Functions delivering execution logs and traces and starting a Distributed
Map's child executions; and the TLS-only Deny statements, which never apply to the emulator's
plain HTTP. Each is asserted here instead.
"""

from __future__ import annotations

import json
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
        # Both in AWSLambdaVPCAccessExecutionRole; neither takes a resource ARN.
        assert statements["ManageVpcNetworkInterfaces"]["actions"] == [
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
        ]
        # Active tracing sends segments with the function's role.
        assert deployed["tracing_config"]["mode"] == "Active"
        assert "xray:PutTraceSegments" in statements["WriteTraces"]["actions"]


def _workflow_statements(synthesized: Synth) -> dict[str, dict[str, Any]]:
    documents = synthesized.data("orchestration", "aws_iam_policy_document")
    (permissions,) = [body for lid, body in documents.items() if lid.startswith("workflow-permissions")]
    return {s["sid"]: s for s in permissions["statement"]}


def _maps(state: dict[str, Any]) -> list[dict[str, Any]]:
    found = [state] if state.get("Type") == "Map" else []
    inner = [*state.get("States", {}).values(), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]
    for nested in inner:
        found += _maps(nested)
    return found


def test_the_state_machine_may_start_and_manage_its_own_map_children(synthesized: Synth) -> None:
    # A Distributed Map starts its items as child executions of the very state machine, inside
    # the emulator's interpreter, with no request the IAM check sees.
    machine = synthesized.resources("orchestration", "aws_sfn_state_machine")["workflow"]
    distributed = [
        m
        for m in _maps(json.loads(machine["definition"]))
        if m["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    ]
    assert distributed
    assert {m["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] for m in distributed} == {"STANDARD"}
    statements = _workflow_statements(synthesized)
    (own,) = statements["StartOwnExecutions"]["resources"]
    assert statements["StartOwnExecutions"]["actions"] == ["states:StartExecution"]
    assert own.endswith(f":stateMachine:{machine['name']}")
    # Its executions (machine:id) and a Distributed Map's children (machine/label:id), no other machine's.
    execution = own.replace(":stateMachine:", ":execution:")
    assert sorted(statements["ManageMapRuns"]["resources"]) == sorted([f"{execution}:*", f"{execution}/*"])
    assert {"states:DescribeExecution", "states:StopExecution"} <= set(statements["ManageMapRuns"]["actions"])


def test_the_upload_and_drain_rules_may_start_the_workflow_and_nothing_else(synthesized: Synth) -> None:
    targets = {
        lid: t
        for lid, t in synthesized.resources("orchestration", "aws_cloudwatch_event_target").items()
        if lid.startswith(("uploads_", "drain_"))
    }
    assert len(targets) == 2
    assert {t["arn"] for t in targets.values()} == {"${aws_sfn_state_machine.workflow.arn}"}
    (role,) = {t["role_arn"] for t in targets.values()}
    role_name = role.removeprefix("${aws_iam_role.").removesuffix(".arn}")
    (policy,) = [
        p
        for p in synthesized.resources("orchestration", "aws_iam_role_policy").values()
        if p["role"] == f"${{aws_iam_role.{role_name}.id}}"
    ]
    documents = synthesized.data("orchestration", "aws_iam_policy_document")
    (document,) = [
        d for lid, d in documents.items() if policy["policy"] == f"${{data.aws_iam_policy_document.{lid}.json}}"
    ]
    assert [(s["actions"], s["resources"]) for s in document["statement"]] == [
        (["states:StartExecution"], ["${aws_sfn_state_machine.workflow.arn}"])
    ]


def test_the_state_machine_may_deliver_its_logs_and_traces(synthesized: Synth) -> None:
    machine = synthesized.resources("orchestration", "aws_sfn_state_machine")["workflow"]
    statements = _workflow_statements(synthesized)
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
