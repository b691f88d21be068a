"""The state machine's definition (Amazon States Language), built as plain data.

    Route ─┬─ admitted ──────────────────────────────────────────────┐
           ├─ drain ─▶ Drain ─▶ StartAdmitted ─▶ Drained              │
           └─▶ Ingest ─▶ Queued? ─▶ Arrive ─▶ StartOthers ─▶ Admitted? ─▶ Plan
                           └ duplicate / replay: Ended                 └ no: Waiting (a slot frees later)
    Plan ─▶ Resent? ─┬─ RESENT (the bytes of another job's file) ─▶ Release
                     └─▶ ValidateChunks (Map over chunks) ─▶ SeveralChunks? ─▶ FindDuplicates (Map over id partitions)
         ─▶ Summarize ─▶ Verdict? ─┬─ REVALIDATE ─▶ Revalidate (Map over chunks with late duplicates) ─▶ Summarize
                                   ├─ REJECTED ─▶ Release
                                   └─ VALIDATED ─▶ TransformDates (Map over booking dates) ─▶ Load ─▶ Release
    Release ─▶ StartNext ─▶ JobDone          any error ─▶ RecordFailure ─▶ ReleaseAfterFailure ─▶ ... ─▶ JobFailed

Every task retries throttling with a long, jittered, capped backoff (a burst waits for capacity
instead of failing), and transient Lambda errors with a short one; it times out after its
function would, and on any other error the job is recorded FAILED, its slot freed, an alert sent.
The chunk work runs in Distributed Maps whose children are Standard executions (see
docs/architecture.md: their retries may wait longer than an Express child may live).

State names are unique across the whole state machine, the Maps' children included: Step Functions
refuses a definition that repeats one (`DUPLICATE_STATE_NAME`), however deep. A Map's children are
written with short local names and take their map's name in one place (`child_state_name`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lake import layout

TRANSIENT_LAMBDA_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
]
THROTTLING_ERRORS = ["Lambda.TooManyRequestsException", "Lambda.EC2ThrottledException"]
STATES_THROTTLING = ["StepFunctions.SfnException", "States.Timeout"]
EXECUTION_EXISTS = "StepFunctions.ExecutionAlreadyExistsException"
# Margin over the function's own timeout, so Lambda's timeout error (a clear name in the job
# record) comes first and the task timeout only catches a lost invocation.
TASK_TIMEOUT_MARGIN_SECONDS = 60
FAILED_STATE = "JobFailed"
# Step Functions' longest state name (StateEnteredEventDetails.name in the API reference).
MAX_STATE_NAME_LENGTH = 80
# Where the Distributed Maps write their run manifests (each run under its own id).
MAP_RUNS_PREFIX = f"{layout.STAGING}/map-runs"


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


@dataclass(frozen=True, kw_only=True)
class Retries:
    transient: RetryPolicy
    throttling: RetryPolicy  # long: a job waits out a burst rather than failing


def _waits(policy: RetryPolicy) -> float:
    return sum(
        min(policy.interval_seconds * policy.backoff_rate**attempt, policy.max_delay_seconds)
        for attempt in range(policy.max_attempts)
    )


def longest_task_seconds(retries: Retries, *, timeout_seconds: int) -> int:
    """The longest one task may take: its whole throttle budget waited out, then every attempt of
    the short retry running into the task's timeout. A running job that shows no progress for
    longer has lost its execution."""
    attempts = retries.transient.max_attempts + 1
    waits = _waits(retries.throttling) + _waits(retries.transient)
    return math.ceil(waits) + attempts * (timeout_seconds + TASK_TIMEOUT_MARGIN_SECONDS)


@dataclass(frozen=True, kw_only=True)
class MapConcurrency:
    chunks: int  # chunks of one job validated (or transformed) at once
    partitions: int  # id partitions of one job in the duplicate step at once


def build_definition(
    *,
    functions: Mapping[str, TaskFunction],
    alert_topic_arn: str,
    bucket: str,
    retries: Retries,
    concurrency: MapConcurrency,
) -> dict[str, Any]:
    def task(function: str, *, payload: Any = "$", **fields: Any) -> dict[str, Any]:
        return _lambda_task(functions[function], retries, payload=payload, **fields)

    record_item_failure = _lambda_task(
        functions["failure"], retries, payload="$", catch_to="ItemFailed", ResultPath=None, Next="ItemFailed"
    )
    del record_item_failure["OutputPath"]

    ids = {"jobId.$": "$.jobId", "runId.$": "$.runId"}
    plan_ids = {**ids, "planId.$": "$.planId"}

    def chunk_map(function: str, *, items_key: str, item_name: str, max_concurrency: int, next_state: str) -> dict:
        """A Distributed Map of one function over a job's items (a JSON array in S3)."""
        return _distributed_map(
            items_key=items_key,
            item_name=item_name,
            task_state=task(function, End=True),
            record_failure=record_item_failure,
            item_ids=plan_ids,
            max_concurrency=max_concurrency,
            bucket=bucket,
            next_state=next_state,
        )

    states: dict[str, Any] = {
        "Route": {
            "Type": "Choice",
            "Comment": "An admitted job's own execution goes straight to Plan; a drain frees and fills slots",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.admitted", "IsPresent": True},
                        {"Variable": "$.admitted", "BooleanEquals": True},
                    ],
                    "Next": "Plan",
                },
                {"Variable": "$.drain", "IsPresent": True, "Next": "Drain"},
            ],
            "Default": "Ingest",
        },
        "Ingest": task("ingest", payload={"input.$": "$", "executionArn.$": "$$.Execution.Id"}, Next="Queued?"),
        "Queued?": {
            "Type": "Choice",
            "Comment": "DUPLICATE: the same job is queued or running already; REPLAY: it finished",
            "Choices": [{"Variable": "$.status", "StringEquals": "QUEUED", "Next": "Arrive"}],
            "Default": "Ended",
        },
        "Ended": {"Type": "Succeed"},
        "Arrive": task("admit", payload={"action": "arrive", **ids}, Next="StartOthers"),
        "StartOthers": _start_executions("$.start", retries, next_state="Admitted?"),
        "Admitted?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.admitted", "BooleanEquals": True, "Next": "Plan"}],
            "Default": "Waiting",
        },
        "Waiting": {
            "Type": "Succeed",
            "Comment": "All slots are taken: the job waits in the queue, started by a job that ends",
        },
        "Plan": task("plan", payload=ids, Next="Resent?"),
        "Resent?": {
            "Type": "Choice",
            "Comment": "RESENT: another job holds these bytes; no failure, no alert, the slot freed now",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.status", "IsPresent": True},
                        {"Variable": "$.status", "StringEquals": "RESENT"},
                    ],
                    "Next": "Release",
                }
            ],
            "Default": "ValidateChunks",
        },
        "ValidateChunks": chunk_map(
            "validate",
            items_key="$.chunksKey",
            item_name="chunk",
            max_concurrency=concurrency.chunks,
            next_state="SeveralChunks?",
        ),
        "SeveralChunks?": {
            "Type": "Choice",
            "Comment": "Within one chunk, validation found every duplicate itself",
            "Choices": [{"Variable": "$.chunks", "NumericGreaterThan": 1, "Next": "FindDuplicates"}],
            "Default": "Summarize",
        },
        "FindDuplicates": chunk_map(
            "dedupe",
            items_key="$.partitionsKey",
            item_name="partition",
            max_concurrency=concurrency.partitions,
            next_state="Summarize",
        ),
        "Summarize": task("summarize", payload=plan_ids, Next="Verdict?"),
        "Verdict?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.status", "StringEquals": "REVALIDATE", "Next": "Revalidate"},
                {"Variable": "$.status", "StringEquals": "VALIDATED", "Next": "TransformDates"},
            ],
            "Default": "Release",
            "Comment": "REJECTED: too many rejected rows, nothing is loaded",
        },
        "Revalidate": chunk_map(
            "validate",
            items_key="$.revalidateKey",
            item_name="chunk",
            max_concurrency=concurrency.chunks,
            next_state="Summarize",
        ),
        "TransformDates": chunk_map(
            "transform", items_key="$.datesKey", item_name="item", max_concurrency=concurrency.chunks, next_state="Load"
        ),
        "Load": task("load", payload=plan_ids, Next="Release"),
        "Release": task("admit", payload={"action": "release", **ids}, admissions_into="$.admission", Next="StartNext"),
        "StartNext": _start_executions("$.admission.start", retries, next_state="JobDone"),
        "JobDone": {"Type": "Succeed"},
        "Drain": task("admit", payload={"action": "drain"}, admissions_into="$.admission", Next="StartAdmitted"),
        "StartAdmitted": _start_executions("$.admission.start", retries, next_state="Drained"),
        "Drained": {"Type": "Succeed"},
    }
    states.update(_failure_states(functions=functions, retries=retries, alert_topic_arn=alert_topic_arn))
    definition = {
        "Comment": "Financial transactions pipeline: admission, plan, chunked validation, transform, load",
        "StartAt": "Route",
        "States": _children_named_after_their_maps(states),
    }
    check_state_names(definition)
    return definition


