"""Across the four stacks: Parameter Store wiring, IAM, tags, names, order."""

import json
import subprocess

import pytest

from tests.infra.synth import LAYERS, Synth

SEED_EXPORTS = {
    "/pipeline/qa7/bucket-name": "storage",
    "/pipeline/qa7/table-name": "storage",
    "/pipeline/qa7/state-machine-arn": "orchestration",
    "/pipeline/qa7/vpc-id": "network",
}
# Where AWS gives no narrower resource than "*" (each says why next to the statement).
ANY_RESOURCE_STATEMENTS = {
    "ManageVpcNetworkInterfaces",
    "WriteTraces",
    "DeliverExecutionLogs",
    "FindLogGroups",
    "PutAuditMetric",  # with the cloudwatch:namespace condition
}
FINOPS_TAGS = {"Environment", "Project", "CostCenter", "Owner", "ManagedBy", "Layer"}


def _exports(synthesized: Synth) -> dict[str, str]:
    return {
        body["name"]: layer for layer, rtype, _, body in synthesized.all_resources() if rtype == "aws_ssm_parameter"
    }


def test_seed_exports_exist_in_the_right_layer(synthesized: Synth) -> None:
    exports = _exports(synthesized)
    for name, layer in SEED_EXPORTS.items():
        assert exports.get(name) == layer, name
    assert all(name.startswith("/pipeline/qa7/") for name in exports)


def test_layers_meet_only_through_parameters_exported_below_them(synthesized: Synth) -> None:
    exports = _exports(synthesized)
    for index, layer in enumerate(LAYERS):
        stack = synthesized.stacks[layer]
        assert "terraform_remote_state" not in stack.get("data", {})
        assert "remote_state" not in json.dumps(stack)
        for imported in synthesized.data(layer, "aws_ssm_parameter").values():
            producer = exports.get(imported["name"])
            assert producer is not None, f"{layer} reads {imported['name']}, which no layer exports"
            assert LAYERS.index(producer) < index, f"{layer} reads {imported['name']} from {producer}"


def test_deploy_order_is_declared(synthesized: Synth) -> None:
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text())
    dependencies = {name: stack["dependencies"] for name, stack in manifest["stacks"].items()}
    assert dependencies == {
        "network": [],
        "storage": ["network"],
        "compute": ["storage"],
        "orchestration": ["compute"],
    }


def test_policies_are_documents_scanners_can_read(synthesized: Synth) -> None:
    policy_attributes = {
        "aws_iam_role_policy": "policy",
        "aws_iam_role": "assume_role_policy",
        "aws_kms_key": "policy",
        "aws_s3_bucket_policy": "policy",
        "aws_sns_topic_policy": "policy",
    }
    for layer, rtype, logical_id, body in synthesized.all_resources():
        if rtype in policy_attributes:
            reference = body[policy_attributes[rtype]]
            assert reference.startswith("${data.aws_iam_policy_document.") and reference.endswith(".json}"), (
                f"{layer}.{rtype}.{logical_id} carries its policy as a string"
            )


def test_no_wildcard_action_and_any_resource_only_where_aws_requires_it(synthesized: Synth) -> None:
    checked = 0
    for layer, document_id, document in synthesized.policy_documents():
        for statement in document["statement"]:
            checked += 1
            where = f"{layer}/{document_id}/{statement.get('sid')}"
            if statement.get("effect", "Allow") == "Allow":
                assert not [a for a in statement["actions"] if "*" in a], where
                if "*" in statement.get("resources", []) and "principals" not in statement:
                    assert statement["sid"] in ANY_RESOURCE_STATEMENTS, where
    assert checked >= 30


@pytest.fixture(scope="session")
def taggable_types(initialized: Synth, terraform_env: dict[str, str]) -> set[str]:
    """From the provider's own schema, not from our aspect's idea of taggable."""
    schema = json.loads(
        subprocess.run(
            ["terraform", "providers", "schema", "-json"],
            cwd=initialized.stack_dir("network"),
            env=terraform_env,
            check=True,
            capture_output=True,
        ).stdout
    )
    resources = schema["provider_schemas"]["registry.terraform.io/hashicorp/aws"]["resource_schemas"]
    return {name for name, body in resources.items() if "tags" in body["block"].get("attributes", {})}


def test_every_taggable_resource_carries_the_finops_tags(synthesized: Synth, taggable_types: set[str]) -> None:
    tagged = 0
    for layer, rtype, logical_id, body in synthesized.all_resources():
        if rtype in taggable_types:
            tagged += 1
            assert set(body.get("tags", {})) >= FINOPS_TAGS, f"{layer}.{rtype}.{logical_id}"
            assert body["tags"]["Layer"] == layer and body["tags"]["Environment"] == "qa7"
        else:
            assert "tags" not in body, f"{rtype} takes no tags"
    assert tagged > 40
    for layer in LAYERS:  # data sources take none
        for instances in synthesized.stacks[layer].get("data", {}).values():
            assert all("tags" not in body for body in instances.values())


NAME_ATTRIBUTES = ("name", "bucket", "function_name", "layer_name", "alarm_name", "dashboard_name")
# Names scoped to a parent that carries the suffix: a role's policies, a Glue database's tables.
UNNAMED_BY_DESIGN = {"aws_iam_role_policy", "aws_glue_catalog_table"}


def test_every_named_resource_carries_the_suffix(synthesized: Synth) -> None:
    named = 0
    for layer, rtype, logical_id, body in synthesized.all_resources():
        if rtype in UNNAMED_BY_DESIGN:
            continue
        for attribute in NAME_ATTRIBUTES:
            value = body.get(attribute)
            if isinstance(value, str) and not value.startswith("${"):
                named += 1
                assert "qa7" in value, f"{layer}.{rtype}.{logical_id}.{attribute}={value}"
    assert named > 30


def test_terraform_validate_passes_on_every_stack(initialized: Synth, terraform_env: dict[str, str]) -> None:
    for layer in LAYERS:
        result = subprocess.run(
            ["terraform", "validate", "-json"],
            cwd=initialized.stack_dir(layer),
            env=terraform_env,
            capture_output=True,
            text=True,
        )
        report = json.loads(result.stdout)
        assert report["valid"] is True, f"{layer}: {report['diagnostics']}"
        assert report["error_count"] == 0 and report["warning_count"] == 0, f"{layer}: {report['diagnostics']}"
