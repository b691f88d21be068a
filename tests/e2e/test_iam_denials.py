"""Least privilege proven by denial: each deployed role, against the calls it must not make.

The emulator enforces IAM (local/iam). Every case here runs as a session of a deployed role,
assumed the way the service assumes it (the role's trust policy decides), against the shared
`e2e` deployment, which it does not change. The cases come from the declared access
(stacks.compute.ACCESS): a function may read exactly its `reads` prefixes and write exactly
its `writes` prefixes, each in the bucket lake/layout.py puts it in (the same prefix in the other
bucket is denied); everything else below is denied to every function.
A denial must be AccessDenied as the service names it, never just any error; the allowed
calls beside them prove a broken setup cannot pass as "denied".
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lake import layout
from local.iam import ACCESS_DENIED_CODES
from local.workspace import REGION, SUFFIX, Target
from pipeline_constructs.workflow import MAP_RUNS_PREFIX
from stacks import parameters
from stacks.compute import ACCESS
from tests.e2e.conftest import CAPACITY_GROUP

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(CAPACITY_GROUP), pytest.mark.usefixtures("deployed")]

OTHER = "iamother"  # an environment beside `e2e`, in the same account and region
PREFIXES = sorted({p for access in ACCESS.values() for p in (*access.reads, *access.writes)})
PROBE = "iam-probe"
BUCKETS = ("data", "work")


def holding(prefix: str) -> str:
    return "work" if prefix in layout.WORK else "data"


# ---------------------------------------------------------------- the deployment's facts
class Deployed:
    def __init__(self, target: Target) -> None:
        self.target = target
        pages = target.client("ssm").get_paginator("get_parameters_by_path")
        exported = [
            p for page in pages.paginate(Path=parameters.prefix(SUFFIX), Recursive=True) for p in page["Parameters"]
        ]
        self.exports = {p["Name"].removeprefix(parameters.prefix(SUFFIX) + "/"): p["Value"] for p in exported}
        self.bucket = self.exports[parameters.BUCKET_NAME]
        self.buckets = {"data": self.bucket, "work": self.exports[parameters.WORK_BUCKET_NAME]}
        self.table = self.exports[parameters.TABLE_NAME]
        self.topic = self.exports[parameters.ALERT_TOPIC_ARN]
        self.state_machine = self.exports[parameters.STATE_MACHINE_ARN]
        self.functions = {fn: self.exports[parameters.function_arn(fn)] for fn in ACCESS}
        lam = target.client("lambda")
        self.roles = {
            fn: lam.get_function_configuration(FunctionName=arn)["Role"] for fn, arn in self.functions.items()
        }
        self.workflow_role = target.client("stepfunctions").describe_state_machine(stateMachineArn=self.state_machine)[
            "roleArn"
        ]
        self._sessions: dict[tuple[str, str], dict[str, Any]] = {}

    def elsewhere(self, name: str) -> str:
        """The same resource's name in the other environment."""
        assert f"-{SUFFIX}" in name, name
        return name.replace(f"-{SUFFIX}", f"-{OTHER}")

    def session(self, role_arn: str, service: str, source_arn: str | None = None) -> dict[str, Any]:
        """Credentials of `role_arn` as AWS service `service` gets them (trust policy evaluated)."""
        if (role_arn, service) not in self._sessions:
            request = urllib.request.Request(  # noqa: S310 - the emulator on loopback
                f"{self.target.emulator.url}/_pipeline/iam/assume-role",
                data=json.dumps({"roleArn": role_arn, "service": service, "sourceArn": source_arn}).encode(),
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                self._sessions[role_arn, service] = json.load(response)
        return self._sessions[role_arn, service]

    def as_function(self, function: str, service: str) -> Any:
        credentials = self.session(self.roles[function], "lambda.amazonaws.com", self.functions[function])
        return self._client(credentials, service)

    def as_workflow(self, service: str) -> Any:
        return self._client(self.session(self.workflow_role, "states.amazonaws.com"), service)

    def _client(self, credentials: dict[str, Any], service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.target.emulator.url,
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            config=Config(retries={"total_max_attempts": 1}),
        )


@pytest.fixture(scope="module")
def deployment(deployed: Target) -> Any:
    facts = Deployed(deployed)
    s3 = deployed.client("s3")
    probes = [f"{prefix}/{PROBE}/object.txt" for prefix in PREFIXES]
    for bucket in facts.buckets.values():  # what each function may (or may not) read; written by the deployer
        for key in probes:
            s3.put_object(Bucket=bucket, Key=key, Body=b"probe")
    yield facts
    # Every version of every probe, for good: a delete marker would be left in the versioned
    # bucket instead (and moto's force-destroy of the bucket fails on delete markers).
    for bucket in facts.buckets.values():
        for prefix in (*PREFIXES, MAP_RUNS_PREFIX):
            listed = s3.list_object_versions(Bucket=bucket, Prefix=f"{prefix}/{PROBE}/")
            for version in (*listed.get("Versions", []), *listed.get("DeleteMarkers", [])):
                s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])


