"""What AWS refuses and moto accepted: the emulator's refusals, each as AWS words it.

* State machine definitions (CreateStateMachine, UpdateStateMachine, ValidateStateMachineDefinition):
  state names unique across the whole machine, Map and Parallel children included (checked here,
  in Python, so the rule holds without node), and every check of the pinned ``asl-validator``
  (package.json), run with node from the project's node_modules when it is installed.
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinitionDiagnostic.html
* Lambda packages (CreateFunction, UpdateFunctionCode, PublishLayerVersion, and the layers of
  UpdateFunctionConfiguration): a request body of 69,905,067 bytes or more (a direct upload of
  50 MB zipped, base64 in JSON) is RequestEntityTooLargeException; a function or layer that unzips
  to more than 262,144,000 bytes, or a function whose code and layers together do, is
  InvalidParameterValueException. Content from S3 is held to the unzipped limit only.
  https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
* Step Functions payloads: a state's input after Parameters, or its output, over 262,144 bytes of
  UTF-8 fails the execution with States.DataLimitExceeded, which States.ALL does not catch or retry,
  also from inside a Map iteration or a Parallel branch (moto turned any States.* error of a child
  into a ValueError there).
  https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html and
  https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
DynamoDB's 400 KB item limit needs nothing here: moto 5.2 refuses PutItem and UpdateItem beyond it.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

LOG = logging.getLogger("local.aws_limits")
REPO = Path(__file__).resolve().parent.parent
ASL_VALIDATOR = REPO / "node_modules" / "asl-validator"

# ------------------------------------------------------------------ state machine definitions
# asl-validator's codes where AWS names the same rule differently.
_AWS_CODES = {"DUPLICATE_STATE_NAMES": "DUPLICATE_STATE_NAME", "MISSING_TERMINAL_STATE": "MISSING_END_STATE"}
_NODE_SCRIPT = """
const validate = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const { errors } = validate(JSON.parse(input), { checkArn: true, checkPaths: true });
  process.stdout.write(JSON.stringify(errors || []));
});
"""


class _JsonObject(dict):
    """A JSON object that remembers the keys it was given more than once (json keeps the last)."""

    repeated: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject(pairs)
    seen: set[str] = set()
    obj.repeated = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return obj


def _diagnostic(code: str, message: str, location: str) -> dict[str, str]:
    return {"severity": "ERROR", "code": code, "message": message, "location": location}


def _duplicate_names(definition: Any) -> list[dict[str, str]]:
    """State names must be unique within the scope of the whole state machine (ASL spec): every
    States object, the top level's, each Map's ItemProcessor (or Iterator) and each Parallel branch."""
    found: list[dict[str, str]] = []
    first_seen: dict[str, str] = {}

    def walk(machine: Any, path: str) -> None:
        states = machine.get("States") if isinstance(machine, dict) else None
        if not isinstance(states, dict):
            return
        for name in getattr(states, "repeated", []):
            found.append(_diagnostic("DUPLICATE_STATE_NAME", f"Duplicate State name: {name}", f"{path}/States"))
        for name, state in states.items():
            where = f"{path}/States/{name}"
            if name in first_seen:
                found.append(
                    _diagnostic(
                        "DUPLICATE_STATE_NAME", f"Duplicate State name: {name} (also at {first_seen[name]})", where
                    )
                )
            else:
                first_seen[name] = where
            if not isinstance(state, dict):
                continue
            for child in ("ItemProcessor", "Iterator"):
                walk(state.get(child), f"{where}/{child}")
            for index, branch in enumerate(state.get("Branches") or []):
                walk(branch, f"{where}/Branches/{index}")

    walk(definition, "")
    return found


def _asl_validator(definition: Any) -> list[dict[str, str]]:
    """The pinned asl-validator's errors, in AWS's diagnostic shape; none when node or the package
    is missing (``make install`` installs it), which is logged once."""
    node = shutil.which("node")
    if node is None or not ASL_VALIDATOR.is_dir():
        if not getattr(_asl_validator, "warned", False):
            LOG.warning("asl-validator not run: %s", "no node" if node is None else f"{ASL_VALIDATOR} missing")
            _asl_validator.warned = True  # type: ignore[attr-defined]
        return []
    result = subprocess.run(  # noqa: S603 - fixed argv: node and the project's own package
        [node, "-e", _NODE_SCRIPT, str(ASL_VALIDATOR)],
        input=json.dumps(definition),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"asl-validator failed (exit {result.returncode}): {result.stderr.strip()}")
    return [
        _diagnostic(
            _AWS_CODES.get(error["Error code"], error["Error code"]),
            error["Message"],
            (error.get("schemaError") or {}).get("instancePath", ""),
        )
        for error in json.loads(result.stdout)
    ]


def definition_diagnostics(definition: str) -> list[dict[str, str]]:
    """Every error AWS would report for this ASL definition that moto's parser lets through."""
    try:
        parsed = json.loads(definition, object_pairs_hook=_object)
    except (TypeError, ValueError) as exc:
        return [_diagnostic("INVALID_JSON_DESCRIPTION", str(exc), "")]
    duplicates = _duplicate_names(parsed)
    others = [d for d in _asl_validator(parsed) if not (duplicates and d["code"] == "DUPLICATE_STATE_NAME")]
    return duplicates + others


