"""The local emulator: Lambda runner, added/patched AWS actions, Step Functions execution."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError
from local_emu_helpers import ACCOUNT, REGION, REPO, free_port, make_zip

pytestmark = pytest.mark.slow

ROLE = f"arn:aws:iam::{ACCOUNT}:role/test-role"

APP = """
import os, time
import greeting_lib

class TransientError(Exception):
    pass

class PermanentError(Exception):
    pass

def echo(event, context):
    print("echo called")  # goes to the function log
    return {"event": event, "greeting": greeting_lib.greet(os.environ["WHO"]),
            "region": os.environ["AWS_REGION"], "function": context.function_name}

def boom(event, context):
    raise ValueError("bad input")

def slow(event, context):
    time.sleep(10)

def list_queues(event, context):
    import boto3  # from the runtime-provided dir; talks to the emulator via AWS_ENDPOINT_URL
    return boto3.client("sqs").list_queues().get("QueueUrls", [])

def record_s3_key(event, context):
    print("S3 KEY", event["Records"][0]["s3"]["object"]["key"])

def process(event, context):
    if event.get("fail"):
        raise PermanentError("cannot process " + event["id"])
    return {"processed": event["id"]}
"""
NEEDS_MOTO = "import moto  # in the emulator's venv, not in the zip\n\ndef handler(event, context):\n    return 1\n"
LAYER = {"python/greeting_lib.py": "def greet(name):\n    return f'hello {name}'\n"}


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return json.load(resp)


@pytest.fixture(scope="module")
def functions(emulator):
    """Creates functions named after their handler (echo, boom, ...) sharing one zip + one layer."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            }
        ],
    }
    iam = emulator.client("iam")
    iam.create_role(RoleName="test-role", AssumeRolePolicyDocument=json.dumps(trust))
    # IAM is enforced: the functions and the state machines below run as this role.
    permissions = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"},
            {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:*"},
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": f"arn:aws:sns:{REGION}:{ACCOUNT}:*"},
        ],
    }
    iam.put_role_policy(RoleName="test-role", PolicyName="test", PolicyDocument=json.dumps(permissions))
    lam = emulator.client("lambda")
    layer = lam.publish_layer_version(LayerName="greeting", Content={"ZipFile": make_zip(LAYER)})
    code = make_zip({"app.py": APP, "needs_moto.py": NEEDS_MOTO})
    arns = {}
    for name, handler, timeout in [
        ("echo", "app.echo", 10),
        ("boom", "app.boom", 10),
        ("slow", "app.slow", 1),
        ("list_queues", "app.list_queues", 20),
        ("process", "app.process", 10),
        ("needs_moto", "needs_moto.handler", 10),
        ("record_s3_key", "app.record_s3_key", 10),
    ]:
        fn = lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler=handler,
            Timeout=timeout,
            Code={"ZipFile": code},
            Layers=[layer["LayerVersionArn"]],
            Environment={"Variables": {"WHO": "pipeline"}},
        )
        arns[name] = fn["FunctionArn"]
    return arns


def invoke(emulator, name, event):
    resp = emulator.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return resp.get("FunctionError"), json.loads(resp["Payload"].read())


# ------------------------------------------------------------------ (a) Lambda runner
def test_invoke_runs_code_with_layer_and_env(emulator, functions):
    err, payload = invoke(emulator, "echo", {"k": 1})
    assert err is None
    assert payload == {"event": {"k": 1}, "greeting": "hello pipeline", "region": REGION, "function": "echo"}
    assert "echo called" in (emulator.state_dir / "logs" / "echo.log").read_text()


def test_handler_boto3_reaches_emulator(emulator, functions):
    url = emulator.client("sqs").create_queue(QueueName="seen-by-handler")["QueueUrl"]
    err, payload = invoke(emulator, "list_queues", {})
    assert err is None
    assert any(u.endswith("/seen-by-handler") for u in payload), payload
    assert url


