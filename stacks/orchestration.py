"""The state machine, the alert topic, the alarms and the pipeline-health dashboard."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.sfn_state_machine import (
    SfnStateMachine,
    SfnStateMachineLoggingConfiguration,
    SfnStateMachineTracingConfiguration,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription

from pipeline_constructs.alarms import count_alarm
from pipeline_constructs.framework import Construct, Fn, TerraformOutput
from pipeline_constructs.iam import WRITE_TRACES, Condition, Statement, policy_document, service_trust
from pipeline_constructs.workflow import RetryPolicy, TaskFunction, build_definition
from stacks import parameters
from stacks.base import LayerStack
from stacks.config import PipelineConfig


class OrchestrationStack(LayerStack):
    def __init__(self, scope: Construct, *, config: PipelineConfig) -> None:
        super().__init__(scope, config=config, layer="orchestration")
        kms_key_arn = self.imported(parameters.KMS_KEY_ARN)
        function_arns = {fn: self.imported(parameters.function_arn(fn)) for fn in config.functions}
        function_names = {fn: Fn.element(Fn.split(":", arn), 6) for fn, arn in function_arns.items()}

        topic = SnsTopic(self, "alerts", name=self.name("alerts"), kms_master_key_id=kms_key_arn)
        SnsTopicPolicy(self, "alerts-policy", arn=topic.arn, policy=self._topic_policy(topic.arn))
        if config.alert_email:
            SnsTopicSubscription(
                self, "alerts-email", topic_arn=topic.arn, protocol="email", endpoint=config.alert_email
            )

        log_group = CloudwatchLogGroup(
            self,
            "executions",
            name=f"/aws/vendedlogs/states/{self.name('workflow')}",
            retention_in_days=config.log_retention_days,
            kms_key_id=kms_key_arn,
        )
        role = self._execution_role(function_arns, topic_arn=topic.arn, kms_key_arn=kms_key_arn)
        definition = build_definition(
            functions={
                fn: TaskFunction(arn=arn, timeout_seconds=config.functions[fn].timeout_seconds)
                for fn, arn in function_arns.items()
            },
            alert_topic_arn=topic.arn,
            retry=RetryPolicy(interval_seconds=config.retry_interval_seconds, max_attempts=config.retry_max_attempts),
        )
        self.state_machine = SfnStateMachine(
            self,
            "workflow",
            name=self.name("workflow"),
            type="STANDARD",
            role_arn=role.arn,
            definition=json.dumps(definition, indent=2),
            logging_configuration=SfnStateMachineLoggingConfiguration(
                log_destination=f"{log_group.arn}:*", include_execution_data=False, level="ALL"
            ),
            tracing_configuration=SfnStateMachineTracingConfiguration(enabled=True),
        )
        self._alarms(function_names, topic_arn=topic.arn)
        self._dashboard(function_names)

        self.export(parameters.STATE_MACHINE_ARN, self.state_machine.arn, description="Pipeline state machine")
        self.export(parameters.ALERT_TOPIC_ARN, topic.arn, description="Alert topic")
        TerraformOutput(self, "state_machine_arn", value=self.state_machine.arn)

    def _topic_policy(self, topic_arn: str) -> str:
        return policy_document(
            self,
            "alerts-policy-document",
            statements=[
                Statement(
                    sid="AlarmsOfThisAccountPublish",
                    actions=["sns:Publish"],
                    resources=[topic_arn],
                    principals={"Service": ["cloudwatch.amazonaws.com"]},
                    conditions=[Condition(test="StringEquals", variable="aws:SourceAccount", values=[self.account_id])],
                ),
                Statement(
                    sid="DenyInsecureTransport",
                    effect="Deny",
                    actions=["sns:Publish", "sns:Subscribe"],
                    resources=[topic_arn],
                    principals={"AWS": ["*"]},
                    conditions=[Condition(test="Bool", variable="aws:SecureTransport", values=["false"])],
                ),
            ],
        ).json

    def _execution_role(self, function_arns: dict[str, str], *, topic_arn: str, kms_key_arn: str) -> IamRole:
        role = IamRole(
            self,
            "workflow-role",
            name=self.name("workflow"),
            assume_role_policy=service_trust(
                self, "workflow-trust", service="states.amazonaws.com", account_id=self.account_id
            ).json,
        )
        arns = list(function_arns.values())
        IamRolePolicy(
            self,
            "workflow-policy",
            role=role.id,
            name="least-privilege",
            policy=policy_document(
                self,
                "workflow-permissions",
                statements=[
                    Statement(
                        sid="InvokePipelineFunctions",
                        actions=["lambda:InvokeFunction"],
                        resources=[*arns, *(f"{arn}:*" for arn in arns)],
                    ),
                    Statement(sid="PublishAlerts", actions=["sns:Publish"], resources=[topic_arn]),
                    Statement(
                        sid="UseKeyOfEncryptedTopic",
                        actions=["kms:Decrypt", "kms:GenerateDataKey"],
                        resources=[kms_key_arn],
                    ),
                    Statement(
                        sid="DeliverExecutionLogs",
                        actions=[
                            "logs:CreateLogDelivery",
                            "logs:GetLogDelivery",
                            "logs:UpdateLogDelivery",
                            "logs:DeleteLogDelivery",
                            "logs:ListLogDeliveries",
                            "logs:PutResourcePolicy",
                            "logs:DescribeResourcePolicies",
                            "logs:DescribeLogGroups",
                        ],
                        resources=["*"],
                        any_resource_reason="CloudWatch Logs vended-log delivery APIs have no resource-level "
                        "permissions (Step Functions logging documentation)",
                    ),
                    WRITE_TRACES,
                ],
            ).json,
        )
        return role

    def _alarms(self, function_names: dict[str, str], *, topic_arn: str) -> None:
        for metric, label in (
            ("ExecutionsFailed", "failed"),
            ("ExecutionsTimedOut", "timed out"),
            ("ExecutionThrottled", "throttled"),
        ):
            count_alarm(
                self,
                f"alarm-{metric}",
                name=self.name(f"workflow-{metric}"),
                description=f"Pipeline executions {label}",
                namespace="AWS/States",
                metric=metric,
                dimensions={"StateMachineArn": self.state_machine.arn},
                topic_arn=topic_arn,
            )
        for fn, function_name in function_names.items():
            for metric in ("Errors", "Throttles"):
                count_alarm(
                    self,
                    f"alarm-{fn}-{metric}",
                    name=self.name(f"{fn}-{metric}"),
                    description=f"{metric} of the {fn} function",
                    namespace="AWS/Lambda",
                    metric=metric,
                    dimensions={"FunctionName": function_name},
                    topic_arn=topic_arn,
                )

    def _dashboard(self, function_names: dict[str, str]) -> None:
        region = self.config.region
        bucket = self.imported(parameters.BUCKET_NAME)
        table = self.imported(parameters.TABLE_NAME)

        def lambda_metrics(metric: str, stat: str) -> list[list[object]]:
            return [
                ["AWS/Lambda", metric, "FunctionName", name, {"stat": stat, "label": fn}]
                for fn, name in function_names.items()
            ]

        def widget(title: str, metrics: list[list[object]], *, period: int = 300) -> dict[str, object]:
            return {
                "type": "metric",
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": region,
                    "metrics": metrics,
                    "period": period,
                    "view": "timeSeries",
                },
            }

        arn = self.state_machine.arn
        widgets = [
            widget("Lambda invocations", lambda_metrics("Invocations", "Sum")),
            widget("Lambda errors", lambda_metrics("Errors", "Sum")),
            widget("Lambda duration (p95)", lambda_metrics("Duration", "p95")),
            widget(
                "Step Functions executions",
                [
                    ["AWS/States", m, "StateMachineArn", arn, {"stat": "Sum"}]
                    for m in ("ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled")
                ],
            ),
            widget(
                "DynamoDB consumed capacity",
                [
                    ["AWS/DynamoDB", m, "TableName", table, {"stat": "Sum"}]
                    for m in ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits")
                ],
            ),
            widget(
                "S3 storage",
                [
                    [
                        "AWS/S3",
                        "BucketSizeBytes",
                        "BucketName",
                        bucket,
                        "StorageType",
                        "StandardStorage",
                        {"stat": "Average"},
                    ],
                    [
                        "AWS/S3",
                        "NumberOfObjects",
                        "BucketName",
                        bucket,
                        "StorageType",
                        "AllStorageTypes",
                        {"stat": "Average", "yAxis": "right"},
                    ],
                ],
                period=86400,
            ),
        ]
        CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=f"pipeline-health-{self.config.environment_suffix}",
            dashboard_body=json.dumps({"widgets": widgets}),
        )
