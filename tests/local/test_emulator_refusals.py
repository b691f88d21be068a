"""The emulator refuses what AWS refuses, for the calls this project makes (local/aws_limits.py):
state machine definitions, Lambda package sizes, Step Functions payloads, DynamoDB item size."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile

import pytest
from botocore.exceptions import ClientError
from local_emu_helpers import ACCOUNT, make_zip

from local import aws_limits

pytestmark = pytest.mark.slow

ROLE_NAME = "refusals-role"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def role(emulator):
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
    iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    invoke = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": f"arn:aws:lambda:*:{ACCOUNT}:*"}
    iam.put_role_policy(
        RoleName=ROLE_NAME,
        PolicyName="invoke",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [invoke]}),
    )
    return ROLE


def refused(call, code: str) -> str:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == code, error.value.response
    return error.value.response["Error"]["Message"]


# ------------------------------------------------------------------ state machine definitions
def _machine_with_a_map_child_named(name: str) -> dict:
    child = {"StartAt": name, "States": {name: {"Type": "Pass", "End": True}}}
    return {
        "StartAt": "Items",
        "States": {
            "Items": {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": child, "Next": "Work"},
            "Work": {"Type": "Pass", "End": True},
        },
    }


def test_a_state_name_repeated_inside_a_map_is_an_invalid_definition(emulator, role):
    sfn = emulator.client("stepfunctions")
    duplicate = json.dumps(_machine_with_a_map_child_named("Work"))
    message = refused(
        lambda: sfn.create_state_machine(name="duplicate-names", definition=duplicate, roleArn=role),
        "InvalidDefinition",
    )
    assert message.startswith("Invalid State Machine Definition: 'DUPLICATE_STATE_NAME: Duplicate State name: Work")
    assert "/States/Items/ItemProcessor/States/Work" in message

    fine = json.dumps(_machine_with_a_map_child_named("WorkItem"))
    arn = sfn.create_state_machine(name="unique-names", definition=fine, roleArn=role)["stateMachineArn"]
    refused(lambda: sfn.update_state_machine(stateMachineArn=arn, definition=duplicate), "InvalidDefinition")
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == json.loads(fine)

    diagnosed = sfn.validate_state_machine_definition(definition=duplicate)
    assert diagnosed["result"] == "FAIL"
    assert [d["code"] for d in diagnosed["diagnostics"]] == ["DUPLICATE_STATE_NAME"]
    assert sfn.validate_state_machine_definition(definition=fine)["result"] == "OK"


def test_a_state_name_given_twice_in_one_states_object_is_refused(emulator, role):
    # json keeps the last of two equal keys; AWS refuses the definition.
    twice = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "A": {"Type": "Succeed"}}}'
    message = refused(
        lambda: emulator.client("stepfunctions").create_state_machine(name="twice", definition=twice, roleArn=role),
        "InvalidDefinition",
    )
    assert "DUPLICATE_STATE_NAME: Duplicate State name: A at /States'" in message


def test_what_asl_validator_finds_is_an_invalid_definition(emulator, role):
    assert aws_limits.ASL_VALIDATOR.is_dir(), "make install puts the pinned asl-validator in node_modules"
    missing_target = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}})
    sfn = emulator.client("stepfunctions")
    message = refused(
        lambda: sfn.create_state_machine(name="missing-target", definition=missing_target, roleArn=role),
        "InvalidDefinition",
    )
    assert "'MISSING_TRANSITION_TARGET: " in message and "Nowhere" in message
    codes = {d["code"] for d in sfn.validate_state_machine_definition(definition=missing_target)["diagnostics"]}
    assert codes == {"MISSING_TRANSITION_TARGET", "MISSING_END_STATE"}


def test_duplicate_names_are_found_without_node(monkeypatch, tmp_path):
    monkeypatch.setattr(aws_limits, "ASL_VALIDATOR", tmp_path / "absent")
    parallel = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Start", "States": {"Start": {"Type": "Pass", "End": True}}},
                    {"StartAt": "Start", "States": {"Start": {"Type": "Pass", "End": True}}},
                ],
                "End": True,
            }
        },
    }
    (found,) = aws_limits.definition_diagnostics(json.dumps(parallel))
    assert found["code"] == "DUPLICATE_STATE_NAME" and found["location"] == "/States/Both/Branches/1/States/Start"


# ------------------------------------------------------------------ Lambda packages
def _zip_of_zeros(size: int, name: str = "python/blob.bin") -> bytes:
    """A package that unzips to `size` bytes and weighs a few hundred KB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w", force_zip64=True) as f:
        chunk = bytes(8 * MB)
        for start in range(0, size, len(chunk)):
            f.write(chunk[: min(len(chunk), size - start)])
    return buf.getvalue()


