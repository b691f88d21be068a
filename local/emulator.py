"""Local AWS emulator for the pipeline: moto's server, in-process, with a few thin fixes.

    python -m local.emulator --port 4566 [--state-dir DIR] [--runtime-dir DIR]

Binds 127.0.0.1 only and prints ``emulator ready on http://127.0.0.1:PORT``. Tests use
``start(port, state_dir) -> EmulatorHandle`` / ``handle.stop()`` and ``wait_until_ready``.

Why each patch exists (moto 5.2.5 + hashicorp/aws 5.100.0):
  * Step Functions ValidateStateMachineDefinition / ListStateMachineVersions are missing; the
    provider calls both for aws_sfn_state_machine and retries the 500 for many minutes.
  * Any unimplemented action raises NotImplementedError -> HTTP 500, which SDKs retry; we
    answer 501 (not retried) with the action name in the message, so gaps fail fast.
  * The executing Step Functions backend names unnamed executions "None" (2nd one fails).
  * Lambda DeadLetterConfig and the S3 notification EventBridge flag are accepted but never
    returned, so every terraform plan shows drift.
  * State machines only execute when moto's stepfunctions.execute_state_machine option is on,
    before they are created; its interpreter calls Lambda on localhost:$MOTO_PORT.
  * moto runs Lambda code only in Docker; we run the deployed zip + layers in a clean
    subprocess instead (local/lambda_runner.py), with Lambda's concurrency limits (an
    invocation beyond them answers 429 TooManyRequestsException) and CloudWatch's extraction
    of embedded-metric-format log lines (local/metrics.py).
  * S3 -> EventBridge -> Step Functions (local/events.py): the Object Created event as S3 sends
    it, input transformers, Step Functions targets, dead-letter queues, scheduled rules.
  * S3: deleting the last versions of a key that has a delete marker among them answered 500
    (moto disposed of the marker's missing buffer), so a used bucket's force-destroy failed.
  * local/moto_patches.py: S3 stores a PutObject's SHA-256 without checking it (a wrong one is now
    refused, BadDigest), refused copies into Object Lock buckets; DynamoDB's conditional writes
    were not atomic across concurrent requests; ListObjectVersions deep-copied and sorted every
    stored version, contents included, for every page (a destroy of a used bucket took many
    minutes and gigabytes): now only the page's versions are copied; server access logs were
    one object per request (tens of thousands after a burst), now batched as S3 delivers them;
    a ranged GetObject read the whole object and sliced the range from it (reading a 2 GB source
    back in ranges read 500 GB and outran the plan's 300 s), now only the range is read.
  * The Step Functions interpreter logs a NoSuchJsonPathError for every Choice rule whose
    variable is absent, although the rule (IsPresent) handles it: noise, not a failure.
  * The startExecution integration passed ASL's PascalCase parameters to the SDK unchanged.
  * An intrinsic function was parsed from its JSON text, escapes and all, and its strings kept the
    backslash of an escaped quote or brace: a States.Format template with a quote in it ended
    early or reached the service with the backslash (_patch_intrinsic_strings).
  * Athena and Glue tag calls with the account-less ARNs the provider builds locally missed every
    resource.
  * The Step Functions ASL parser rejects an integer ToleratedFailurePercentage; the workflow
    leaves it out (the default: no failure tolerated).
  * Its Distributed Map counted failed items and succeeded anyway; a map with more failed items
    than it tolerates now fails with States.ExceedToleratedFailureThreshold (once all have run).
  * IAM is enforced (local/iam: the deployer, role sessions for functions and the state
    machine, resource ARNs, denials in each protocol's shape); PIPELINE_LOCAL_IAM=0 turns it off.
  * local/aws_limits.py: what AWS refuses and moto accepted. Definitions with a state name used
    twice anywhere in the machine (Map and Parallel children included), or with anything the
    pinned asl-validator finds, are InvalidDefinition in AWS's words (moto's own InvalidDefinition
    reached clients with an empty error code), and ValidateStateMachineDefinition lists the same
    diagnostics; a Lambda request body over 50 MB zipped is RequestEntityTooLargeException, a
    function, layer, or function with its layers over 250 MB unzipped InvalidParameterValueException;
    a state input over 256 KB after Parameters is States.DataLimitExceeded (moto checked outputs
    only), an output of exactly 256 KB passes (moto refused it), and States.ALL no longer catches
    or retries States.DataLimitExceeded; a States.* error inside a Map iteration or Parallel
    branch reaches the state by its name (moto raised a ValueError: States.Runtime). DynamoDB's
    400 KB item limit is moto's own.
  * local/glue_iceberg.py: Glue UpdateTable ignored VersionId, so of two Iceberg commits at once
    one was silently lost (8 writers kept 1 row of 8); a stale VersionId is now
    ConcurrentModificationException, which pyiceberg retries. The table optimizer API
    (Create/Get/Update/Delete/BatchGetTableOptimizer, ListTableOptimizerRuns) was not
    implemented; configurations are now stored and returned with Glue's refusals, and nothing
    compacts, expires snapshots or deletes orphans locally.
  * local/athena_sql.py: Athena ran no SQL (every query succeeded with no rows). Queries now run
    with DuckDB over the Glue catalog's Iceberg tables read by pyiceberg at their current snapshot,
    FOR VERSION / FOR TIMESTAMP AS OF and the $snapshots, $history, $files tables as Athena has
    them; exact DECIMALs, the result CSV at the output location, GetQueryResults in Athena's
    shape, a failing query FAILED with Athena's StateChangeReason. Not Trino: see its docstring.
  * local/athena_states.py: the Step Functions interpreter refused the optimized Athena
    integration (athena:startQueryExecution.sync was "Unsupported sync callback procedure");
    StartQueryExecution (.sync too), StopQueryExecution, GetQueryExecution and GetQueryResults
    now run against the emulator's Athena on the state machine's role.
Lambda handlers run with sys.path = [zip, layers' python dirs, runtime dir]; the runtime dir
(--runtime-dir / env PIPELINE_LOCAL_RUNTIME_DIR) stands in for the boto3 that Lambda provides:
``python -c "from local.lambda_runner import link_runtime_dir; link_runtime_dir('DIR')"`` makes
one from this venv. Handler output goes to STATE_DIR/logs/<function>.log and to CloudWatch Logs
/aws/lambda/<function>. Step Functions Retry waits really sleep (IntervalSeconds >= 1).
Note: moto URL-encodes object keys in S3 event notifications (handlers unquote them), and
invokes S3-notification/Event-type Lambdas synchronously inside the triggering request.

Extra endpoints on the same server (all JSON):
  GET  /_pipeline/health          -> {"status": "ok"}
  POST /_pipeline/faults          {"function": "ingest-dev", "errorType": "Lambda.ServiceException",
                                   "times": 2, "errorMessage": "optional"}
       The next `times` invocations of that function name return a function error
       (X-Amz-Function-Error: Unhandled, payload {"errorType", "errorMessage", "stackTrace"})
       without running the handler; errorType "timeout" or "Sandbox.Timedout" gives Lambda's
       timeout shape. In Step Functions the error name is the errorType, so Retry/Catch match it.
  GET  /_pipeline/faults          -> pending faults;   DELETE /_pipeline/faults -> clear all.
  GET  /_pipeline/lambda          -> {"limit", "running", "peak", "throttled"}: Lambda concurrency
  POST /_pipeline/lambda          {"limit": 2 | null}: the account's concurrency limit from now on
                                  (peak and throttled counts start again)
  POST /_pipeline/alarms/evaluate -> every metric alarm evaluated now from the stored metric data,
                                  its state set and, on a change, its SNS actions notified as
                                  CloudWatch does (local/alarms.py: moto never evaluates alarms)
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import alarms, aws_limits, iam, lambda_runner

LOG = logging.getLogger("local.emulator")
HOST = "127.0.0.1"


# ------------------------------------------------------------------ Step Functions
def _patch_map_failure_tolerance() -> None:
    """moto's Distributed Map counts a failed item and carries on: with no tolerated failures the
    map still succeeds and the workflow goes on past it. Step Functions fails the Map Run with
    States.ExceedToleratedFailureThreshold once more items failed than it tolerates (neither
    threshold set: none). Here the check runs when every item has run, where Step Functions
    stops at the first failure beyond the threshold: the same outcome, later."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as distributed,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    component = distributed.DistributedIterationComponent
    if getattr(component._map_run, "tolerance_checked", False):
        return
    original = component._map_run

    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        items = record.item_counter
        failed, total = items.failed.get() + items.timed_out.get(), items.total.get()
        tolerated = failed <= record.tolerated_failure_count or (
            total and 100 * failed / total <= record.tolerated_failure_percentage
        )
        if failed and not tolerated:
            env.stack.pop()  # the items' outputs: the map has none
            error = StatesErrorNameType.StatesExceedToleratedFailureThreshold
            raise FailureEventException(
                failure_event=FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=error),
                    event_type=HistoryEventType.ExecutionFailed,
                    event_details=EventDetails(
                        executionFailedEventDetails=ExecutionFailedEventDetails(
                            error=error.to_name(),
                            cause=f"The tolerated failure threshold was exceeded: {failed} of {total} items failed",
                        )
                    ),
                )
            )

    _map_run.tolerance_checked = True  # type: ignore[attr-defined]
    component._map_run = _map_run