def invalid_definition_message(diagnostics: list[dict[str, str]]) -> str:
    """CreateStateMachine's InvalidDefinition message, as AWS words it."""
    listed = ", ".join(
        f"'{d['code']}: {d['message']}" + (f" at {d['location']}'" if d["location"] else "'") for d in diagnostics
    )
    return f"Invalid State Machine Definition: {listed}"


def apply_state_machine_validation() -> None:
    """moto validates a definition only by parsing it; AWS also refuses what the diagnostics find."""
    from moto.stepfunctions.parser.api import InvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend._validate_definition
    if getattr(original, "diagnosed", False):
        return

    def _validate_definition(definition: str) -> None:
        # AWS's diagnostics first: moto's parser refuses a state name given twice in one States
        # object too, in words of its own. Its InvalidDefinition has no error type (clients saw
        # an empty code): it is named here.
        diagnostics = definition_diagnostics(definition)
        if diagnostics:
            raise InvalidDefinition(message=invalid_definition_message(diagnostics), exception_type="InvalidDefinition")
        try:
            original(definition=definition)
        except InvalidDefinition as exc:
            if exc.error_type:
                raise
            raise InvalidDefinition(message=exc.message, exception_type="InvalidDefinition") from None

    _validate_definition.diagnosed = True  # type: ignore[attr-defined]
    _validate_definition.__wrapped__ = original  # type: ignore[attr-defined]  # moto's parse alone
    StepFunctionsParserBackend._validate_definition = staticmethod(_validate_definition)


# ------------------------------------------------------------------ Lambda packages
# Lambda's quotas page: 50 MB zipped for a direct upload (a request body, the zip base64 in JSON,
# under 69,905,067 bytes), 250 MB unzipped for a function's code and all its layers.
MAX_DIRECT_UPLOAD_REQUEST_BYTES = 69_905_067
MAX_UNZIPPED_BYTES = 262_144_000


def unzipped_size(zip_bytes: bytes) -> int:
    """The extracted size of a package, from its central directory (nothing is extracted)."""
    if not zip_bytes:
        return 0
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            return sum(entry.file_size for entry in archive.infolist())
    except zipfile.BadZipFile:
        return 0  # Lambda's own refusal of a bad zip is moto's to make


def _errors() -> tuple[type, type]:
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.core.exceptions import JsonRESTError

    class RequestEntityTooLarge(JsonRESTError):
        code = 413

        def __init__(self, message: str) -> None:
            super().__init__("RequestEntityTooLargeException", message)

    return RequestEntityTooLarge, InvalidParameterValueException


def _code_bytes(content: dict[str, Any], account_id: str, region: str) -> bytes:
    """A FunctionCode / LayerVersionContentInput's zip: inline, or the S3 object it names."""
    from moto.awslambda.models import _validate_s3_bucket_and_key
    from moto.utilities.utils import get_partition

    if content.get("ZipFile"):
        return base64.b64decode(content["ZipFile"])
    if content.get("S3Bucket") and content.get("S3Key"):
        key = _validate_s3_bucket_and_key(account_id, partition=get_partition(region), data=content)
        return key.value if key else b""
    return b""


def _layers_size(account_id: str, region: str, layer_arns: list[str] | None) -> int:
    from moto.awslambda.utils import get_backend

    backend = get_backend(account_id, region)
    total = 0
    for arn in layer_arns or []:
        layer = backend.layers_versions_by_arn(arn)
        total += unzipped_size(layer.code_bytes) if layer else 0
    return total


