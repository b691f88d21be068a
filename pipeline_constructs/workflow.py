"""The state machine's definition (Amazon States Language), built as plain data.

ingest -> validate -> (rejected? end) -> transform -> load. Every task retries transient
Lambda errors with capped, jittered exponential backoff, times out after its function
would, and on any other error records the failure on the job, alerts, and fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STAGES = ("ingest", "validate", "transform", "load")
TRANSIENT_LAMBDA_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Margin over the function's own timeout, so Lambda's timeout error (a clear name in the
# job record) comes first and the task timeout only catches a lost invocation.
TASK_TIMEOUT_MARGIN_SECONDS = 60
FAILED_STATE = "JobFailed"


@dataclass(frozen=True, kw_only=True)
class TaskFunction:
    arn: str
    timeout_seconds: int


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    interval_seconds: int = 2
    max_attempts: int = 4
    backoff_rate: float = 2.0
    max_delay_seconds: int = 60


def build_definition(
    *, functions: Mapping[str, TaskFunction], alert_topic_arn: str, retry: RetryPolicy
) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for index, stage in enumerate(STAGES):
        following = STAGES[index + 1] if index + 1 < len(STAGES) else None
        task = _lambda_task(functions[stage], retry, catch_to="RecordFailure")
        if stage == "validate":
            task["Next"] = "Rejected?"
        elif following:
            task["Next"] = _state_name(following)
        else:
            task["End"] = True
        states[_state_name(stage)] = task
    states["Rejected?"] = {
        "Type": "Choice",
        "Comment": "Too many rejected rows: the job ends REJECTED and nothing is loaded",
        "Choices": [{"Variable": "$.status", "StringEquals": "REJECTED", "Next": "JobRejected"}],
        "Default": _state_name("transform"),
    }
    states["JobRejected"] = {"Type": "Succeed"}
    record_failure = _lambda_task(functions["failure"], retry, catch_to="NotifyFailure")
    # Keep the error in the state for the alert: the job record goes beside it, not over it.
    del record_failure["OutputPath"]
    record_failure.update(
        {"ResultSelector": {"status.$": "$.Payload.status"}, "ResultPath": "$.failureRecord", "Next": "NotifyFailure"}
    )
    states["RecordFailure"] = record_failure
    states["NotifyFailure"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {
            "TopicArn": alert_topic_arn,
            "Subject": "Pipeline job failed",
            "Message.$": "States.JsonToString($)",
        },
        "ResultPath": None,
        "TimeoutSeconds": 60,
        "Retry": [_retry(["SNS.SdkClientException", "SNS.InternalErrorException", "States.Timeout"], retry)],
        # An alert that cannot be sent still ends the job as PipelineJobFailed (the alarm on
        # failed executions pages as well), not as an unexplained SNS error.
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notifyError", "Next": FAILED_STATE}],
        "Next": FAILED_STATE,
    }
    states[FAILED_STATE] = {
        "Type": "Fail",
        "Error": "PipelineJobFailed",
        "Cause": "A stage failed; the job record holds the error and cause",
    }
    return {
        "Comment": "Financial transactions pipeline: ingest, validate, transform, load",
        "StartAt": _state_name(STAGES[0]),
        "States": states,
    }


def _state_name(stage: str) -> str:
    return stage.capitalize()


def _retry(errors: list[str], retry: RetryPolicy) -> dict[str, Any]:
    return {
        "ErrorEquals": errors,
        "IntervalSeconds": retry.interval_seconds,
        "MaxAttempts": retry.max_attempts,
        "BackoffRate": retry.backoff_rate,
        "MaxDelaySeconds": retry.max_delay_seconds,
        "JitterStrategy": "FULL",
    }


def _lambda_task(function: TaskFunction, retry: RetryPolicy, *, catch_to: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function.arn, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "TimeoutSeconds": function.timeout_seconds + TASK_TIMEOUT_MARGIN_SECONDS,
        "Retry": [_retry(TRANSIENT_LAMBDA_ERRORS, retry)],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": catch_to}],
    }
