"""IAM policy evaluation, as AWS does it for one account, for the emulator's enforcement.

moto's own evaluator (moto/iam/access_control.py) turns an Allow whose condition does not hold
into an explicit Deny, matches actions case-sensitively, reads `*` as a regular expression,
knows no `?`, `NotResource` or service principals, and crashes on a trust policy naming one.
This one follows the AWS rules that matter here:

  * an explicit Deny in any policy wins; else an Allow in any policy allows; else implicit deny;
  * Action/NotAction match case-insensitively, Resource/NotResource case-sensitively, with the
    IAM wildcards `*` and `?`;
  * Principal/NotPrincipal for trust and resource policies: "*", AWS (account id, account root,
    user, role or the role's sessions), Service;
  * conditions: String*, Arn*, Bool, Null, Numeric*, each with IfExists and the
    ForAnyValue:/ForAllValues: set operators. A key absent from the request fails the
    condition, as on AWS.

What it cannot evaluate fails closed: an Allow with an operator it does not know never
applies, a Deny with one always does; policy variables (`${aws:username}`) are compared as
literal text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"
    NONE = "None"  # no statement applies: an implicit deny


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an IAM user or role session (`arn`), or an AWS service."""

    arn: str | None = None
    service: str | None = None

    @property
    def account(self) -> str | None:
        return self.arn.split(":")[4] if self.arn else None

    @property
    def role_arn(self) -> str | None:
        """arn:aws:sts::A:assumed-role/NAME/SESSION -> arn:aws:iam::A:role/NAME (path unknown)."""
        if self.arn and ":assumed-role/" in self.arn:
            partition, account = self.arn.split(":")[1], self.account
            return f"arn:{partition}:iam::{account}:role/{self.arn.split('/')[1]}"
        return None


@dataclass(frozen=True)
class Decision:
    effect: Effect
    statement: str | None = None  # Sid (or index) of the statement that decided
    policy: str | None = None  # name of the policy it is in

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


@dataclass(frozen=True)
class Policy:
    name: str
    document: Mapping[str, Any]

    @classmethod
    def parse(cls, name: str, document: str | Mapping[str, Any]) -> Policy:
        return cls(name, json.loads(document) if isinstance(document, str) else document)

    @property
    def statements(self) -> list[Mapping[str, Any]]:
        statements = self.document.get("Statement", [])
        return statements if isinstance(statements, list) else [statements]


@dataclass
class Request:
    action: str
    resource: str
    principal: Principal
    context: dict[str, Any] = field(default_factory=dict)


def evaluate(policies: Iterable[Policy], request: Request, *, resource_policy: bool = False) -> Decision:
    """Combine every statement of `policies` for `request`. With `resource_policy` (trust and
    resource policies) a statement applies only to the principals it names."""
    allowed: Decision | None = None
    for policy in policies:
        for index, statement in enumerate(policy.statements):
            effect = _statement_effect(statement, request, resource_policy=resource_policy)
            if effect is Effect.NONE:
                continue
            decision = Decision(effect, str(statement.get("Sid") or index), policy.name)
            if effect is Effect.DENY:
                return decision
            allowed = allowed or decision
    return allowed or Decision(Effect.NONE)


def matched_resource(policies: Iterable[Policy], decision: Decision, resource: str) -> str:
    """The Resource pattern of the deciding statement that `resource` matched (for the record of
    what each statement is used for); the resource itself if there is none."""
    for policy in policies:
        if policy.name != decision.policy:
            continue
        for index, statement in enumerate(policy.statements):
            if str(statement.get("Sid") or index) == decision.statement:
                for pattern in _as_list(statement.get("Resource")):
                    if _wildcard(pattern, ignore_case=False).match(resource):
                        return pattern
    return resource


def names_principal_explicitly(policies: Iterable[Policy], request: Request) -> bool:
    """True when an Allow names the caller itself (not its account): on AWS such a resource
    or trust policy grants access without any identity policy, within one account."""
    for policy in policies:
        for statement in policy.statements:
            if statement.get("Effect") != "Allow" or "Principal" not in statement:
                continue
            if _statement_effect(statement, request, resource_policy=True) is not Effect.ALLOW:
                continue
            named = statement["Principal"]
            aws = _as_list(named.get("AWS")) if isinstance(named, dict) else []
            names = {request.principal.arn, request.principal.role_arn} - {None}
            if names & set(aws):
                return True
    return False