def _check_unzipped(own: int, layers: int) -> None:
    _, invalid = _errors()
    if own > MAX_UNZIPPED_BYTES:
        raise invalid(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")
    if own + layers > MAX_UNZIPPED_BYTES:
        raise invalid(
            f"Function code combined with layers exceeds the maximum allowed size of {MAX_UNZIPPED_BYTES} bytes. "
            f"The actual size is {own + layers} bytes."
        )


def _layer_arns(layers: list[Any] | None) -> list[str]:
    return [layer if isinstance(layer, str) else layer.get("Arn", "") for layer in layers or []]


def apply_lambda_package_limits() -> None:
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.awslambda.responses import LambdaResponse

    if getattr(LambdaBackend.create_function, "limited", False):
        return
    too_large, _ = _errors()

    def request_limited(method: Any, operation: str) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if len(self.body or b"") >= MAX_DIRECT_UPLOAD_REQUEST_BYTES:
                limit = MAX_DIRECT_UPLOAD_REQUEST_BYTES
                raise too_large(f"Request must be smaller than {limit} bytes for the {operation} operation")
            return method(self, *args, **kwargs)

        return call

    for name, operation in (
        ("create_function", "CreateFunction"),
        ("update_function_code", "UpdateFunctionCode"),
        ("publish_layer_version", "PublishLayerVersion"),
    ):
        setattr(LambdaResponse, name, request_limited(getattr(LambdaResponse, name), operation))

    create_function = LambdaBackend.create_function
    publish_layer_version = LambdaBackend.publish_layer_version
    update_function_code = LambdaFunction.update_function_code
    update_configuration = LambdaFunction.update_configuration

    def checked_create_function(self: Any, spec: dict[str, Any]) -> Any:
        code = _code_bytes(spec.get("Code") or {}, self.account_id, self.region_name)
        _check_unzipped(unzipped_size(code), _layers_size(self.account_id, self.region_name, spec.get("Layers")))
        return create_function(self, spec)

    def checked_publish_layer_version(self: Any, spec: dict[str, Any]) -> Any:
        _check_unzipped(unzipped_size(_code_bytes(spec.get("Content") or {}, self.account_id, self.region_name)), 0)
        return publish_layer_version(self, spec)

    def checked_update_function_code(self: Any, updated_spec: dict[str, Any]) -> Any:
        code = _code_bytes(updated_spec, self.account_id, self.region)
        if code:
            _check_unzipped(unzipped_size(code), _layers_size(self.account_id, self.region, _layer_arns(self.layers)))
        return update_function_code(self, updated_spec)

    def checked_update_configuration(self: Any, config_updates: dict[str, Any]) -> Any:
        if "Layers" in config_updates:
            layers = _layers_size(self.account_id, self.region, _layer_arns(config_updates["Layers"]))
            _check_unzipped(unzipped_size(self.code_bytes), layers)
        return update_configuration(self, config_updates)

    checked_create_function.limited = True  # type: ignore[attr-defined]
    LambdaBackend.create_function = checked_create_function
    LambdaBackend.publish_layer_version = checked_publish_layer_version
    LambdaFunction.update_function_code = checked_update_function_code
    LambdaFunction.update_configuration = checked_update_configuration


# ------------------------------------------------------------------ Step Functions payloads
MAX_PAYLOAD_BYTES = 262_144  # "Length Constraints: Maximum length of 262144", bytes of UTF-8


def apply_state_payload_limits() -> None:
    """moto checks a state's output (and a task's result) against 256 KB, but: it refuses exactly
    262,144 bytes, which AWS accepts, and counts the spaces its own JSON encoding adds; it never
    checks the input Parameters make; and its States.ALL catches and retries
    States.DataLimitExceeded, which AWS makes terminal."""
    from moto.stepfunctions.parser import quotas
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.common.parargs import Parameters
    from moto.stepfunctions.parser.asl.component.state import state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    if getattr(quotas.is_within_size_quota, "inclusive", False):
        return

    def is_within_size_quota(value: Any) -> bool:
        # As the execution history shows it: compact JSON (moto measured it with spaces after , and :).
        text = value if isinstance(value, str) else to_json_str(value, separators=(",", ":"))
        return len(text.encode("utf-8")) <= MAX_PAYLOAD_BYTES

    is_within_size_quota.inclusive = True  # type: ignore[attr-defined]
    for module in (quotas, state, state_task_lambda, state_task_service):
        module.is_within_size_quota = is_within_size_quota

    data_limit = StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded)
    matches = ErrorEqualsDecl._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        matches(self, env)
        if error_name == data_limit and data_limit not in self.error_names:
            env.stack[-1] = False  # only a rule naming it matches it; States.ALL does not

    ErrorEqualsDecl._eval_body = _eval_body

    evaluate_parameters = Parameters._eval_body

    def parameters_eval_body(self: Any, env: Any) -> None:
        evaluate_parameters(self, env)
        if not is_within_size_quota(env.stack[-1]):
            _raise_data_limit(env, "The state input after Parameters processing exceeds the maximum number of bytes")

    Parameters._eval_body = parameters_eval_body


def apply_child_error_names() -> None:
    """A Map iteration's or Parallel branch's error reaches the state by its name; moto rebuilt
    every name as a custom one, and a custom name may not begin with "States.": any States.*
    error inside a Map or Parallel (States.DataLimitExceeded, States.Timeout, States.TaskFailed)
    became a ValueError, reported as States.Runtime, or was caught as if it were any error."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    if getattr(branches_decl.CustomErrorName, "states_aware", False):
        return

    def error_name(error_name: str) -> Any:
        if str(error_name).startswith("States."):
            try:
                return StatesErrorName.from_name(error_name)
            except ValueError:
                pass
        return CustomErrorName(error_name=error_name)

    error_name.states_aware = True  # type: ignore[attr-defined]
    iteration_worker.CustomErrorName = error_name
    branches_decl.CustomErrorName = error_name


def _raise_data_limit(env: Any, cause: str) -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    error = StatesErrorNameType.StatesStatesDataLimitExceeded
    raise FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(
                    error=error.to_name(), cause=f"{cause} service limit ({MAX_PAYLOAD_BYTES})."
                )
            ),
        )
    )


def apply() -> None:
    apply_state_machine_validation()
    apply_lambda_package_limits()
    apply_state_payload_limits()
    apply_child_error_names()