def _patch_stepfunctions() -> None:
    from moto.stepfunctions.parser.api import InvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    def validate_state_machine_definition(self: Any) -> str:
        # The checks AWS makes that moto does not (local/aws_limits.py), each its own diagnostic
        # as AWS lists them; then moto's ASL parser, the one that executes machines.
        definition = self._get_param("definition")
        try:
            diagnostics = aws_limits.definition_diagnostics(definition)
            if not diagnostics:
                StepFunctionsParserBackend._validate_definition.__wrapped__(definition)
        except InvalidDefinition as exc:
            message = getattr(exc, "message", None) or str(exc)
            diagnostics = [{"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": message}]
        result = "FAIL" if diagnostics else "OK"
        return json.dumps({"result": result, "diagnostics": diagnostics, "truncated": False})

    def list_state_machine_versions(self: Any) -> str:
        # Terraform only lists versions to find the latest published one; none are tracked here.
        return json.dumps({"stateMachineVersions": []})

    orig_start_execution = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: str | None = None, *args: Any, **kw: Any) -> Any:
        # The executing backend names an unnamed execution "None", so the 2nd unnamed StartExecution
        # fails with ExecutionAlreadyExists; AWS generates a UUID.
        return orig_start_execution(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kw)

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    orig_normalise = StateTaskServiceSfn._normalise_parameters

    def normalise_parameters(self: Any, parameters: dict, *args: Any, **kwargs: Any) -> None:
        # ASL names the startExecution integration's parameters in PascalCase (StateMachineArn,
        # Name, Input); the SDK's shape is camelCase, and moto passes them on unchanged.
        orig_normalise(self, parameters, *args, **kwargs)
        for key in [k for k in parameters if k[:1].isupper()]:
            parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    StateTaskServiceSfn._normalise_parameters = normalise_parameters

    _patch_intrinsic_strings()
    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition
    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions
    StepFunctionsParserBackend.start_execution = start_execution