def denied(call: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] in ACCESS_DENIED_CODES, f"expected a denial, got {error}"
    assert "is not authorized to perform" in error["Message"], error


def test_the_emulator_enforces_iam(target: Target) -> None:
    with urllib.request.urlopen(f"{target.emulator.url}/_pipeline/iam", timeout=5) as response:  # noqa: S310
        assert json.load(response)["enforced"] is True


# ---------------------------------------------------------------- the functions' data access
def _prefix_cases(kind: str) -> list[Any]:
    cases = []
    for function, access in ACCESS.items():
        granted = access.reads if kind == "read" else access.writes
        for prefix in PREFIXES:
            for bucket in BUCKETS:
                allowed = prefix in granted and holding(prefix) == bucket
                verdict = "allowed" if allowed else "denied"
                cases.append(
                    pytest.param(function, prefix, bucket, allowed, id=f"{function}-{kind}-{bucket}-{prefix}-{verdict}")
                )
    return cases


@pytest.mark.parametrize(("function", "prefix", "bucket", "allowed"), _prefix_cases("read"))
def test_a_function_reads_only_its_prefixes(
    deployment: Deployed, function: str, prefix: str, bucket: str, allowed: bool
) -> None:
    s3 = deployment.as_function(function, "s3")
    name = deployment.buckets[bucket]
    read = lambda: s3.get_object(Bucket=name, Key=f"{prefix}/{PROBE}/object.txt")["Body"].read()  # noqa: E731
    if allowed:  # also proves kms:Decrypt on the data key (SSE-KMS)
        assert read() == b"probe"
    else:
        denied(read)


@pytest.mark.parametrize(("function", "prefix", "bucket", "allowed"), _prefix_cases("write"))
def test_a_function_writes_only_its_prefixes(
    deployment: Deployed, function: str, prefix: str, bucket: str, allowed: bool
) -> None:
    s3 = deployment.as_function(function, "s3")
    key, name = f"{prefix}/{PROBE}/{function}.txt", deployment.buckets[bucket]
    write = lambda: s3.put_object(Bucket=name, Key=key, Body=b"x", ChecksumAlgorithm="SHA256")  # noqa: E731
    if allowed:  # also proves kms:GenerateDataKey on the data key (SSE-KMS)
        write()
    else:
        denied(write)


@pytest.mark.parametrize("function", sorted(ACCESS))
def test_no_function_deletes_lists_or_reads_versions(deployment: Deployed, function: str) -> None:
    s3 = deployment.as_function(function, "s3")
    for bucket in deployment.buckets.values():
        for prefix in PREFIXES:
            denied(lambda b=bucket, p=prefix: s3.delete_object(Bucket=b, Key=f"{p}/{PROBE}/object.txt"))
        denied(lambda b=bucket: s3.list_objects_v2(Bucket=b))
        denied(lambda b=bucket: s3.list_object_versions(Bucket=b))
        denied(lambda b=bucket: s3.get_bucket_policy(Bucket=b))
        denied(lambda b=bucket: s3.put_bucket_policy(Bucket=b, Policy="{}"))


@pytest.mark.parametrize("function", sorted(ACCESS))
def test_a_function_lists_only_where_it_looks_for_its_own_results(deployment: Deployed, function: str) -> None:
    s3 = deployment.as_function(function, "s3")
    for bucket, name in deployment.buckets.items():
        for prefix in PREFIXES:
            listing = lambda n=name, p=prefix: s3.list_objects_v2(Bucket=n, Prefix=f"{p}/{PROBE}/")  # noqa: E731
            if prefix in ACCESS[function].lists and holding(prefix) == bucket:
                listing()
            else:
                denied(listing)