def child_state_name(map_name: str, child: str) -> str:
    """The machine-wide name of a Map's child state (only 0-9, A-Z, a-z, - and _ added, the
    characters CloudWatch Logs takes in a state name)."""
    return f"{map_name}-{child}"


def _children_named_after_their_maps(states: Mapping[str, Any]) -> dict[str, Any]:
    """The states, each Map's children renamed by `child_state_name` (and their transitions with them)."""
    named = {}
    for name, state in states.items():
        processor = state.get("ItemProcessor")
        if processor is not None:
            local = processor["States"]
            rename = {child: child_state_name(name, child) for child in local}
            children = {rename[child]: _renamed_transitions(body, rename) for child, body in local.items()}
            processor = {**processor, "StartAt": rename[processor["StartAt"]]}
            processor["States"] = _children_named_after_their_maps(children)
            state = {**state, "ItemProcessor": processor}
        named[name] = state
    return named


def _renamed_transitions(state: Mapping[str, Any], rename: Mapping[str, str]) -> dict[str, Any]:
    renamed = dict(state)
    for field in ("Next", "Default"):
        if field in renamed:
            renamed[field] = rename[renamed[field]]
    for field in ("Catch", "Choices"):
        if field in renamed:
            renamed[field] = [{**rule, "Next": rename[rule["Next"]]} for rule in renamed[field]]
    return renamed