def _patch_intrinsic_strings() -> None:
    """An intrinsic function is a JSON string of the definition: moto parsed its JSON text as it
    stands, escapes and all, so `\\'` (an escaped quote, written in JSON) ended the function's
    string at the backslash. Its JSON value is parsed now; then, in the function's own strings, a
    backslash escapes the reserved characters ' { } and itself (Step Functions' intrinsic
    functions, "Reserved characters"), where moto kept the backslash of all but a double quote."""
    from moto.stepfunctions.parser.asl.parse import preprocessor as asl
    from moto.stepfunctions.parser.asl.parse.intrinsic.intrinsic_parser import IntrinsicParser
    from moto.stepfunctions.parser.asl.parse.intrinsic.preprocessor import Preprocessor

    if getattr(Preprocessor, "unescapes_reserved", False):
        return
    orig_escaped = Preprocessor._replace_escaped_characters

    def replace_escaped_characters(match: Any) -> str:
        return match.group(1) if match.group(1) in "'{}\\" else orig_escaped(match)

    def visit_string_intrinsic_function(self: Any, ctx: Any) -> Any:
        derivation = json.loads(ctx.STRINGINTRINSICFUNC().getText())
        function, _ = IntrinsicParser.parse(derivation)
        return asl.StringIntrinsicFunction(intrinsic_function_derivation=derivation, function=function)

    Preprocessor._replace_escaped_characters = staticmethod(replace_escaped_characters)
    Preprocessor.unescapes_reserved = True
    asl.Preprocessor.visitString_intrinsic_function = visit_string_intrinsic_function


