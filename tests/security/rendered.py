"""The synthesized stacks as AWS would receive them, for the outside validators.

Terraform fills in `${...}` at plan time (ARNs, names, account id). The validators read plain
JSON, so each interpolation is replaced by a plausible value of the right service, built from the
synthesized resource it names (its name, the region, a fixed account id); a Parameter Store import
is followed to the stack that exports it. An interpolation not understood here fails the test
naming it, rather than reaching a validator as text it would misread.

IAM documents are rendered as the provider's aws_iam_policy_document renders them
(internal/service/iam/policy_model.go in hashicorp/terraform-provider-aws): a one-element list of
actions, resources, principal identifiers or condition values becomes a plain string, longer lists
are kept; a principal of type "*" with identifier "*" becomes "Principal": "*".
"""

from __future__ import annotations

import hashlib
import re
import string
import uuid
from typing import Any

from tests.infra.synth import Synth

ACCOUNT_ID = "123456789012"
INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")

# ARN of each resource type an interpolation names, from the resource's own (resolved) fields.
ARNS = {
    "aws_s3_bucket": "arn:aws:s3:::{bucket}",
    "aws_cloudwatch_log_group": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws_sfn_state_machine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "aws_sns_topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws_sqs_queue": "arn:aws:sqs:{region}:{account}:{name}",
    "aws_cloudwatch_event_rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "aws_kms_key": "arn:aws:kms:{region}:{account}:key/{key_id}",
    "aws_dynamodb_table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "aws_lambda_function": "arn:aws:lambda:{region}:{account}:function:{function_name}",
    "aws_lambda_layer_version": "arn:aws:lambda:{region}:{account}:layer:{layer_name}:1",
    "aws_iam_role": "arn:aws:iam::{account}:role/{name}",
}
# Identifiers AWS assigns (ids of network resources, key ids), made stable from the logical id.
ID_PREFIXES = {
    "aws_vpc": "vpc-",
    "aws_subnet": "subnet-",
    "aws_security_group": "sg-",
    "aws_vpc_endpoint": "vpce-",
    "aws_flow_log": "fl-",
}


class Resolver:
    def __init__(self, synthesized: Synth, *, region: str) -> None:
        self.synth = synthesized
        self.region = region
        self.exports = {
            body["name"]: (layer, body["value"])
            for layer, rtype, _, body in synthesized.all_resources()
            if rtype == "aws_ssm_parameter"
        }

    def text(self, text: str, *, layer: str) -> str:
        """`text` with every interpolation replaced (those inside resolved values too)."""
        for _ in range(10):
            resolved = INTERPOLATION.sub(lambda m: self._value(m[1].strip(), layer=layer), text)
            if resolved == text:
                return resolved
            text = resolved
        raise AssertionError(f"interpolations still unresolved after 10 passes: {text[:300]}")

    def data(self, value: Any, *, layer: str) -> Any:
        if isinstance(value, str):
            return self.text(value, layer=layer)
        if isinstance(value, list):
            return [self.data(v, layer=layer) for v in value]
        if isinstance(value, dict):
            return {k: self.data(v, layer=layer) for k, v in value.items()}
        return value

    def _value(self, expression: str, *, layer: str) -> str:
        joined = re.fullmatch(r'join\("([^"]*)",\s*\[(.*)\]\)', expression)
        if joined:  # e.g. the private subnets' ids exported as one parameter
            return joined[1].join(self._value(item.strip(), layer=layer) for item in joined[2].split(","))
        parts = expression.split(".")
        if parts[0] == "data":
            return self._data_source(parts[1:], expression, layer=layer)
        if len(parts) == 3 and re.fullmatch(r"aws_[a-z0-9_]+", parts[0]):
            return self._resource(*parts, layer=layer)
        raise AssertionError(
            f"{layer}: interpolation ${{{expression}}} is not understood by tests/security/rendered.py"
        )

    def _data_source(self, parts: list[str], expression: str, *, layer: str) -> str:
        kind, name, attribute = (parts + ["", "", ""])[:3]
        if kind == "aws_caller_identity" and attribute == "account_id":
            return ACCOUNT_ID
        if kind == "aws_region":
            return self.region
        if kind == "aws_partition":
            return "aws"
        if kind == "aws_ssm_parameter" and attribute == "value":
            parameter = self.synth.data(layer, "aws_ssm_parameter")[name]["name"]
            parameter = self.text(parameter, layer=layer)
            assert parameter in self.exports, f"{layer}: imports {parameter}, which no stack exports"
            producer, value = self.exports[parameter]
            return self.text(value, layer=producer)
        raise AssertionError(f"{layer}: data source ${{{expression}}} is not understood by tests/security/rendered.py")

    def _resource(self, rtype: str, logical_id: str, attribute: str, *, layer: str) -> str:
        body = self.synth.resources(layer, rtype).get(logical_id)
        assert body is not None, f"{layer}: ${{{rtype}.{logical_id}.{attribute}}} names no resource of that stack"
        stable = hashlib.sha256(f"{layer}/{rtype}/{logical_id}".encode()).hexdigest()
        if attribute == "arn":
            assert rtype in ARNS, f"{layer}: no ARN format for {rtype} in tests/security/rendered.py"
            known = {"region": self.region, "account": ACCOUNT_ID, "key_id": str(uuid.UUID(stable[:32]))}
            fields = {
                field: known[field] if field in known else self.text(body[field], layer=layer)
                for _, field, _, _ in string.Formatter().parse(ARNS[rtype])
                if field
            }
            return ARNS[rtype].format(**fields)
        if attribute == "id" and rtype in ID_PREFIXES:
            return ID_PREFIXES[rtype] + stable[:17]
        if attribute == "id" and rtype == "aws_kms_key":
            return str(uuid.UUID(stable[:32]))
        if attribute in ("id", "name") and "name" in body:
            return self.text(body["name"], layer=layer)
        if attribute in body and isinstance(body[attribute], str):
            return self.text(body[attribute], layer=layer)
        raise AssertionError(f"{layer}: ${{{rtype}.{logical_id}.{attribute}}} is not understood here")


def _one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else sorted(values, reverse=True)


def policy_json(document: dict[str, Any]) -> dict[str, Any]:
    """An aws_iam_policy_document's synthesized block (interpolations resolved) as the JSON the
    provider renders."""
    statements = []
    for block in document.get("statement", []):
        statement: dict[str, Any] = {}
        if block.get("sid"):
            statement["Sid"] = block["sid"]
        statement["Effect"] = block.get("effect", "Allow")
        for field, key in (("actions", "Action"), ("not_actions", "NotAction")):
            if block.get(field):
                statement[key] = _one_or_many(block[field])
        for field, key in (("resources", "Resource"), ("not_resources", "NotResource")):
            if block.get(field):
                statement[key] = _one_or_many(block[field])
        for field, key in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
            principals = block.get(field) or []
            if len(principals) == 1 and principals[0]["type"] == "*" and principals[0]["identifiers"] == ["*"]:
                statement[key] = "*"
            elif principals:
                statement[key] = {p["type"]: _one_or_many(p["identifiers"]) for p in principals}
        conditions: dict[str, dict[str, Any]] = {}
        for condition in block.get("condition") or []:
            values = conditions.setdefault(condition["test"], {}).setdefault(condition["variable"], [])
            values.extend(condition["values"])
        if conditions:
            statement["Condition"] = {
                test: {variable: values[0] if len(values) == 1 else values for variable, values in tests.items()}
                for test, tests in conditions.items()
            }
        statements.append(statement)
    return {"Version": document.get("version", "2012-10-17"), "Statement": statements}
