"""Step Functions' optimized Athena integration in moto's interpreter.

moto lists athena among the services it does not integrate: a Task whose Resource is
`arn:aws:states:::athena:startQueryExecution.sync` fails ("Unsupported Sync callback
procedure"), and `...:athena:getQueryResults` is forwarded with a warning. Step Functions
supports StartQueryExecution as request-response and as Run a Job (.sync), and
StopQueryExecution, GetQueryExecution and GetQueryResults as request-response
(https://docs.aws.amazon.com/step-functions/latest/dg/connect-athena.html). Here:
  * each of the four calls the emulator's Athena (local/athena_sql.py) with the state
    machine's role session, its output the API's response (timestamps as epoch milliseconds);
  * `.sync` polls GetQueryExecution until the query ends: SUCCEEDED gives the
    GetQueryExecution response ({"QueryExecution": {...}}); FAILED or CANCELLED fails the
    task with States.TaskFailed, the cause that response as JSON, as the Glue .sync integration
    does in moto's interpreter;
  * an error answer of Athena fails the task as Athena.<error code>, the cause its message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_PARAMETERS = {
    "startqueryexecution": {
        "ClientRequestToken",
        "ExecutionParameters",
        "QueryExecutionContext",
        "QueryString",
        "ResultConfiguration",
        "ResultReuseConfiguration",
        "WorkGroup",
    },
    "stopqueryexecution": {"QueryExecutionId"},
    "getqueryexecution": {"QueryExecutionId"},
    "getqueryresults": {"MaxResults", "NextToken", "QueryExecutionId"},
}


def _millis(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_millis(v) for v in value]
    return value


def _service_class() -> type:
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    class StateTaskServiceAthena(StateTaskServiceCallback):
        def __init__(self) -> None:
            # WaitForTaskToken only so that moto's _eval_integration_pattern sets up the callback
            # endpoint it interrupts at the end (None otherwise: an AttributeError hid the outcome);
            # Athena has no .waitForTaskToken, refused below.
            super().__init__(
                supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
            )

        def _assert_integration_pattern_is_supported(self) -> None:
            if self.resource.condition not in (None, ResourceCondition.Sync):
                raise RuntimeError(
                    f"Unsupported {self.resource.condition} callback procedure in resource {self.resource.resource_arn}"
                )
            if (
                self.resource.condition == ResourceCondition.Sync
                and self.resource.api_action.lower() != "startqueryexecution"
            ):
                raise RuntimeError(f"Unsupported .sync callback procedure in resource {self.resource.resource_arn}")

        def _get_supported_parameters(self) -> set[str] | None:
            return _PARAMETERS.get(self.resource.api_action.lower())

        def _client(self, runtime: Any, credentials: Any) -> Any:
            # Looked up on the module at call time: local/iam replaces it with role sessions.
            return boto_client.boto_client_for(region=runtime.region, service="athena", state_credentials=credentials)

        def _from_error(self, env: Any, ex: Exception) -> Any:
            if isinstance(ex, ClientError):
                name = f"Athena.{ex.response['Error']['Code']}"
                return FailureEvent(
                    env=env,
                    error_name=CustomErrorName(name),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            error=name,
                            cause=ex.response["Error"]["Message"],
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
            return super()._from_error(env=env, ex=ex)

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> None:
            client = self._client(resource_runtime_part, state_credentials)
            response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
            response.pop("ResponseMetadata", None)
            env.stack.append(_millis(response))

        def _build_sync_resolver(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
        ) -> Any:
            started = env.stack.pop()  # StartQueryExecution's answer
            query_id = started["QueryExecutionId"]
            client = self._client(resource_runtime_part, state_credentials)

            def resolve() -> Any:
                response = client.get_query_execution(QueryExecutionId=query_id)
                response.pop("ResponseMetadata", None)
                state = response["QueryExecution"]["Status"]["State"]
                if state in ("QUEUED", "RUNNING"):
                    return None  # moto's loop polls again after its own delay
                response = _millis(response)
                if state == "SUCCEEDED":
                    return response
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=to_json_str(response),
                            )
                        ),
                    )
                )

            return resolve

    return StateTaskServiceAthena


def apply() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    original = state_task_factory.state_task_service_for
    if getattr(original, "integrates_athena", False):
        return
    service = _service_class()

    def state_task_service_for(service_name: str) -> Any:
        return service() if service_name == "athena" else original(service_name=service_name)

    state_task_service_for.integrates_athena = True  # type: ignore[attr-defined]
    state_task_factory.state_task_service_for = state_task_service_for
