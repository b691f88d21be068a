"""Validators nobody on this team wrote, run on every environment's synthesized stacks, as a new
user would before pointing `cdktf deploy '*'` at a real account.

* asl-validator (npm, pinned in package.json) on every state machine definition;
* parliament (PyPI, pinned in requirements.txt) on every IAM policy document: identity, trust,
  key, bucket, topic and queue policies.

Each finding is fixed or excused in checkov/outside_validators.yaml with its reason; an excuse
that no longer matches anything fails as well.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from parliament import analyze_policy_string

from stacks.config import PipelineConfig
from tests.conftest import PROJECT_ROOT
from tests.infra.synth import Synth
from tests.security.rendered import Resolver, policy_json

EXCEPTIONS = yaml.safe_load((PROJECT_ROOT / "checkov" / "outside_validators.yaml").read_text())
# Each environment's synthesized stacks: dev (tests' own suffix), the local emulator's, production.
ENVIRONMENTS = {"dev": ("synthesized", "config"), "local": ("local_synthesized", "local_config")}
ENVIRONMENTS["prod"] = ("prod_synthesized", "prod_config")
# What uses a policy document decides what kind of policy it is.
KINDS = {
    ("aws_iam_role", "assume_role_policy"): "trust",
    ("aws_iam_role_policy", "policy"): "identity",
    ("aws_iam_policy", "policy"): "identity",
    ("aws_kms_key", "policy"): "key",
    ("aws_s3_bucket_policy", "policy"): "bucket",
    ("aws_sns_topic_policy", "policy"): "topic",
    ("aws_sqs_queue_policy", "policy"): "queue",
}
ASL_VALIDATE = """
const validate = require("asl-validator");
const fs = require("fs");
const results = process.argv.slice(1).map((path) => {
  const result = validate(JSON.parse(fs.readFileSync(path, "utf8")), { checkArn: true, checkPaths: true });
  return { path, errors: result.errors };
});
console.log(JSON.stringify(results));
"""


@pytest.fixture(params=sorted(ENVIRONMENTS))
def environment(request: pytest.FixtureRequest) -> tuple[str, Synth, PipelineConfig]:
    synth_fixture, config_fixture = ENVIRONMENTS[request.param]
    return request.param, request.getfixturevalue(synth_fixture), request.getfixturevalue(config_fixture)


# ---------------------------------------------------------------- asl-validator


def asl_errors(definitions: dict[str, str], workdir: Path) -> dict[str, list[dict[str, Any]]]:
    """asl-validator's errors for each definition (JSON text), in one node process."""
    if not (PROJECT_ROOT / "node_modules" / "asl-validator").is_dir():
        pytest.fail("asl-validator is missing from node_modules: run `make install` (npm ci)")
    paths = {}
    for name, text in definitions.items():
        paths[name] = workdir / f"{name}.asl.json"
        paths[name].write_text(text)
    result = subprocess.run(
        ["node", "-e", ASL_VALIDATE, *map(str, paths.values())],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    by_path = {entry["path"]: entry["errors"] for entry in json.loads(result.stdout)}
    return {name: by_path[str(path)] for name, path in paths.items()}


def state_machine_definitions(synthesized: Synth, config: PipelineConfig) -> dict[str, str]:
    resolver = Resolver(synthesized, region=config.region)
    return {
        f"{layer}.{logical_id}": resolver.text(body["definition"], layer=layer)
        for layer, rtype, logical_id, body in synthesized.all_resources()
        if rtype == "aws_sfn_state_machine"
    }


def _unexcused_asl(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    excused = [(e["code"], e["message"]) for e in EXCEPTIONS["asl-validator"]]
    return [e for e in errors if (e.get("Error code"), e.get("Message")) not in excused]


def test_asl_validator_accepts_every_state_machine_definition(
    environment: tuple[str, Synth, PipelineConfig], tmp_path: Path
) -> None:
    name, synthesized, config = environment
    definitions = state_machine_definitions(synthesized, config)
    assert definitions, f"{name}: no state machine"
    for machine, errors in asl_errors(definitions, tmp_path).items():
        assert _unexcused_asl(errors) == [], f"{name}: asl-validator refuses {machine}"


def test_asl_validator_refuses_a_state_name_used_twice(
    synthesized: Synth, config: PipelineConfig, tmp_path: Path
) -> None:
    """The check is live: a Map child named as another map's child is DUPLICATE_STATE_NAMES, as AWS
    answers DUPLICATE_STATE_NAME."""
    text = state_machine_definitions(synthesized, config)["orchestration.workflow"]
    broken = text.replace('"StartNext-Start"', '"StartOthers-Start"')
    assert broken != text
    (errors,) = asl_errors({"broken": broken}, tmp_path).values()
    assert {
        "Error code": "DUPLICATE_STATE_NAMES",
        "Message": "A state with this name already exists: StartOthers-Start",
    } in errors


# ---------------------------------------------------------------- parliament


def policy_kinds(synthesized: Synth) -> dict[tuple[str, str], str]:
    """(layer, document logical id) -> the kind of policy, from the attribute that uses it."""
    kinds: dict[tuple[str, str], str] = {}
    for layer, rtype, logical_id, body in synthesized.all_resources():
        for attribute in ("policy", "assume_role_policy"):
            value = body.get(attribute)
            if value is None:
                continue
            assert isinstance(value, str) and value.startswith("${data.aws_iam_policy_document."), (
                f"{layer}: {rtype}.{logical_id}.{attribute} is not an aws_iam_policy_document, so no validator reads it"
            )
            assert (rtype, attribute) in KINDS, f"{layer}: {rtype}.{attribute}: which kind of policy is it?"
            document = value.removeprefix("${data.aws_iam_policy_document.").removesuffix(".json}")
            kinds[(layer, document)] = KINDS[(rtype, attribute)]
    return kinds


def _finding_actions(finding: Any) -> set[str]:
    actions = (finding.location or {}).get("actions")
    if isinstance(actions, str):  # parliament keeps them as the text of a list
        actions = yaml.safe_load(actions)
    return {a.lower() for a in actions or ()}


def _excuse(finding: Any, kind: str) -> int | None:
    """The index of the entry in checkov/outside_validators.yaml that excuses this finding."""
    for index, entry in enumerate(EXCEPTIONS["parliament"]):
        if entry["issue"] != finding.issue or kind not in entry["kinds"]:
            continue
        if "detail" in entry and entry["detail"] != finding.detail:
            continue
        if "actions" in entry and {a.lower() for a in entry["actions"]} != _finding_actions(finding):
            continue
        return index
    return None


_FINDINGS: dict[Path, list[dict[str, Any]]] = {}


def parliament_findings(synthesized: Synth, region: str) -> list[dict[str, Any]]:
    """Every finding parliament makes on the stacks' policy documents, with the excuse it has
    (once per synthesized environment)."""
    if synthesized.outdir not in _FINDINGS:
        _FINDINGS[synthesized.outdir] = _parliament_findings(synthesized, region)
    return _FINDINGS[synthesized.outdir]


def _parliament_findings(synthesized: Synth, region: str) -> list[dict[str, Any]]:
    resolver = Resolver(synthesized, region=region)
    kinds = policy_kinds(synthesized)
    findings = []
    for layer, logical_id, block in synthesized.policy_documents():
        assert (layer, logical_id) in kinds, f"{layer}: policy document {logical_id} is used by nothing"
        kind = kinds[(layer, logical_id)]
        document = policy_json(resolver.data(block, layer=layer))
        for finding in analyze_policy_string(json.dumps(document), include_community_auditors=True).findings:
            if finding.severity == "MUTE":
                continue
            findings.append(
                {
                    "document": f"{layer}.{logical_id} ({kind})",
                    "issue": finding.issue,
                    "detail": finding.detail,
                    "actions": sorted(_finding_actions(finding)),
                    "excuse": _excuse(finding, kind),
                }
            )
    return findings


def test_parliament_finds_nothing_unreviewed_in_any_policy_document(
    environment: tuple[str, Synth, PipelineConfig],
) -> None:
    name, synthesized, config = environment
    assert sum(1 for _ in synthesized.policy_documents()) >= 20
    unexcused = [f for f in parliament_findings(synthesized, config.region) if f["excuse"] is None]
    assert unexcused == [], f"{name}: parliament's findings, neither fixed nor reviewed:\n" + "\n".join(
        json.dumps(f) for f in unexcused
    )


def test_every_reviewed_exception_is_still_needed_and_gives_its_reason(
    synthesized: Synth, config: PipelineConfig, prod_synthesized: Synth, prod_config: PipelineConfig
) -> None:
    used = {
        f["excuse"]
        for synth_, config_ in ((synthesized, config), (prod_synthesized, prod_config))
        for f in parliament_findings(synth_, config_.region)
    }
    for index, entry in enumerate(EXCEPTIONS["parliament"]):
        assert len(entry.get("reason", "").split()) >= 10, f"parliament exception {entry['issue']} needs a reason"
        assert set(entry["kinds"]) <= set(KINDS.values()), entry
        assert index in used, f"parliament exception {entry['issue']} {entry['kinds']} matches no finding: remove it"
    for entry in EXCEPTIONS["asl-validator"]:
        assert len(entry.get("reason", "").split()) >= 10, f"asl-validator exception {entry['code']} needs a reason"


def test_documents_are_rendered_as_the_provider_renders_them() -> None:
    """One-element lists become strings (parliament crashes on a one-element Bool list), longer
    lists stay lists, the principal "*" of type "*" becomes "Principal": "*"."""
    block = {
        "statement": [
            {
                "sid": "DenyInsecureTransport",
                "effect": "Deny",
                "actions": ["s3:GetObject", "s3:PutObject"],
                "resources": ["arn:aws:s3:::bucket/*"],
                "principals": [{"type": "*", "identifiers": ["*"]}],
                "condition": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
            }
        ]
    }
    (statement,) = policy_json(block)["Statement"]
    assert statement == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Action": ["s3:PutObject", "s3:GetObject"],
        "Resource": "arn:aws:s3:::bucket/*",
        "Principal": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert analyze_policy_string(json.dumps(policy_json(block))).findings == []


def test_parliament_finds_a_grant_that_grants_nothing() -> None:
    """The check is live: logs:DescribeLogGroups takes "*" only, so scoping it to a log group is refused."""
    block = {
        "statement": [
            {
                "sid": "DescribeGroup",
                "actions": ["logs:DescribeLogGroups"],
                "resources": ["arn:aws:logs:us-east-2:123456789012:log-group:flow-logs"],
            }
        ]
    }
    findings = analyze_policy_string(json.dumps(policy_json(block))).findings
    assert [(f.issue, f.detail) for f in findings] == [
        ("RESOURCE_MISMATCH", [{"action": "logs:DescribeLogGroups", "required_format": "*"}])
    ]