# ------------------------------------------------------------------ Lambda
def _too_many_requests() -> type:
    from moto.core.exceptions import JsonRESTError

    class TooManyRequestsError(JsonRESTError):
        code = 429

        def __init__(self, reason: str) -> None:
            super().__init__("TooManyRequestsException", "Rate Exceeded.")
            self.description = json.dumps({"Reason": reason, "Type": "User", "message": "Rate Exceeded."})

    return TooManyRequestsError


TooManyRequests: Any = None


def _patch_lambda() -> None:
    global TooManyRequests
    TooManyRequests = _too_many_requests()
    from moto.awslambda.models import LambdaFunction

    orig_init = LambdaFunction.__init__
    orig_get_configuration = LambdaFunction.get_configuration
    orig_update_configuration = LambdaFunction.update_configuration

    def _set_dlq(self: Any, value: dict | None) -> None:
        # UpdateFunctionConfiguration with TargetArn "" removes the DLQ.
        self.dead_letter_config = {"TargetArn": value["TargetArn"]} if value and value.get("TargetArn") else None

    def _set_logging(self: Any, value: dict | None) -> None:
        # moto ignores LoggingConfig; Lambda answers with the format and the log group it uses.
        value = value or {}
        self.logging_config = {
            "LogFormat": value.get("LogFormat", "Text"),
            "LogGroup": value.get("LogGroup") or f"/aws/lambda/{self.function_name}",
            **({"ApplicationLogLevel": value["ApplicationLogLevel"]} if value.get("ApplicationLogLevel") else {}),
            **({"SystemLogLevel": value["SystemLogLevel"]} if value.get("SystemLogLevel") else {}),
        }

    def __init__(self: Any, account_id: str, spec: dict, *args: Any, **kwargs: Any) -> None:
        orig_init(self, account_id, spec, *args, **kwargs)
        _set_dlq(self, spec.get("DeadLetterConfig"))
        _set_logging(self, spec.get("LoggingConfig"))

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict:
        config = orig_get_configuration(self, *args, **kwargs)
        if getattr(self, "dead_letter_config", None):
            config["DeadLetterConfig"] = dict(self.dead_letter_config)
        if getattr(self, "logging_config", None):
            config["LoggingConfig"] = dict(self.logging_config)
        return config

    def update_configuration(self: Any, config_updates: dict) -> dict:
        if "DeadLetterConfig" in config_updates:
            _set_dlq(self, config_updates["DeadLetterConfig"])
        if "LoggingConfig" in config_updates:
            _set_logging(self, {**self.logging_config, **config_updates["LoggingConfig"]})
        return orig_update_configuration(self, config_updates)

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        # Replaces moto's Docker-based invoke: run the real code (see lambda_runner).
        event = json.loads(body) if body else {}
        try:
            payload, errored, logs = lambda_runner.run(self, event)
        except lambda_runner.Throttled as throttled:
            raise TooManyRequests(throttled.reason) from None
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-log-result"] = lambda_runner.tail_log_header(logs)  # moto strips it unless Tail
        return json.dumps(payload).encode("utf-8")

    LambdaFunction.__init__ = __init__
    LambdaFunction.get_configuration = get_configuration
    LambdaFunction.update_configuration = update_configuration
    LambdaFunction.invoke = invoke