def test_handler_exception_is_unhandled_function_error(emulator, functions):
    err, payload = invoke(emulator, "boom", {})
    assert err == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad input"
    assert any("boom" in line for line in payload["stackTrace"])


def test_timeout_is_enforced(emulator, functions):
    started = time.monotonic()
    err, payload = invoke(emulator, "slow", {})
    assert time.monotonic() - started < 8
    assert err == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_clean_interpreter_does_not_see_emulator_venv(emulator, functions):
    err, payload = invoke(emulator, "needs_moto", {})
    assert err == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'moto'" in payload["errorMessage"]


def test_fault_injection(emulator, functions):
    post_json(
        f"{emulator.url}/_pipeline/faults",
        {"function": "echo", "errorType": "Lambda.ServiceException", "times": 2},
    )
    assert invoke(emulator, "echo", {})[1]["errorType"] == "Lambda.ServiceException"
    assert invoke(emulator, "echo", {})[1]["errorType"] == "Lambda.ServiceException"
    assert invoke(emulator, "echo", {})[0] is None
    post_json(f"{emulator.url}/_pipeline/faults", {"function": "echo", "errorType": "timeout"})
    assert invoke(emulator, "echo", {})[1]["errorType"] == "Sandbox.Timedout"


# ------------------------------------------------------------------ (b) (c) added actions, 501
def test_validate_state_machine_definition_and_versions(emulator):
    sfn = emulator.client("stepfunctions")
    ok = sfn.validate_state_machine_definition(
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    )
    assert ok["result"] == "OK" and ok["diagnostics"] == []
    bad = sfn.validate_state_machine_definition(definition=json.dumps({"StartAt": "A"}))
    assert bad["result"] == "FAIL" and bad["diagnostics"][0]["severity"] == "ERROR"
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:none"
    assert sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"] == []


@pytest.mark.parametrize(
    ("service", "call"),
    [
        (
            "stepfunctions",
            lambda c: c.publish_state_machine_version(stateMachineArn="arn:aws:states:x"),
        ),  # json
        ("sns", lambda c: c.get_data_protection_policy(ResourceArn="arn:aws:sns:us-east-2:1:t")),  # query
    ],
)
def test_unimplemented_action_fails_fast_with_501(emulator, service, call):
    started = time.monotonic()
    with pytest.raises(ClientError) as exc:
        call(emulator.client(service))
    assert time.monotonic() - started < 5
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert exc.value.response["Error"]["Code"] == "NotImplemented"
    assert "has not been implemented" in exc.value.response["Error"]["Message"]


