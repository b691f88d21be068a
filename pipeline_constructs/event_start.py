"""Executions started by EventBridge: an upload rule or a schedule, a retry policy, and an
encrypted dead-letter queue (with a policy letting only these rules write to it)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetDeadLetterConfig,
    CloudwatchEventTargetInputTransformer,
    CloudwatchEventTargetRetryPolicy,
)
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy

from pipeline_constructs.framework import Construct
from pipeline_constructs.iam import Condition, Statement, policy_document

# EventBridge retries a failed delivery for a day before giving up to the dead-letter queue.
MAX_EVENT_AGE_SECONDS = 24 * 3600
MAX_DELIVERY_ATTEMPTS = 185
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600


class DeadLetterQueue(Construct):
    def __init__(self, scope: Construct, id_: str, *, name: str, kms_key_arn: str) -> None:
        super().__init__(scope, id_)
        self.queue = SqsQueue(
            self,
            "queue",
            name=name,
            kms_master_key_id=kms_key_arn,
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
        )

    def allow(self, *, rule_arns: list[str]) -> None:
        SqsQueuePolicy(
            self,
            "policy",
            queue_url=self.queue.url,
            policy=policy_document(
                self,
                "policy-document",
                statements=[
                    Statement(
                        sid="UndeliveredEventsOfTheseRules",
                        actions=["sqs:SendMessage"],
                        resources=[self.queue.arn],
                        principals={"Service": ["events.amazonaws.com"]},
                        conditions=[Condition(test="ArnEquals", variable="aws:SourceArn", values=rule_arns)],
                    )
                ],
            ).json,
        )


class EventStart(Construct):
    """A rule (event pattern or schedule) starting the state machine."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        description: str,
        state_machine_arn: str,
        role_arn: str,
        dead_letter: DeadLetterQueue,
        event_pattern: Mapping | None = None,
        schedule: str | None = None,
        input_template: str | None = None,
        constant_input: Mapping | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.rule = CloudwatchEventRule(
            self,
            "rule",
            name=name,
            description=description,
            event_pattern=json.dumps(event_pattern) if event_pattern else None,
            schedule_expression=schedule,
        )
        CloudwatchEventTarget(
            self,
            "target",
            rule=self.rule.name,
            arn=state_machine_arn,
            role_arn=role_arn,
            input=json.dumps(constant_input) if constant_input else None,
            input_transformer=(
                CloudwatchEventTargetInputTransformer(input_template=input_template) if input_template else None
            ),
            retry_policy=CloudwatchEventTargetRetryPolicy(
                maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS, maximum_retry_attempts=MAX_DELIVERY_ATTEMPTS
            ),
            dead_letter_config=CloudwatchEventTargetDeadLetterConfig(arn=dead_letter.queue.arn),
        )