# ---------------------------------------------------------------- statements
def _statement_effect(statement: Mapping[str, Any], request: Request, *, resource_policy: bool) -> Effect:
    effect = Effect.DENY if statement.get("Effect") == "Deny" else Effect.ALLOW
    if "NotAction" in statement:
        if _any_action(statement["NotAction"], request.action):
            return Effect.NONE
    elif not _any_action(statement.get("Action", []), request.action):
        return Effect.NONE
    # A trust policy has no Resource: it is about the role it is attached to.
    if "NotResource" in statement:
        if _any_resource(statement["NotResource"], request.resource):
            return Effect.NONE
    elif "Resource" in statement and not _any_resource(statement["Resource"], request.resource):
        return Effect.NONE
    if resource_policy or "Principal" in statement or "NotPrincipal" in statement:
        if "NotPrincipal" in statement:
            if _principal_matches(statement["NotPrincipal"], request.principal):
                return Effect.NONE
        elif not _principal_matches(statement.get("Principal"), request.principal):
            return Effect.NONE
    conditions = statement.get("Condition") or {}
    try:
        holds = all(_condition_holds(op, block, request.context) for op, block in conditions.items())
    except _Unsupported:
        return Effect.DENY if effect is Effect.DENY else Effect.NONE  # fail closed
    return effect if holds else Effect.NONE


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: * any run of characters (":" and "/" included), ? exactly one.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _any_action(patterns: Any, action: str) -> bool:
    return any(_wildcard(p, ignore_case=True).match(action) for p in _as_list(patterns))


def _any_resource(patterns: Any, resource: str) -> bool:
    return any(_wildcard(p, ignore_case=False).match(resource) for p in _as_list(patterns))


def _principal_matches(spec: Any, principal: Principal) -> bool:
    if spec is None:
        return False
    if spec == "*":
        return True
    if not isinstance(spec, dict):
        return False
    for kind, values in spec.items():
        for value in _as_list(values):
            if kind == "AWS" and _aws_principal_matches(value, principal):
                return True
            if kind == "Service" and principal.service and value == principal.service:
                return True
    return False


def _aws_principal_matches(value: str, principal: Principal) -> bool:
    if value == "*":
        return True
    if not principal.arn:
        return False
    account = principal.account
    # An account id or its root delegates to the account's own identity policies.
    if value in (account, f"arn:{principal.arn.split(':')[1]}:iam::{account}:root"):
        return True
    if value == principal.arn:
        return True
    # A role ARN in a policy covers every session of that role.
    role = principal.role_arn
    return (
        bool(role)
        and value.startswith(f"arn:{role.split(':')[1]}:iam::{account}:role/")
        and (value.rsplit("/", 1)[-1] == role.rsplit("/", 1)[-1])
    )


# ---------------------------------------------------------------- conditions
class _Unsupported(Exception):
    pass


def _condition_holds(operator: str, block: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    set_op = None
    if ":" in operator:
        set_op, operator = operator.split(":", 1)
        if set_op not in ("ForAnyValue", "ForAllValues"):
            raise _Unsupported(set_op)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    if base != "Null" and base.replace("Not", "", 1) not in _OPERATORS:
        raise _Unsupported(operator)
    for key, expected in block.items():
        actual = _context_value(context, key)
        if base == "Null":
            wanted = str(_as_list(expected)[0]).lower() == "true"
            if (actual is None) != wanted:
                return False
            continue
        if actual is None:
            # A missing key fails a condition, except ...IfExists, ForAllValues and the negated
            # operators (StringNotEquals on an absent key holds, as on AWS).
            if if_exists or set_op == "ForAllValues" or "Not" in base:
                continue
            return False
        values = [str(v) for v in _as_list(actual)]
        patterns = [str(v) for v in _as_list(expected)]
        hits = [_compare(base, value, patterns) for value in values]
        # ForAllValues: every value must match; ForAnyValue and single-valued keys: one.
        if not (all(hits) if set_op == "ForAllValues" else any(hits)):
            return False
    return True


def _context_value(context: Mapping[str, Any], key: str) -> Any:
    for name, value in context.items():  # condition keys are case-insensitive
        if name.lower() == key.lower():
            return value
    return None


_OPERATORS = {
    "StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "Bool",
    "NumericEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals",
}  # fmt: skip


def _compare(operator: str, value: str, patterns: Sequence[str]) -> bool:
    negated = "Not" in operator
    base = operator.replace("Not", "", 1) if negated else operator
    if base in ("StringEquals", "ArnEquals"):
        hit = value in patterns
    elif base == "StringEqualsIgnoreCase":
        hit = value.lower() in {p.lower() for p in patterns}
    elif base in ("StringLike", "ArnLike"):
        hit = any(_wildcard(p, ignore_case=False).match(value) for p in patterns)
    elif base == "Bool":
        hit = value.lower() in {p.lower() for p in patterns}
    elif base in (
        "NumericEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
    ):
        hit = any(_numeric(base, float(value), float(p)) for p in patterns)
    else:
        raise _Unsupported(operator)
    return not hit if negated else hit


def _numeric(operator: str, value: float, bound: float) -> bool:
    return {
        "NumericEquals": value == bound,
        "NumericLessThan": value < bound,
        "NumericLessThanEquals": value <= bound,
        "NumericGreaterThan": value > bound,
        "NumericGreaterThanEquals": value >= bound,
    }[operator]
