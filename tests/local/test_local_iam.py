"""IAM enforcement in the emulator (local/iam): who calls, what is checked, how a denial looks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from local_emu_helpers import ACCOUNT, REGION, REPO, free_port, make_zip

from local.iam import ACCESS_DENIED_CODES

pytestmark = pytest.mark.slow

WHOAMI = """
import os, boto3
from botocore.exceptions import ClientError

def handler(event, context):
    outcome = {}
    for table in ("iam-jobs", "iam-other"):
        try:
            boto3.client("dynamodb").get_item(TableName=table, Key={"k": {"S": "1"}})
            outcome[table] = "allowed"
        except ClientError as error:
            outcome[table] = error.response["Error"]["Code"]
    return {"arn": boto3.client("sts").get_caller_identity()["Arn"],
            "key": os.environ["AWS_ACCESS_KEY_ID"], "outcome": outcome}
"""


def _trust(*services: str, account: str = ACCOUNT) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Service": list(services)},
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        }
    )


def _allow(*statements: tuple[list[str], list[str]]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": a, "Resource": r} for a, r in statements],
        }
    )


def assume(emulator, role_arn: str, service: str = "lambda.amazonaws.com") -> dict:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{emulator.url}/_pipeline/iam/assume-role",
        data=json.dumps({"roleArn": role_arn, "service": service}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


def as_session(emulator, credentials: dict, service: str, **config):
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def denied(call) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] in ACCESS_DENIED_CODES, caught.value.response["Error"]
    return caught.value


@pytest.fixture(scope="module")
def world(emulator):
    """Two buckets (one behind a key whose policy does not delegate to IAM), two tables, an
    encrypted topic, and roles with narrow policies."""
    iam, kms, s3 = emulator.client("iam"), emulator.client("kms"), emulator.client("s3")
    key = kms.create_key(Description="delegates to IAM")["KeyMetadata"]["Arn"]
    deployer = f"arn:aws:iam::{ACCOUNT}:user/local-deployer"
    own_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": deployer}, "Action": "kms:*", "Resource": "*"}],
    }
    locked_key = kms.create_key(Policy=json.dumps(own_policy))["KeyMetadata"]["Arn"]
    for bucket, bucket_key in (("iam-data", key), ("iam-locked", locked_key)):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": bucket_key}
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": default}]},
        )
        for name in ("in/a.txt", "out/a.txt"):
            s3.put_object(Bucket=bucket, Key=name, Body=b"a")
    dynamodb = emulator.client("dynamodb")
    for table in ("iam-jobs", "iam-other"):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    topic = emulator.client("sns").create_topic(Name="iam-alerts", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/iam-jobs"
    roles = {}
    for name, trust, policy in [
        (
            "iam-fn-role",
            _trust("lambda.amazonaws.com"),
            _allow(
                (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], [table]),
                (["s3:GetObject"], ["arn:aws:s3:::iam-data/in/*", "arn:aws:s3:::iam-locked/in/*"]),
                (["s3:PutObject"], ["arn:aws:s3:::iam-data/out/*"]),
                (["kms:Decrypt", "kms:GenerateDataKey"], [key, locked_key]),
                (["sns:Publish"], [topic]),
            ),
        ),
        (
            "iam-nokms-role",
            _trust("lambda.amazonaws.com"),
            _allow(
                (["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::iam-data/*"]),
                (["sns:Publish"], [topic]),
            ),
        ),
        ("iam-bare-role", _trust("lambda.amazonaws.com"), None),
        ("iam-foreign-role", _trust("lambda.amazonaws.com", account="999999999999"), None),
        (
            "iam-sfn-role",
            _trust("states.amazonaws.com"),
            _allow((["lambda:InvokeFunction"], [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:iam-whoami"])),
        ),
    ]:
        roles[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        if policy:
            iam.put_role_policy(RoleName=name, PolicyName="least-privilege", PolicyDocument=policy)
    lam = emulator.client("lambda")
    code = make_zip({"whoami.py": WHOAMI})
    for function, role in (
        ("iam-whoami", "iam-fn-role"),
        ("iam-unreached", "iam-fn-role"),
        ("iam-state-machine-role", "iam-sfn-role"),
    ):
        lam.create_function(
            FunctionName=function,
            Runtime="python3.11",
            Role=roles[role],
            Handler="whoami.handler",
            Code={"ZipFile": code},
            Timeout=30,
        )
    return {"key": key, "locked_key": locked_key, "topic": topic, "roles": roles}


def test_enforcement_is_on(emulator) -> None:
    with urllib.request.urlopen(f"{emulator.url}/_pipeline/iam", timeout=5) as response:  # noqa: S310
        status = json.load(response)
    assert status == {"enforced": True, "deployer": f"arn:aws:iam::{ACCOUNT}:user/local-deployer"}


@pytest.mark.parametrize(
    ("service", "call", "status", "code"),
    [
        ("dynamodb", lambda c: c.list_tables(), 400, "AccessDeniedException"),
        ("stepfunctions", lambda c: c.list_state_machines(), 400, "AccessDeniedException"),
        ("ssm", lambda c: c.get_parameter(Name="/pipeline/e2e/bucket-name"), 400, "AccessDeniedException"),
        ("kms", lambda c: c.list_keys(), 400, "AccessDeniedException"),
        ("lambda", lambda c: c.list_functions(), 403, "AccessDeniedException"),
        ("sns", lambda c: c.list_topics(), 403, "AuthorizationError"),
        ("sqs", lambda c: c.list_queues(), 403, "AccessDenied"),
        ("iam", lambda c: c.list_roles(), 403, "AccessDenied"),
        ("s3", lambda c: c.list_buckets(), 403, "AccessDenied"),
        ("ec2", lambda c: c.describe_vpcs(), 403, "UnauthorizedOperation"),
    ],
)
def test_a_denial_has_its_services_shape(emulator, world, service, call, status, code) -> None:
    client = as_session(emulator, assume(emulator, world["roles"]["iam-bare-role"]), service)
    error = denied(lambda: call(client))
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.response["Error"]["Code"] == code
    assert "assumed-role/iam-bare-role/" in error.response["Error"]["Message"]
    assert "is not authorized to perform" in error.response["Error"]["Message"]


def test_unknown_keys_and_bad_signatures_are_refused(emulator) -> None:
    def client(service: str, key: str, secret: str):
        return boto3.client(
            service,
            endpoint_url=emulator.url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}),
        )

    for service, key, secret, call, code in [
        ("dynamodb", "AKIANOTAKEY000000000", "x", lambda c: c.list_tables(), "UnrecognizedClientException"),
        ("dynamodb", "test", "wrong", lambda c: c.list_tables(), "InvalidSignatureException"),
        ("sns", "AKIANOTAKEY000000000", "x", lambda c: c.list_topics(), "InvalidClientTokenId"),
        ("s3", "AKIANOTAKEY000000000", "x", lambda c: c.list_buckets(), "InvalidAccessKeyId"),
    ]:
        with pytest.raises(ClientError) as caught:
            call(client(service, key, secret))
        assert caught.value.response["Error"]["Code"] == code


def test_dynamodb_statements_are_scoped_to_their_table(emulator, world) -> None:
    ddb = as_session(emulator, assume(emulator, world["roles"]["iam-fn-role"]), "dynamodb")
    ddb.put_item(TableName="iam-jobs", Item={"k": {"S": "1"}})
    assert ddb.get_item(TableName="iam-jobs", Key={"k": {"S": "1"}})["Item"] == {"k": {"S": "1"}}
    message = denied(lambda: ddb.get_item(TableName="iam-other", Key={"k": {"S": "1"}})).response["Error"]["Message"]
    assert f"dynamodb:GetItem on resource: arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/iam-other" in message
    denied(lambda: ddb.delete_item(TableName="iam-jobs", Key={"k": {"S": "1"}}))
    denied(lambda: ddb.scan(TableName="iam-jobs"))
    # Batch and transaction calls need the permission on every table and for every item.
    denied(
        lambda: ddb.batch_get_item(RequestItems={t: {"Keys": [{"k": {"S": "1"}}]} for t in ("iam-jobs", "iam-other")})
    )
    put = {"Put": {"TableName": "iam-jobs", "Item": {"k": {"S": "2"}}}}
    delete = {"Delete": {"TableName": "iam-jobs", "Key": {"k": {"S": "1"}}}}
    denied(lambda: ddb.transact_write_items(TransactItems=[put, delete]))


def test_s3_objects_are_scoped_to_their_prefixes(emulator, world) -> None:
    s3 = as_session(emulator, assume(emulator, world["roles"]["iam-fn-role"]), "s3")
    assert s3.get_object(Bucket="iam-data", Key="in/a.txt")["Body"].read() == b"a"
    s3.put_object(Bucket="iam-data", Key="out/b.txt", Body=b"b", ChecksumAlgorithm="SHA256")
    denied(lambda: s3.get_object(Bucket="iam-data", Key="out/a.txt"))
    denied(lambda: s3.put_object(Bucket="iam-data", Key="in/b.txt", Body=b"b"))
    # An object's own content type says nothing of S3's protocol: still S3's XML AccessDenied.
    as_json = {"Key": "in/b.json", "Body": b"{}", "ContentType": "application/json"}
    error = denied(lambda: s3.put_object(Bucket="iam-data", **as_json))
    assert error.response["Error"]["Code"] == "AccessDenied"
    denied(lambda: s3.delete_object(Bucket="iam-data", Key="out/b.txt"))
    denied(lambda: s3.delete_objects(Bucket="iam-data", Delete={"Objects": [{"Key": "out/b.txt"}]}))
    denied(lambda: s3.list_objects_v2(Bucket="iam-data", Prefix="in/"))
    # A copy reads its source: out/ is not readable, in/ is.
    denied(lambda: s3.copy_object(Bucket="iam-data", Key="out/c.txt", CopySource="iam-data/out/a.txt"))
    s3.copy_object(Bucket="iam-data", Key="out/c.txt", CopySource="iam-data/in/a.txt")
    # A bucket of nobody's (here: none at all) is denied before it is looked up, as on AWS.
    denied(lambda: s3.get_object(Bucket="iam-nobodys-bucket", Key="in/a.txt"))


def test_sse_kms_needs_the_key_in_the_policy_and_the_key_policy(emulator, world) -> None:
    no_kms = as_session(emulator, assume(emulator, world["roles"]["iam-nokms-role"]), "s3")
    message = denied(lambda: no_kms.get_object(Bucket="iam-data", Key="in/a.txt")).response["Error"]["Message"]
    assert f'kms:Decrypt on resource: "{world["key"]}"' in message
    message = denied(lambda: no_kms.put_object(Bucket="iam-data", Key="out/d.txt", Body=b"d")).response["Error"]
    assert "kms:GenerateDataKey" in message["Message"]
    # The role may use the locked key, but that key's policy does not delegate to IAM.
    s3 = as_session(emulator, assume(emulator, world["roles"]["iam-fn-role"]), "s3")
    message = denied(lambda: s3.get_object(Bucket="iam-locked", Key="in/a.txt")).response["Error"]["Message"]
    assert "because no resource-based policy allows the kms:Decrypt action" in message


def test_kms_calls_are_checked_against_the_key_and_its_policy(emulator, world) -> None:
    kms = as_session(emulator, assume(emulator, world["roles"]["iam-fn-role"]), "kms")
    assert kms.generate_data_key(KeyId=world["key"], KeySpec="AES_256")["KeyId"] == world["key"]
    message = denied(lambda: kms.schedule_key_deletion(KeyId=world["key"])).response["Error"]["Message"]
    assert f"kms:ScheduleKeyDeletion on resource: {world['key']}" in message
    message = denied(lambda: kms.generate_data_key(KeyId=world["locked_key"], KeySpec="AES_256")).response["Error"]
    assert "because no resource-based policy allows the kms:GenerateDataKey action" in message["Message"]


def test_publishing_to_an_encrypted_topic_needs_its_key(emulator, world) -> None:
    as_session(emulator, assume(emulator, world["roles"]["iam-fn-role"]), "sns").publish(
        TopicArn=world["topic"], Message="m"
    )
    no_kms = as_session(emulator, assume(emulator, world["roles"]["iam-nokms-role"]), "sns")
    assert "kms:GenerateDataKey" in str(denied(lambda: no_kms.publish(TopicArn=world["topic"], Message="m")))


def test_trust_policies_decide_who_may_assume_a_role(emulator, world) -> None:
    roles = world["roles"]
    assert assume(emulator, roles["iam-fn-role"])["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/iam-fn-role/")
    for role, service in (("iam-fn-role", "states.amazonaws.com"), ("iam-foreign-role", "lambda.amazonaws.com")):
        with pytest.raises(urllib.error.HTTPError) as refused:
            assume(emulator, roles[role], service)
        assert refused.value.code == 403
    # The deployer may do anything, but it is not the Lambda service.
    sts = emulator.client("sts")
    denied(lambda: sts.assume_role(RoleArn=roles["iam-fn-role"], RoleSessionName="probe"))
    account_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
        ],
    }
    ops = emulator.client("iam").create_role(RoleName="iam-ops", AssumeRolePolicyDocument=json.dumps(account_trust))
    assert sts.assume_role(RoleArn=ops["Role"]["Arn"], RoleSessionName="probe")["AssumedRoleUser"]["Arn"].endswith(
        "assumed-role/iam-ops/probe"
    )
    # Trusting the account delegates to identity policies, which the bare role lacks.
    bare = as_session(emulator, assume(emulator, roles["iam-bare-role"]), "sts")
    denied(lambda: bare.assume_role(RoleArn=ops["Role"]["Arn"], RoleSessionName="probe"))


def test_a_function_runs_as_a_session_of_its_own_role(emulator, world) -> None:
    lam = emulator.client("lambda")
    first, second = (
        json.loads(lam.invoke(FunctionName="iam-whoami", Payload=b"{}")["Payload"].read()) for _ in range(2)
    )
    assert first["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/iam-fn-role/iam-whoami"
    assert first["outcome"] == {"iam-jobs": "allowed", "iam-other": "AccessDeniedException"}
    assert first["key"].startswith("ASIA") and second["key"] == first["key"]  # the session is reused


def test_a_function_whose_role_lambda_cannot_assume_is_not_run(emulator, world) -> None:
    with pytest.raises(ClientError) as caught:
        emulator.client("lambda").invoke(FunctionName="iam-state-machine-role", Payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "cannot be assumed by Lambda" in caught.value.response["Error"]["Message"]


def test_a_state_machine_calls_with_its_own_role(emulator, world) -> None:
    sfn = emulator.client("stepfunctions")

    def run(function: str) -> dict:
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
        definition = {
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": arn, "Payload": {}},
                    "End": True,
                }
            },
        }
        machine = sfn.create_state_machine(
            name=f"iam-{function}", definition=json.dumps(definition), roleArn=world["roles"]["iam-sfn-role"]
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        deadline = time.monotonic() + 60
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        return described

    assert run("iam-whoami")["status"] == "SUCCEEDED"
    refused = run("iam-unreached")
    assert refused["status"] == "FAILED"
    assert "AccessDeniedException" in refused.get("cause", "") + refused.get("error", "")
    with urllib.request.urlopen(f"{emulator.url}/_pipeline/iam/usage", timeout=5) as response:  # noqa: S310
        used = json.load(response)["iam-sfn-role"]
    assert used == {
        "least-privilege/0": [f"lambda:InvokeFunction arn:aws:lambda:{REGION}:{ACCOUNT}:function:iam-whoami"]
    }


def test_enforcement_can_be_switched_off(tmp_path) -> None:
    code = (
        "import json, urllib.request, boto3\n"
        "from local.emulator import start, wait_until_ready\n"
        f"h = start({free_port()}, {str(tmp_path)!r})\n"
        "wait_until_ready(h.url, 20)\n"
        "s = boto3.client('sqs', endpoint_url=h.url, region_name='us-east-1',"
        " aws_access_key_id='AKIAANYONE0000000000', aws_secret_access_key='x')\n"
        "s.create_queue(QueueName='q')\n"
        "print(json.load(urllib.request.urlopen(h.url + '/_pipeline/iam'))['enforced'])\n"
        "h.stop()\n"
    )
    env = {**os.environ, "PIPELINE_LOCAL_IAM": "0"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("False")