# ------------------------------------------------------------------ S3
def _patch_s3() -> None:
    from moto.s3.responses import S3Response

    orig = S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:
        # moto stores EventBridgeConfiguration but leaves it out of the Get response.
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None:
            return orig(self)
        serialized = self.serialized

        def with_eventbridge(action_result: Any) -> Any:
            if isinstance(action_result.result, dict):
                action_result.result["EventBridgeConfiguration"] = {}
            return serialized(action_result)

        self.serialized = with_eventbridge  # a new S3Response is made per request
        return orig(self)

    S3Response.get_bucket_notification = get_bucket_notification

    from moto.iam.access_control import IAMPolicy
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        # moto ignores policy conditions, so the buckets' "Deny when aws:SecureTransport is
        # false" would deny every request. The emulator is plain HTTP on loopback standing in
        # for AWS's HTTPS endpoints, so that Deny never applies; moto cannot evaluate the other
        # conditional statements (log delivery's SourceAccount) either, so they are left out.
        if self.policy is None:
            return orig_get_permission(self, action, resource)
        document = json.loads(self.policy.decode())
        statements = document.get("Statement", [])
        kept = [st for st in (statements if isinstance(statements, list) else [statements]) if not st.get("Condition")]
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    orig_get_permission = FakeBucket.get_permission
    FakeBucket.get_permission = get_permission


def _patch_account_less_arns() -> None:
    """The provider, running without an account id locally, names Athena and Glue resources by
    ARNs with an empty account field; moto keys their tags by the full ARN, so every tag call
    missed (and every plan showed the tags to add)."""
    from moto.athena.responses import AthenaResponse
    from moto.glue.responses import GlueResponse

    def with_account(method: Any, param: str) -> Any:
        def call(self: Any) -> Any:
            arn = self._get_param(param) or ""
            parts = arn.split(":")
            if len(parts) > 5 and parts[4] == "":
                parts[4] = self.current_account
                self._get_param = _overriding(self._get_param, param, ":".join(parts))
                body = json.loads(self.body or "{}")
                if isinstance(body, dict) and param in body:  # Glue reads its parameters from the body
                    self.body = json.dumps({**body, param: ":".join(parts)})
            return method(self)

        return call

    for response, param, names in (
        (AthenaResponse, "ResourceARN", ("list_tags_for_resource", "tag_resource", "untag_resource")),
        (GlueResponse, "ResourceArn", ("get_tags", "tag_resource", "untag_resource")),
    ):
        for name in names:
            setattr(response, name, with_account(getattr(response, name), param))


def _overriding(get_param: Any, name: str, value: Any) -> Any:
    def patched(param: str, *args: Any, **kwargs: Any) -> Any:
        return value if param == name else get_param(param, *args, **kwargs)

    return patched


def _patch_ec2() -> None:
    from moto.ec2.models.security_groups import SecurityGroupRule

    # moto keeps a rule's description only for CIDR rules; a prefix-list rule (the Lambda
    # security group's HTTPS egress to the gateway endpoints) and a rule referencing a group (its
    # description is kept with the group: the Glue endpoint's rules) lose it, so every plan drifts.
    original_init = SecurityGroupRule.__init__
    signature = inspect.signature(original_init)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        prefix_list = signature.bind(self, *args, **kwargs).arguments.get("prefix_list_id") or {}
        self._prefix_list_description = prefix_list.get("Description")

    SecurityGroupRule.__init__ = __init__
    SecurityGroupRule.description = property(
        lambda self: self.ip_range.get("Description")
        or getattr(self, "_prefix_list_description", None)
        or (self.source_group or {}).get("Description")
    )