def _state_names(states: Mapping[str, Any]) -> list[str]:
    names = []
    for name, state in states.items():
        names.append(name)
        for processor in (state.get("ItemProcessor"), *state.get("Branches", ())):
            if processor is not None:
                names.extend(_state_names(processor["States"]))
    return names


def check_state_names(definition: Mapping[str, Any]) -> None:
    """Refuse what Step Functions refuses: a state name used twice anywhere in the machine
    (`DUPLICATE_STATE_NAME`), or one longer than it accepts."""
    names = _state_names(definition["States"])
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"state machine definition: state names {repeated} are used more than once; names must be unique "
            "across the whole state machine, Map children included (Step Functions: DUPLICATE_STATE_NAME)"
        )
    too_long = [name for name in names if len(name) > MAX_STATE_NAME_LENGTH]
    if too_long:
        raise ValueError(
            f"state machine definition: state names {too_long} are longer than {MAX_STATE_NAME_LENGTH} characters"
        )


def _failure_states(*, functions: Mapping[str, TaskFunction], retries: Retries, alert_topic_arn: str) -> dict[str, Any]:
    record = _lambda_task(functions["failure"], retries, payload="$", catch_to="NotifyFailure")
    # Keep the error in the state for the alert: the job record goes beside it, not over it.
    del record["OutputPath"]
    record.update(
        {
            "ResultSelector": {
                "jobId.$": "$.Payload.jobId",
                "status.$": "$.Payload.status",
                "recorded.$": "$.Payload.recorded",
            },
            "ResultPath": "$.failureRecord",
            "Next": "ReleaseAfterFailure",
        }
    )
    release = _lambda_task(
        functions["admit"],
        retries,
        # Not the owner's failure: the owner keeps its slot (handlers/admit.py).
        payload={"action": "release", "jobId.$": "$.failureRecord.jobId", "recorded.$": "$.failureRecord.recorded"},
        catch_to="NotifyFailure",
        admissions_into="$.admission",
        Next="StartAfterFailure",
    )
    start_next = _start_executions("$.admission.start", retries, next_state="NotifyFailure")
    start_next["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.startError", "Next": "NotifyFailure"}]
    return {
        "RecordFailure": record,
        "ReleaseAfterFailure": release,
        "StartAfterFailure": start_next,
        "NotifyFailure": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": alert_topic_arn,
                "Subject": "Pipeline job failed",
                "Message.$": "States.JsonToString($)",
            },
            "ResultPath": None,
            "TimeoutSeconds": 60,
            "Retry": [
                _retry(["SNS.SdkClientException", "SNS.InternalErrorException", "States.Timeout"], retries.transient)
            ],
            # An alert that cannot be sent still ends the job as PipelineJobFailed (the alarm on
            # failed executions pages as well), not as an unexplained SNS error.
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notifyError", "Next": FAILED_STATE}],
            "Next": FAILED_STATE,
        },
        FAILED_STATE: {
            "Type": "Fail",
            "Error": "PipelineJobFailed",
            "Cause": "A stage failed; the job record holds the error and cause",
        },
    }