def _zip_of_random(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("python/noise.bin", os.urandom(size))
    return buf.getvalue()


def test_a_direct_upload_over_50_mb_zipped_is_too_large(emulator, role):
    lam = emulator.client("lambda")
    package = _zip_of_random(51 * MB)
    limit = "Request must be smaller than 69905067 bytes for the {} operation"
    message = refused(
        lambda: lam.publish_layer_version(LayerName="inline-51mb", Content={"ZipFile": package}),
        "RequestEntityTooLargeException",
    )
    assert message == limit.format("PublishLayerVersion")
    message = refused(
        lambda: lam.create_function(
            FunctionName="inline-51mb",
            Runtime="python3.11",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": package},
        ),
        "RequestEntityTooLargeException",
    )
    assert message == limit.format("CreateFunction")


def test_more_than_250_mb_unzipped_is_refused_whether_alone_or_with_layers(emulator, role):
    lam, s3 = emulator.client("lambda"), emulator.client("s3")
    s3.create_bucket(Bucket="refusals-artifacts", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_object(Bucket="refusals-artifacts", Key="layer-251mb.zip", Body=_zip_of_zeros(251 * MB))
    message = refused(
        lambda: lam.publish_layer_version(
            LayerName="unzips-to-251mb", Content={"S3Bucket": "refusals-artifacts", "S3Key": "layer-251mb.zip"}
        ),
        "InvalidParameterValueException",
    )
    assert message == "Unzipped size must be smaller than 262144000 bytes"

    layer = lam.publish_layer_version(LayerName="unzips-to-200mb", Content={"ZipFile": _zip_of_zeros(200 * MB)})
    code = _zip_of_zeros(60 * MB, name="app.py")
    function = {"Runtime": "python3.11", "Role": role, "Handler": "app.handler", "Code": {"ZipFile": code}}
    message = refused(
        lambda: lam.create_function(FunctionName="too-big", Layers=[layer["LayerVersionArn"]], **function),
        "InvalidParameterValueException",
    )
    total = 260 * MB
    assert message == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. "
        f"The actual size is {total} bytes."
    )
    lam.create_function(FunctionName="big-but-alone", **function)
    refused(
        lambda: lam.update_function_configuration(FunctionName="big-but-alone", Layers=[layer["LayerVersionArn"]]),
        "InvalidParameterValueException",
    )
    lam.create_function(
        FunctionName="small-with-layer",
        Layers=[layer["LayerVersionArn"]],
        **{**function, "Code": {"ZipFile": make_zip({"app.py": "def handler(event, context):\n    return 1\n"})}},
    )
    refused(
        lambda: lam.update_function_code(FunctionName="small-with-layer", ZipFile=code),
        "InvalidParameterValueException",
    )


def test_a_layer_published_from_s3_over_the_inline_limit_is_accepted_and_used(emulator, role):
    lam, s3 = emulator.client("lambda"), emulator.client("s3")
    s3.create_bucket(Bucket="refusals-layers", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("python/from_s3.py", "WHERE = 'the layer published from S3'\n")
        archive.writestr("python/noise.bin", os.urandom(55 * MB))  # like the compute stack's 55.5 MB layer
    s3.put_object(Bucket="refusals-layers", Key="deps.zip", Body=buf.getvalue())
    layer = lam.publish_layer_version(
        LayerName="deps-from-s3", Content={"S3Bucket": "refusals-layers", "S3Key": "deps.zip"}
    )
    assert layer["Content"]["CodeSize"] == len(buf.getvalue())
    lam.create_function(
        FunctionName="uses-s3-layer",
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={
            "ZipFile": make_zip(
                {"app.py": "import from_s3\n\ndef handler(event, context):\n    return from_s3.WHERE\n"}
            )
        },
        Layers=[layer["LayerVersionArn"]],
    )
    answer = lam.invoke(FunctionName="uses-s3-layer", Payload=b"{}")
    assert answer.get("FunctionError") is None and json.loads(answer["Payload"].read()) == "the layer published from S3"


# ------------------------------------------------------------------ Step Functions payloads
BIG_RESULT = """
def handler(event, context):
    return {"rows": "x" * 300_000}
"""


def _run(sfn, name: str, definition: dict, execution_input: dict, role: str) -> dict:
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{name} still running"
        time.sleep(0.1)
    return described


def test_a_task_result_over_256_kb_fails_the_execution_past_a_catch_all(emulator, role):
    fn = emulator.client("lambda").create_function(
        FunctionName="returns-300kb",
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": BIG_RESULT})},
    )["FunctionArn"]
    definition = {
        "StartAt": "Produce",
        "States": {
            "Produce": {
                "Type": "Task",
                "Resource": fn,
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recorded"}],
                "End": True,
            },
            "Recorded": {"Type": "Pass", "End": True},
        },
    }
    sfn = emulator.client("stepfunctions")
    described = _run(sfn, "too-big-result", definition, {}, role)
    assert described["status"] == "FAILED" and described["error"] == "States.DataLimitExceeded", described
    # Terminal: neither retried nor caught by States.ALL, so the function ran once (counted in the
    # execution's history, not by the clock).
    events = sfn.get_execution_history(executionArn=described["executionArn"], maxResults=1000)["events"]
    scheduled = [e for e in events if e["type"] in ("LambdaFunctionScheduled", "TaskScheduled")]
    assert len(scheduled) == 1, [e["type"] for e in events]
    assert not [e for e in events if e["type"] == "PassStateEntered"], "the Catch took a terminal error"


def test_a_state_input_over_256_kb_after_parameters_fails_the_execution(emulator, role):
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Pass",
                "Parameters": {"first.$": "$.half", "second.$": "$.half"},
                "ResultPath": None,
                "End": True,
            }
        },
    }
    sfn = emulator.client("stepfunctions")
    described = _run(sfn, "doubled-input", definition, {"half": "y" * 140_000}, role)
    assert described["status"] == "FAILED" and described["error"] == "States.DataLimitExceeded", described
    assert _run(sfn, "doubled-input-fits", definition, {"half": "y" * 120_000}, role)["status"] == "SUCCEEDED"


