"""The emulator's IAM policy evaluator (local/iam/policy.py): AWS's rules, without AWS."""

from __future__ import annotations

import pytest

from local.iam.policy import Effect, Policy, Principal, Request, evaluate, names_principal_explicitly

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:us-east-2:{ACCOUNT}:table/pipeline-jobs-e2e"
ROLE_SESSION = Principal(arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/pipeline-load-e2e-role/pipeline-load-e2e")


def policy(*statements: dict) -> Policy:
    return Policy("test", {"Version": "2012-10-17", "Statement": list(statements)})


def decide(p: Policy, action: str, resource: str = "*", principal: Principal = ROLE_SESSION, **context) -> Effect:
    return evaluate([p], Request(action, resource, principal, context)).effect


def test_allow_deny_and_implicit_deny() -> None:
    p = policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/curated/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/curated/secret/*"},
    )
    assert decide(p, "s3:GetObject", "arn:aws:s3:::data/curated/a.parquet") is Effect.ALLOW
    assert decide(p, "s3:GetObject", "arn:aws:s3:::data/curated/secret/x") is Effect.DENY
    assert decide(p, "s3:GetObject", "arn:aws:s3:::data/staging/a.csv") is Effect.NONE
    assert decide(p, "s3:PutObject", "arn:aws:s3:::data/curated/a.parquet") is Effect.NONE


def test_actions_match_case_insensitively_resources_do_not() -> None:
    p = policy({"Effect": "Allow", "Action": ["DynamoDB:getitem"], "Resource": TABLE})
    assert decide(p, "dynamodb:GetItem", TABLE) is Effect.ALLOW
    assert decide(p, "dynamodb:GetItem", TABLE.upper()) is Effect.NONE


def test_wildcards_are_iam_wildcards_not_regular_expressions() -> None:
    p = policy({"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::data.v?/raw/*"})
    assert decide(p, "s3:GetObject", "arn:aws:s3:::data.v1/raw/x/y") is Effect.ALLOW
    # "." is a dot, not any character; "?" is exactly one character.
    assert decide(p, "s3:GetObject", "arn:aws:s3:::dataXv1/raw/x") is Effect.NONE
    assert decide(p, "s3:GetObject", "arn:aws:s3:::data.v12/raw/x") is Effect.NONE
    assert decide(p, "s3:ListBucket", "arn:aws:s3:::data.v1/raw/x") is Effect.NONE


def test_not_action_and_not_resource() -> None:
    p = policy(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::data/*"},
    )
    assert decide(p, "sqs:SendMessage", "arn:aws:sqs:us-east-2:1:q") is Effect.ALLOW
    assert decide(p, "iam:PutRolePolicy", "arn:aws:iam::1:role/r") is Effect.NONE
    assert decide(p, "s3:GetObject", "arn:aws:s3:::other/k") is Effect.DENY
    assert decide(p, "s3:GetObject", "arn:aws:s3:::data/k") is Effect.ALLOW


def test_an_allow_whose_condition_fails_is_no_deny() -> None:
    # moto turns this into an explicit Deny, which would override another statement's Allow.
    p = policy(
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": TABLE,
            "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
        },
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE},
    )
    assert decide(p, "dynamodb:GetItem", TABLE, **{"aws:RequestedRegion": "us-east-2"}) is Effect.ALLOW


@pytest.mark.parametrize(
    ("condition", "context", "applies"),
    [
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"}, True),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {}, False),  # absent key: no match
        ({"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}}, {}, True),  # negated: holds
        ({"StringEqualsIfExists": {"aws:SourceAccount": "1"}}, {}, True),
        (
            {"StringLike": {"aws:SourceArn": "arn:aws:lambda:*:function:pipeline-*"}},
            {"aws:SourceArn": "arn:aws:lambda:us-east-2:1:function:pipeline-load-e2e"},
            True,
        ),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:states:*"}}, {"aws:SourceArn": "arn:aws:lambda:x"}, False),
        ({"Null": {"aws:SourceArn": "true"}}, {}, True),
        ({"NumericLessThan": {"aws:EpochTime": "100"}}, {"aws:EpochTime": "99"}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["a"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["c"]}}, {"aws:TagKeys": ["a", "b"]}, False),
    ],
)
def test_conditions(condition: dict, context: dict, applies: bool) -> None:
    p = policy({"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": condition})
    assert (decide(p, "s3:GetObject", "arn:aws:s3:::b/k", **context) is Effect.DENY) is applies


def test_an_operator_it_cannot_evaluate_fails_closed() -> None:
    unknown = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    allow = policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": unknown})
    deny = policy({"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": unknown})
    assert decide(allow, "s3:GetObject", "arn:aws:s3:::b/k") is Effect.NONE
    assert decide(deny, "s3:GetObject", "arn:aws:s3:::b/k") is Effect.DENY


def trust(principal: dict, **conditions: dict) -> Policy:
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}
    if conditions:
        statement["Condition"] = conditions
    return policy(statement)


def assume(p: Policy, principal: Principal, **context: str) -> Effect:
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    return evaluate([p], Request("sts:AssumeRole", role, principal, context), resource_policy=True).effect


def test_trust_policy_of_a_service_role() -> None:
    lambda_only = trust({"Service": "lambda.amazonaws.com"}, StringEquals={"aws:SourceAccount": ACCOUNT})
    lambda_service = Principal(service="lambda.amazonaws.com")
    assert assume(lambda_only, lambda_service, **{"aws:SourceAccount": ACCOUNT}) is Effect.ALLOW
    assert assume(lambda_only, lambda_service, **{"aws:SourceAccount": "999999999999"}) is Effect.NONE
    assert assume(lambda_only, Principal(service="states.amazonaws.com"), **{"aws:SourceAccount": ACCOUNT}) is (
        Effect.NONE
    )
    # A person with the account's keys is not the Lambda service.
    assert assume(lambda_only, Principal(arn=f"arn:aws:iam::{ACCOUNT}:user/admin")) is Effect.NONE


def test_trust_policy_naming_the_account_a_role_or_a_user() -> None:
    user = Principal(arn=f"arn:aws:iam::{ACCOUNT}:user/admin")
    session = Principal(arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/alice")
    by_account = trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    assert assume(by_account, user) is assume(by_account, session) is Effect.ALLOW
    assert assume(by_account, Principal(arn="arn:aws:iam::999999999999:user/admin")) is Effect.NONE
    by_role = trust({"AWS": [f"arn:aws:iam::{ACCOUNT}:role/ops"]})
    assert assume(by_role, session) is Effect.ALLOW and assume(by_role, user) is Effect.NONE
    request = Request("sts:AssumeRole", "arn:aws:iam::1:role/r", session, {})
    assert names_principal_explicitly([by_role], request)
    assert not names_principal_explicitly([by_account], request)