def _retry(errors: list[str], policy: RetryPolicy) -> dict[str, Any]:
    return {
        "ErrorEquals": errors,
        "IntervalSeconds": policy.interval_seconds,
        "MaxAttempts": policy.max_attempts,
        "BackoffRate": policy.backoff_rate,
        "MaxDelaySeconds": policy.max_delay_seconds,
        "JitterStrategy": "FULL",
    }


def _lambda_task(
    function: TaskFunction,
    retries: Retries,
    *,
    payload: Any,
    catch_to: str = "RecordFailure",
    admissions_into: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A Lambda task whose output replaces the state, or (``admissions_into``) an admission call
    whose executions to start go beside the state at that path."""
    parameters: dict[str, Any] = {"FunctionName": function.arn}
    if isinstance(payload, str):
        parameters["Payload.$"] = payload
    else:
        parameters["Payload"] = payload
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": parameters,
        "OutputPath": "$.Payload",
        "TimeoutSeconds": function.timeout_seconds + TASK_TIMEOUT_MARGIN_SECONDS,
        # Throttling first: a busy account is waited out; then the short retry of transient errors.
        "Retry": [_retry(THROTTLING_ERRORS, retries.throttling), _retry(TRANSIENT_LAMBDA_ERRORS, retries.transient)],
    }
    state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": catch_to}]
    if admissions_into:
        del state["OutputPath"]
        state.update(ResultSelector={"start.$": "$.Payload.start"}, ResultPath=admissions_into)
    state.update(fields)
    return state


def _distributed_map(
    *,
    items_key: str,
    item_name: str,
    task_state: dict[str, Any],
    record_failure: dict[str, Any],
    item_ids: dict[str, str],
    max_concurrency: int,
    bucket: str,
    next_state: str,
) -> dict[str, Any]:
    """A Distributed Map over a JSON array our own step wrote to S3 (an item is a byte-range chunk,
    an id partition or a booking date: a few seconds of work each, not one row)."""
    # A failed item records its own error on the job (the first error of a run is kept: the map's
    # own error, which follows, names no cause) and fails its child; no failure is tolerated, so
    # the map fails and its Catch takes the job down the failure path.
    child = {
        **task_state,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordItemFailure"}],
    }
    return {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.bucket", "Key.$": items_key},
        },
        "ItemSelector": {**item_ids, f"{item_name}.$": "$$.Map.Item.Value"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work",
            "States": {
                "Work": child,
                "RecordItemFailure": record_failure,
                "ItemFailed": {
                    "Type": "Fail",
                    "Error": "PipelineItemFailed",
                    "Cause": "An item of the map failed; the job record holds its error",
                },
            },
        },
        # No ToleratedFailure* fields: the default tolerates no failed item.
        "MaxConcurrency": max_concurrency,
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": bucket, "Prefix": MAP_RUNS_PREFIX},
        },
        "ResultPath": None,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
        "Next": next_state,
    }


def _start_executions(items_path: str, retries: Retries, *, next_state: str) -> dict[str, Any]:
    """Start an execution for each admitted job (inline Map). The name comes from the job's run,
    so a second start of the same run is refused by Step Functions and ignored here."""
    start = {
        "Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution",
        "Parameters": {"StateMachineArn.$": "$$.StateMachine.Id", "Name.$": "$.name", "Input.$": "$.input"},
        "TimeoutSeconds": 60,
        "Retry": [_retry(STATES_THROTTLING, retries.throttling)],
        "Catch": [{"ErrorEquals": [EXECUTION_EXISTS], "ResultPath": None, "Next": "AlreadyStarted"}],
        "End": True,
    }
    return {
        "Type": "Map",
        "ItemsPath": items_path,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Start",
            "States": {"Start": start, "AlreadyStarted": {"Type": "Succeed"}},
        },
        "ResultPath": None,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
        "Next": next_state,
    }