OVERSIZED = {"Type": "Pass", "Result": {"p": "x" * 300_000}, "End": True}
CAUGHT = {"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True}


@pytest.mark.parametrize(
    "container",
    [
        {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {"StartAt": "Item", "States": {"Item": OVERSIZED}}},
        {"Type": "Parallel", "Branches": [{"StartAt": "Branch", "States": {"Branch": OVERSIZED}}]},
    ],
    ids=["map-item", "parallel-branch"],
)
def test_an_oversized_output_inside_a_map_or_parallel_fails_the_execution(emulator, role, container):
    definition = {"StartAt": "Run", "States": {"Run": {**container, **CAUGHT}, "Caught": {"Type": "Pass", "End": True}}}
    name = f"oversized-{container['Type'].lower()}"
    described = _run(emulator.client("stepfunctions"), name, definition, {"items": [1]}, role)
    assert described["status"] == "FAILED" and described["error"] == "States.DataLimitExceeded", described


@pytest.mark.parametrize(("size", "status"), [(262_144, "SUCCEEDED"), (262_145, "FAILED")])
def test_an_output_of_exactly_256_kb_is_allowed(emulator, role, size, status):
    padding = size - len(json.dumps({"p": ""}, separators=(",", ":")))
    definition = {"StartAt": "Fill", "States": {"Fill": {"Type": "Pass", "Result": {"p": "z" * padding}, "End": True}}}
    described = _run(emulator.client("stepfunctions"), f"output-of-{size}", definition, {}, role)
    assert described["status"] == status, described
    if status == "SUCCEEDED":
        assert len(described["output"].replace(" ", "").encode()) == size


# ------------------------------------------------------------------ DynamoDB items
def test_an_item_over_400_kb_is_a_validation_exception(emulator):
    """moto 5.2 enforces this itself; the test holds it there."""
    ddb = emulator.client("dynamodb")
    ddb.create_table(
        TableName="refusals-items",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # An item's size: its attribute names' and values' UTF-8 bytes ("k" + "a" + "v" = 3 here).
    message = refused(
        lambda: ddb.put_item(TableName="refusals-items", Item={"k": {"S": "a"}, "v": {"S": "x" * (400 * 1024 - 2)}}),
        "ValidationException",
    )
    assert message == "Item size has exceeded the maximum allowed size"
    ddb.put_item(TableName="refusals-items", Item={"k": {"S": "b"}, "v": {"S": "x" * 300_000}})
    message = refused(
        lambda: ddb.update_item(
            TableName="refusals-items",
            Key={"k": {"S": "b"}},
            UpdateExpression="SET w = :w",
            ExpressionAttributeValues={":w": {"S": "y" * 120_000}},
        ),
        "ValidationException",
    )
    assert message == "Item size to update has exceeded the maximum allowed size"