ABSENT_JOB = {"jobId": {"S": f"{PROBE}-absent"}}
EXISTS = {"ConditionExpression": "attribute_exists(jobId)"}  # fails on the absent job: nothing is written
TABLE_CALLS: dict[str, Callable[[Any, str], Any]] = {
    "GetItem": lambda ddb, table: ddb.get_item(TableName=table, Key=ABSENT_JOB),
    "PutItem": lambda ddb, table: ddb.put_item(TableName=table, Item=ABSENT_JOB, **EXISTS),
    "UpdateItem": lambda ddb, table: ddb.update_item(
        TableName=table,
        Key=ABSENT_JOB,
        UpdateExpression="SET probe = :p",
        ExpressionAttributeValues={":p": {"S": PROBE}},
        **EXISTS,
    ),
    "DeleteItem": lambda ddb, table: ddb.delete_item(TableName=table, Key=ABSENT_JOB, **EXISTS),
    "Scan": lambda ddb, table: ddb.scan(TableName=table, Limit=1),
    "Query": lambda ddb, table: ddb.query(
        TableName=table, KeyConditionExpression="jobId = :j", ExpressionAttributeValues={":j": ABSENT_JOB["jobId"]}
    ),
    "BatchWriteItem": lambda ddb, table: ddb.batch_write_item(
        RequestItems={table: [{"DeleteRequest": {"Key": ABSENT_JOB}}]}
    ),
    "DeleteTable": lambda ddb, table: ddb.delete_table(TableName=table),
}


def _table_cases() -> list[Any]:
    return [
        pytest.param(
            function,
            action,
            action in access.table,
            id=f"{function}-{action}-{'allowed' if action in access.table else 'denied'}",
        )
        for function, access in ACCESS.items()
        for action in TABLE_CALLS
    ]


@pytest.mark.parametrize(("function", "action", "allowed"), _table_cases())
def test_a_function_takes_only_its_job_table_actions(
    deployment: Deployed, function: str, action: str, allowed: bool
) -> None:
    ddb = deployment.as_function(function, "dynamodb")
    call = TABLE_CALLS[action]
    if allowed:  # authorized, then refused by its condition: the table is left as it was
        try:
            call(ddb, deployment.table)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException", error.response["Error"]
    else:
        denied(lambda: call(ddb, deployment.table))
    denied(lambda: call(ddb, deployment.elsewhere(deployment.table)))  # another environment's table: never


@pytest.mark.parametrize("function", sorted(ACCESS))
def test_a_function_cannot_touch_another_environments_bucket(deployment: Deployed, function: str) -> None:
    s3 = deployment.as_function(function, "s3")
    for other in map(deployment.elsewhere, deployment.buckets.values()):
        for prefix in PREFIXES:
            denied(lambda o=other, p=prefix: s3.get_object(Bucket=o, Key=f"{p}/{PROBE}/object.txt"))
            denied(lambda o=other, p=prefix: s3.put_object(Bucket=o, Key=f"{p}/{PROBE}/x.txt", Body=b"x"))