_patched = False


def apply_patches() -> None:
    global _patched
    if not _patched:
        from local import athena_sql, athena_states, events, glue_iceberg, moto_patches

        _patch_stepfunctions()
        aws_limits.apply()
        _patch_map_failure_tolerance()
        _patch_lambda()
        _patch_s3()
        _patch_ec2()
        _patch_account_less_arns()
        events.install()
        moto_patches.apply_s3_checksums()
        moto_patches.apply_atomic_dynamodb_writes()
        moto_patches.apply_s3_version_listing()
        moto_patches.apply_s3_access_log_batching()
        moto_patches.apply_s3_ranged_reads()
        moto_patches.apply_s3_delete_marker_disposal()
        glue_iceberg.apply()
        athena_sql.apply()
        athena_states.apply()
        _patched = True
    iam.install()  # IAM enforcement (local/iam): on unless PIPELINE_LOCAL_IAM=0


# ------------------------------------------------------------------ WSGI wrapper
_protocols: dict[str, str] = {}


def _protocol(environ: dict) -> str:
    """Best guess of the caller's AWS protocol, to shape the 501 error body it can parse."""
    ctype = environ.get("CONTENT_TYPE", "")
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in ctype:
        return "json"
    if "x-www-form-urlencoded" in ctype:
        return "query"
    auth = environ.get("HTTP_AUTHORIZATION", "")  # ... Credential=AK/date/region/SERVICE/aws4_request
    service = auth.split("Credential=")[-1].split("/")[3] if "Credential=" in auth else ""
    if service and service not in _protocols:
        try:
            import botocore.session

            _protocols[service] = botocore.session.get_session().get_service_model(service).protocol
        except Exception:  # noqa: BLE001 - signing name that is not a botocore service name
            _protocols[service] = "json"
    return "xml" if _protocols.get(service) == "rest-xml" else "json"


def _respond(start_response: Any, status: str, body: bytes, headers: list | None = None) -> list[bytes]:
    start_response(status, [("Content-Length", str(len(body))), *(headers or [])])
    return [body]