# ------------------------------------------------------------------ (d) drift fixes
def test_dead_letter_config_round_trips(emulator, functions):
    lam, sqs = emulator.client("lambda"), emulator.client("sqs")
    dlq = [
        sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName=n)["QueueUrl"], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for n in ("dlq1", "dlq2")
    ]
    lam.create_function(
        FunctionName="with-dlq",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.echo",
        Code={"ZipFile": make_zip({"app.py": APP})},
        DeadLetterConfig={"TargetArn": dlq[0]},
    )
    assert lam.get_function(FunctionName="with-dlq")["Configuration"]["DeadLetterConfig"] == {"TargetArn": dlq[0]}
    lam.update_function_configuration(FunctionName="with-dlq", DeadLetterConfig={"TargetArn": dlq[1]})
    assert lam.get_function_configuration(FunctionName="with-dlq")["DeadLetterConfig"] == {"TargetArn": dlq[1]}
    lam.update_function_configuration(FunctionName="with-dlq", DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in lam.get_function_configuration(FunctionName="with-dlq")


def test_s3_eventbridge_flag_round_trips(emulator):
    s3 = emulator.client("s3", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket="eb-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    assert "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket="eb-bucket")
    s3.put_bucket_notification_configuration(
        Bucket="eb-bucket", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    assert s3.get_bucket_notification_configuration(Bucket="eb-bucket")["EventBridgeConfiguration"] == {}


def test_s3_notification_runs_lambda_with_url_encoded_key(emulator, functions):
    s3 = emulator.client("s3", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket="landing", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_notification_configuration(
        Bucket="landing",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": functions["record_s3_key"], "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    s3.put_object(Bucket="landing", Key="in box/trades 1.csv", Body=b"a,b\n")  # invoked synchronously
    log = (emulator.state_dir / "logs" / "record_s3_key.log").read_text()
    keys = [line.split("S3 KEY ", 1)[1] for line in log.splitlines() if line.startswith("S3 KEY ")]
    assert keys and keys[-1] != "in box/trades 1.csv"  # moto URL-encodes keys, like AWS
    assert urllib.parse.unquote_plus(keys[-1]) == "in box/trades 1.csv"


# ------------------------------------------------------------------ (e) Step Functions
@pytest.fixture(scope="module")
def pipeline_machine(emulator, functions):
    sns, sqs, sfn = emulator.client("sns"), emulator.client("sqs"), emulator.client("stepfunctions")
    topic = sns.create_topic(Name="pipeline-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    definition = {
        "StartAt": "Process",
        "States": {
            "Process": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": functions["process"], "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Retry": [
                    {
                        "ErrorEquals": ["Lambda.ServiceException", "TransientError"],
                        "IntervalSeconds": 1,
                        "BackoffRate": 1.0,
                        "MaxAttempts": 2,
                    }
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Notify"}],
                "End": True,
            },
            "Notify": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": topic, "Message.$": "States.JsonToString($.error)"},
                "Next": "Failed",
            },
            "Failed": {"Type": "Fail", "Error": "ProcessingFailed", "Cause": "see the alerts topic"},
        },
    }
    arn = sfn.create_state_machine(name="pipeline", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    return arn, queue_url


def run_execution(sfn, arn, payload, timeout=60):
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout
    while (desc := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish"
        time.sleep(0.2)
    return desc, sfn.get_execution_history(executionArn=execution)["events"]


def test_sfn_success(emulator, pipeline_machine):
    desc, _ = run_execution(emulator.client("stepfunctions"), pipeline_machine[0], {"id": "a"})
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == {"processed": "a"}


def test_sfn_retries_injected_faults_then_succeeds(emulator, pipeline_machine):
    post_json(f"{emulator.url}/_pipeline/faults", {"function": "process", "errorType": "TransientError", "times": 2})
    started = time.monotonic()
    desc, events = run_execution(emulator.client("stepfunctions"), pipeline_machine[0], {"id": "b"})
    assert desc["status"] == "SUCCEEDED", desc
    failed = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    assert failed == ["TransientError", "TransientError"]
    assert time.monotonic() - started >= 2  # IntervalSeconds 1 x BackoffRate 1.0, twice: moto really sleeps


def test_sfn_permanent_failure_is_caught_and_published(emulator, pipeline_machine):
    arn, queue_url = pipeline_machine
    desc, events = run_execution(emulator.client("stepfunctions"), arn, {"id": "c", "fail": True})
    assert desc["status"] == "FAILED"
    assert desc["error"] == "ProcessingFailed"
    failed = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    assert failed == ["PermanentError"]  # not in the Retry list: caught at once
    sqs = emulator.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert len(messages) == 1
    error = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert error["Error"] == "PermanentError"
    assert json.loads(error["Cause"])["errorMessage"] == "cannot process c"


def test_sfn_direct_function_arn_task_with_retry(emulator, functions):
    sfn = emulator.client("stepfunctions")
    definition = {
        "StartAt": "Echo",
        "States": {
            "Echo": {
                "Type": "Task",
                "Resource": functions["echo"],
                "End": True,
                "Retry": [
                    {
                        "ErrorEquals": ["Lambda.TooManyRequestsException"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 1,
                    }
                ],
            }
        },
    }
    arn = sfn.create_state_machine(name="direct", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    post_json(
        f"{emulator.url}/_pipeline/faults",
        {"function": "echo", "errorType": "Lambda.TooManyRequestsException", "times": 1},
    )
    desc, events = run_execution(sfn, arn, {"x": 1})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["event"] == {"x": 1}
    failed = [e["lambdaFunctionFailedEventDetails"]["error"] for e in events if e["type"] == "LambdaFunctionFailed"]
    assert failed == ["Lambda.TooManyRequestsException"]


# ------------------------------------------------------------------ in-process API
def test_start_stop_api_in_a_fresh_process(tmp_path):
    """start()/wait_until_ready()/stop() (run in a subprocess: moto state is process-global)."""
    code = (
        "from local.emulator import start, wait_until_ready\n"
        f"h = start({free_port()}, {str(tmp_path)!r})\n"
        "wait_until_ready(h.url, 20)\n"
        "import boto3\n"
        "s = boto3.client('sqs', endpoint_url=h.url, region_name='us-east-1',"
        " aws_access_key_id='test', aws_secret_access_key='test')\n"
        "s.create_queue(QueueName='q')\n"
        "h.stop()\n"
        "print('stopped', h.url)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)  # noqa: S603
    assert out.returncode == 0, out.stderr
    assert "stopped http://127.0.0.1:" in out.stdout


def test_prefix_list_rule_description_round_trips(emulator):
    ec2 = emulator.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="desc", Description="probe", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_egress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "PrefixListIds": [{"PrefixListId": "pl-1234", "Description": "HTTPS to s3"}],
            }
        ],
    )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert [r.get("Description") for r in rules if r.get("PrefixListId") == "pl-1234"] == ["HTTPS to s3"]


def test_bucket_policy_conditions_do_not_deny_emulator_requests(emulator):
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="tls-only", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_bucket_policy(
        Bucket="tls-only",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "s3:*",
                        "Resource": ["arn:aws:s3:::tls-only", "arn:aws:s3:::tls-only/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )
    s3.put_object(Bucket="tls-only", Key="k", Body=b"v")
    assert s3.get_object(Bucket="tls-only", Key="k")["Body"].read() == b"v"


def test_logging_config_round_trips(emulator, functions):
    lam = emulator.client("lambda")
    lam.create_function(
        FunctionName="with-json-logs",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.echo",
        Code={"ZipFile": make_zip({"app.py": APP})},
        LoggingConfig={"LogFormat": "JSON", "LogGroup": "/aws/lambda/custom-group"},
    )
    config = lam.get_function_configuration(FunctionName="with-json-logs")["LoggingConfig"]
    assert config == {"LogFormat": "JSON", "LogGroup": "/aws/lambda/custom-group"}
    lam.update_function_configuration(FunctionName="with-json-logs", LoggingConfig={"LogFormat": "Text"})
    assert lam.get_function_configuration(FunctionName="with-json-logs")["LoggingConfig"]["LogFormat"] == "Text"


def _map_machine(sfn, name: str) -> str:
    child = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.v", "NumericEquals": 2, "Next": "Broken"}],
                "Default": "Fine",
            },
            "Broken": {"Type": "Fail", "Error": "ItemBroken", "Cause": "item 2"},
            "Fine": {"Type": "Pass", "End": True},
        },
    }
    definition = {
        "StartAt": "Items",
        "States": {
            "Items": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **child},
                "ResultPath": "$.results",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]


def test_a_distributed_map_with_a_failed_item_fails_as_none_is_tolerated(emulator):
    sfn = emulator.client("stepfunctions")
    arn = _map_machine(sfn, "tolerance")
    desc, _ = run_execution(sfn, arn, {"items": [{"v": 1}, {"v": 3}]})
    assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"])["results"] == [{"v": 1}, {"v": 3}]
    desc, _ = run_execution(sfn, arn, {"items": [{"v": 1}, {"v": 2}, {"v": 3}]})
    error = json.loads(desc["output"])["error"]
    assert error["Error"] == "States.ExceedToleratedFailureThreshold", desc
    assert "results" not in json.loads(desc["output"])