@pytest.mark.parametrize("function", sorted(ACCESS))
def test_a_function_talks_to_s3_and_dynamodb_only(deployment: Deployed, function: str) -> None:
    """The design rule (README): no Parameter Store, no other function, no state machine, no
    topic at run time; and no way to widen its own permissions."""
    ssm = deployment.as_function(function, "ssm")
    denied(lambda: ssm.get_parameter(Name=parameters.name(SUFFIX, parameters.BUCKET_NAME)))
    denied(lambda: ssm.get_parameters_by_path(Path=parameters.prefix(SUFFIX), Recursive=True))
    lam = deployment.as_function(function, "lambda")
    for arn in deployment.functions.values():
        denied(lambda a=arn: lam.invoke(FunctionName=a, Payload=b"{}"))
    sfn = deployment.as_function(function, "stepfunctions")
    denied(lambda: sfn.start_execution(stateMachineArn=deployment.state_machine, input="{}"))
    denied(lambda: deployment.as_function(function, "sns").publish(TopicArn=deployment.topic, Message="x"))
    iam = deployment.as_function(function, "iam")
    role_name = deployment.roles[function].rsplit("/", 1)[-1]
    denied(lambda: iam.put_role_policy(RoleName=role_name, PolicyName="more", PolicyDocument="{}"))
    denied(lambda: iam.attach_role_policy(RoleName=role_name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"))
    sts = deployment.as_function(function, "sts")
    for other, role in deployment.roles.items():
        if other != function:
            denied(lambda r=role: sts.assume_role(RoleArn=r, RoleSessionName=PROBE))
    kms = deployment.as_function(function, "kms")
    key = deployment.exports[parameters.KMS_KEY_ARN]
    denied(lambda: kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7))
    denied(lambda: kms.put_key_policy(KeyId=key, PolicyName="default", Policy="{}"))


# ---------------------------------------------------------------- the state machine's role
def test_the_state_machine_invokes_only_its_own_environments_functions(deployment: Deployed) -> None:
    lam = deployment.as_workflow("lambda")
    # Allowed: the invocation runs (ingest refuses an empty input: a function error, not a denial).
    assert lam.invoke(FunctionName=deployment.functions["ingest"], Payload=b"{}")["FunctionError"] == "Unhandled"
    for arn in deployment.functions.values():
        denied(lambda a=arn: lam.invoke(FunctionName=deployment.elsewhere(a), Payload=b"{}"))
    denied(lambda: deployment.as_workflow("sns").publish(TopicArn=deployment.elsewhere(deployment.topic), Message="x"))
    ddb = deployment.as_workflow("dynamodb")
    denied(lambda: ddb.get_item(TableName=deployment.elsewhere(deployment.table), Key={"jobId": {"S": PROBE}}))
    s3 = deployment.as_workflow("s3")
    denied(lambda: s3.get_object(Bucket=deployment.elsewhere(deployment.bucket), Key=f"incoming/{PROBE}/x"))
    # The maps read their items from staging/ and write their results under map-runs/ of the work
    # bucket, nothing else: not the record, not the same prefixes in the data bucket.
    work = deployment.buckets["work"]
    denied(lambda: s3.get_object(Bucket=deployment.bucket, Key=f"incoming/{PROBE}/object.txt"))
    denied(lambda: s3.put_object(Bucket=work, Key=f"staging/{PROBE}/x.txt", Body=b"x"))
    assert s3.get_object(Bucket=work, Key=f"staging/{PROBE}/object.txt")["Body"].read() == b"probe"
    denied(lambda: s3.get_object(Bucket=deployment.bucket, Key=f"staging/{PROBE}/object.txt"))
    results = f"{MAP_RUNS_PREFIX}/{PROBE}/x.txt"
    s3.put_object(Bucket=work, Key=results, Body=b"x", ChecksumAlgorithm="SHA256")
    denied(lambda: s3.put_object(Bucket=deployment.bucket, Key=results, Body=b"x", ChecksumAlgorithm="SHA256"))
    sfn = deployment.as_workflow("stepfunctions")  # it starts its own executions, no other machine's
    other_machine = deployment.elsewhere(deployment.state_machine)
    denied(lambda: sfn.start_execution(stateMachineArn=other_machine, input="{}"))
    iam = deployment.as_workflow("iam")
    role_name = deployment.workflow_role.rsplit("/", 1)[-1]
    denied(lambda: iam.put_role_policy(RoleName=role_name, PolicyName="more", PolicyDocument="{}"))


def test_the_event_rules_role_starts_only_this_state_machine(deployment: Deployed) -> None:
    """The role the upload and drain rules start the workflow with (the emulator delivers their
    events with it: a start it may not make goes to the dead-letter queue, as on AWS)."""
    events = deployment.target.client("events")
    (target,) = events.list_targets_by_rule(Rule=f"pipeline-uploads-{SUFFIX}")["Targets"]
    assert target["Arn"] == deployment.state_machine
    credentials = deployment.session(target["RoleArn"], "events.amazonaws.com")
    sfn = deployment._client(credentials, "stepfunctions")
    denied(lambda: sfn.start_execution(stateMachineArn=deployment.elsewhere(deployment.state_machine), input="{}"))
    execution = deployment.state_machine.replace(":stateMachine:", ":execution:") + ":x"
    denied(lambda: sfn.stop_execution(executionArn=execution))
    s3 = deployment._client(credentials, "s3")
    denied(lambda: s3.get_object(Bucket=deployment.bucket, Key=f"incoming/{PROBE}/object.txt"))


# ---------------------------------------------------------------- who may assume the roles
def test_only_the_service_may_assume_a_role(deployment: Deployed) -> None:
    """The deployer may do anything in the account, but a function's role trusts Lambda alone."""
    sts = deployment.target.client("sts")
    for role in (*deployment.roles.values(), deployment.workflow_role):
        denied(lambda r=role: sts.assume_role(RoleArn=r, RoleSessionName=PROBE))
    with pytest.raises(urllib.error.HTTPError) as refused:  # Lambda may not assume the workflow's role
        deployment.session(deployment.workflow_role, "lambda.amazonaws.com")
    assert refused.value.code == 403