class PipelineApp:
    """moto's WSGI app + /_pipeline endpoints + 501 for NotImplementedError."""

    def __init__(self, moto_app: Any) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_pipeline/"):
            return self._pipeline(path, environ, start_response)
        try:
            return self.moto_app(environ, start_response)
        except NotImplementedError as exc:  # moto's Flask apps run with debug=True: errors propagate
            return self._not_implemented(str(exc), environ, start_response)

    def _not_implemented(self, message: str, environ: dict, start_response: Any) -> list[bytes]:
        LOG.warning("501 Not Implemented: %s", message)
        proto = _protocol(environ)
        if proto == "json":
            body = json.dumps({"__type": "NotImplemented", "message": message}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", "NotImplemented")]
        else:
            from xml.sax.saxutils import escape

            error = f"<Error><Type>Sender</Type><Code>NotImplemented</Code><Message>{escape(message)}</Message></Error>"
            body = (f"<ErrorResponse>{error}</ErrorResponse>" if proto == "query" else error).encode()
            headers = [("Content-Type", "text/xml")]
        return _respond(start_response, "501 Not Implemented", body, headers)

    def _pipeline(self, path: str, environ: dict, start_response: Any) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        status = "200 OK"
        if path == "/_pipeline/health":
            result: Any = {"status": "ok"}
        elif path == "/_pipeline/faults" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                req = json.loads(environ["wsgi.input"].read(length) or b"{}")
                lambda_runner.FAULTS.add(
                    req["function"], req["errorType"], int(req.get("times", 1)), req.get("errorMessage")
                )
                result = lambda_runner.FAULTS.snapshot()
            except (ValueError, KeyError, TypeError) as exc:
                status, result = "400 Bad Request", {"message": f"bad fault request: {exc!r}"}
        elif path == "/_pipeline/faults" and method == "GET":
            result = lambda_runner.FAULTS.snapshot()
        elif path == "/_pipeline/faults" and method == "DELETE":
            lambda_runner.FAULTS.clear()
            result = {}
        elif path == "/_pipeline/lambda" and method == "GET":
            result = lambda_runner.SLOTS.snapshot()
        elif path == "/_pipeline/lambda" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                req = json.loads(environ["wsgi.input"].read(length) or b"{}")
                limit = req.get("limit")
                lambda_runner.CONFIG.concurrency = None if limit is None else int(limit)
                lambda_runner.SLOTS.reset_counts()
                result = lambda_runner.SLOTS.snapshot()
            except (ValueError, TypeError) as exc:
                status, result = "400 Bad Request", {"message": f"bad concurrency request: {exc!r}"}
        elif path.startswith("/_pipeline/alarms"):
            status, result = alarms.endpoint(method, path)
        elif path.startswith("/_pipeline/iam"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            status, result = iam.endpoint(method, path, body)
        else:
            status, result = "404 Not Found", {"message": f"no such endpoint: {method} {path}"}
        return _respond(start_response, status, json.dumps(result).encode(), [("Content-Type", "application/json")])


# ------------------------------------------------------------------ lifecycle
@dataclass
class EmulatorHandle:
    server: Any
    thread: threading.Thread
    port: int
    state_dir: Path
    scheduler: Any = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        lambda_runner.ENVIRONMENTS.clear()


def start(
    port: int = 4566, state_dir: str | os.PathLike | None = None, runtime_dir: str | None = None
) -> EmulatorHandle:
    """Start the emulator in a background thread (port 0 = any free port). One per process:
    moto's backends, settings and the Lambda runner's config are process-global."""
    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    apply_patches()
    state_dir = Path(state_dir or tempfile.mkdtemp(prefix="pipeline-emulator-")).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    app = PipelineApp(DomainDispatcherApplication(create_backend_app))
    server = make_server(HOST, port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_port

    # Must be on before any state machine is created (it selects moto's executing backend).
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    os.environ["MOTO_PORT"] = str(port)  # the SFN interpreter calls Lambda/SNS on localhost:$MOTO_PORT
    lambda_runner.CONFIG.port = port
    lambda_runner.CONFIG.state_dir = state_dir
    lambda_runner.CONFIG.runtime_dir = runtime_dir or os.environ.get("PIPELINE_LOCAL_RUNTIME_DIR")
    if not lambda_runner.CONFIG.runtime_dir:
        LOG.warning("PIPELINE_LOCAL_RUNTIME_DIR not set: Lambda handlers will not find boto3")

    thread = threading.Thread(target=server.serve_forever, name="pipeline-emulator", daemon=True)
    thread.start()
    from local.events import Scheduler

    scheduler = Scheduler()
    scheduler.start()
    return EmulatorHandle(server, thread, port, state_dir, scheduler)


def wait_until_ready(url: str, timeout: float = 30.0) -> None:
    """Poll <url>/_pipeline/health until it answers 200, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/_pipeline/health", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"emulator at {url} not ready after {timeout}s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--state-dir", help="Lambda code cache and per-function logs (default: a temp dir)")
    parser.add_argument("--runtime-dir", help="dir with boto3 & deps for handlers (env PIPELINE_LOCAL_RUNTIME_DIR)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    handle = start(args.port, args.state_dir, args.runtime_dir)
    wait_until_ready(handle.url)
    print(f"state dir {handle.state_dir}", flush=True)
    print(f"emulator ready on {handle.url}", flush=True)
    stop.wait()
    handle.stop()
    print("emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
