"""The state machine and what starts it (uploads, a schedule), the alert topic, the alarms that
page it, and the pipeline-health dashboard."""

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

from lake import layout, metrics, schema
from pipeline_constructs.alarms import Metric, count_alarm, metric_alarm
from pipeline_constructs.audit import DuplicateAudit
from pipeline_constructs.event_start import DeadLetterQueue, EventStart
from pipeline_constructs.framework import Construct, Fn, TerraformOutput
from pipeline_constructs.iam import (
    DELIVER_EXECUTION_LOGS,
    WRITE_TRACES,
    Condition,
    Statement,
    policy_document,
    service_trust,
)
from pipeline_constructs.workflow import (
    MAP_RUNS_PREFIX,
    MapConcurrency,
    TaskFunction,
    build_definition,
)
from stacks import parameters
from stacks.base import LayerStack
from stacks.config import PipelineConfig

# The execution input of an upload (handlers/logic/requests.py reads it with Powertools' model).
UPLOAD_INPUT = '{"trigger": "s3-eventbridge", "event": <aws.events.event.json>}'
RUNBOOK = "Runbook: docs/operations.md#"


class OrchestrationStack(LayerStack):
    def __init__(self, scope: Construct, *, config: PipelineConfig) -> None:
        super().__init__(scope, config=config, layer="orchestration")
        kms_key_arn = self.imported(parameters.KMS_KEY_ARN)
        bucket_name = self.imported(parameters.BUCKET_NAME)
        # The map items and results are a job's work files: the work bucket's.
        work_bucket_name = self.imported(parameters.WORK_BUCKET_NAME)
        work_bucket_arn = self.imported(parameters.WORK_BUCKET_ARN)
        function_arns = {fn: self.imported(parameters.function_arn(fn)) for fn in config.functions}
        function_names = {fn: Fn.element(Fn.split(":", arn), 6) for fn, arn in function_arns.items()}
        # Known before the state machine exists: its role may start it (admitted jobs, map children).
        machine_name = self.name("workflow")
        machine_arn = f"arn:aws:states:{config.region}:{self.account_id}:stateMachine:{machine_name}"

        topic = SnsTopic(self, "alerts", name=self.name("alerts"), kms_master_key_id=kms_key_arn)
        SnsTopicPolicy(self, "alerts-policy", arn=topic.arn, policy=self._topic_policy(topic.arn))
        if config.alert_email:
            SnsTopicSubscription(
                self, "alerts-email", topic_arn=topic.arn, protocol="email", endpoint=config.alert_email
            )

        log_group = CloudwatchLogGroup(
            self,
            "executions",
            name=f"/aws/vendedlogs/states/{machine_name}",
            retention_in_days=config.log_retention_days,
            kms_key_id=kms_key_arn,
        )
        role = self._execution_role(
            function_arns,
            topic_arn=topic.arn,
            kms_key_arn=kms_key_arn,
            work_bucket_arn=work_bucket_arn,
            machine_arn=machine_arn,
            machine_name=machine_name,
        )
        throughput = config.throughput
        definition = build_definition(
            functions={
                fn: TaskFunction(arn=arn, timeout_seconds=config.functions[fn].timeout_seconds)
                for fn, arn in function_arns.items()
            },
            alert_topic_arn=topic.arn,
            bucket=work_bucket_name,
            retries=config.retries,
            concurrency=MapConcurrency(
                chunks=throughput.map_max_concurrency, partitions=throughput.map_max_concurrency
            ),
        )
        self.state_machine = SfnStateMachine(
            self,
            "workflow",
            name=machine_name,
            type="STANDARD",
            role_arn=role.arn,
            definition=json.dumps(definition, indent=2),
            logging_configuration=SfnStateMachineLoggingConfiguration(
                log_destination=f"{log_group.arn}:*", include_execution_data=False, level="ALL"
            ),
            tracing_configuration=SfnStateMachineTracingConfiguration(enabled=True),
        )
        dead_letter = DeadLetterQueue(
            self, "undelivered", name=self.name("undelivered-starts"), kms_key_arn=kms_key_arn
        )
        audit = DuplicateAudit(
            self,
            "duplicate-audit",
            name=self.name("duplicate-audit"),
            region=config.region,
            account_id=self.account_id,
            database=self.imported(parameters.GLUE_DATABASE),
            table=schema.TRANSACTIONS.name,
            workgroup=self.imported(parameters.AUDIT_WORKGROUP),
            data_bucket_arn=self.imported(parameters.BUCKET_ARN),
            work_bucket_arn=work_bucket_arn,
            kms_key_arn=kms_key_arn,
            topic_arn=topic.arn,
            namespace=metrics.NAMESPACE,
            dimensions=self._business_dimensions,
            retries=config.retries,
            log_retention_days=config.log_retention_days,
            dead_letter=dead_letter,
        )
        self._starts(bucket_name=bucket_name, dead_letter=dead_letter, other_rule_arns=[audit.schedule.rule.arn])
        self._alarms(function_names, topic_arn=topic.arn, dead_letter=dead_letter)
        self._dashboard(function_names, dead_letter=dead_letter)

        self.export(parameters.STATE_MACHINE_ARN, self.state_machine.arn, description="Pipeline state machine")
        self.export(parameters.ALERT_TOPIC_ARN, topic.arn, description="Alert topic")
        TerraformOutput(self, "state_machine_arn", value=self.state_machine.arn)

    def _starts(self, *, bucket_name: str, dead_letter: DeadLetterQueue, other_rule_arns: list[str]) -> None:
        """Uploads to incoming/ start jobs; a schedule drains the admission queue (a safety net).
        Their undelivered starts, and those of `other_rule_arns`, go to the dead-letter queue."""
        role = IamRole(
            self,
            "starts-role",
            name=self.name("starts"),
            assume_role_policy=service_trust(
                self, "starts-trust", service="events.amazonaws.com", account_id=self.account_id
            ).json,
        )
        IamRolePolicy(
            self,
            "starts-policy",
            role=role.id,
            name="start-the-workflow",
            policy=policy_document(
                self,
                "starts-permissions",
                statements=[
                    Statement(
                        sid="StartWorkflow", actions=["states:StartExecution"], resources=[self.state_machine.arn]
                    )
                ],
            ).json,
        )
        uploads = EventStart(
            self,
            "uploads",
            name=self.name("uploads"),
            description=f"Objects created under {layout.INCOMING}/ start a job (other prefixes start nothing)",
            state_machine_arn=self.state_machine.arn,
            role_arn=role.arn,
            dead_letter=dead_letter,
            event_pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [bucket_name]}, "object": {"key": [{"prefix": f"{layout.INCOMING}/"}]}},
            },
            input_template=UPLOAD_INPUT,
        )
        drain = EventStart(
            self,
            "drain",
            name=self.name("drain"),
            description="Frees the slots of jobs that ended without releasing them and starts waiting jobs",
            state_machine_arn=self.state_machine.arn,
            role_arn=role.arn,
            dead_letter=dead_letter,
            schedule=f"rate({self.config.throughput.drain_every_minutes} minutes)",
            constant_input={"drain": True},
        )
        dead_letter.allow(rule_arns=[uploads.rule.arn, drain.rule.arn, *other_rule_arns])

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

    def _execution_role(
        self,
        function_arns: dict[str, str],
        *,
        topic_arn: str,
        kms_key_arn: str,
        work_bucket_arn: str,
        machine_arn: str,
        machine_name: str,
    ) -> IamRole:
        role = IamRole(
            self,
            "workflow-role",
            name=self.name("workflow"),
            assume_role_policy=service_trust(
                self, "workflow-trust", service="states.amazonaws.com", account_id=self.account_id
            ).json,
        )
        arns = list(function_arns.values())
        # Its own executions, and a Distributed Map's child executions, which are named
        # execution:<machine>/<map run label>:<id> (Step Functions' redrive permissions).
        execution = f"arn:aws:states:{self.config.region}:{self.account_id}:execution:{machine_name}"
        executions = [f"{execution}:*", f"{execution}/*"]
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
                    # Admitted jobs start as executions of their own; a Distributed Map runs its
                    # items as child executions of this state machine.
                    Statement(sid="StartOwnExecutions", actions=["states:StartExecution"], resources=[machine_arn]),
                    Statement(
                        sid="ManageMapRuns",
                        actions=["states:DescribeExecution", "states:StopExecution", "states:RedriveExecution"],
                        resources=executions,
                    ),
                    Statement(
                        sid="ReadMapItems",
                        actions=["s3:GetObject"],
                        resources=[f"{work_bucket_arn}/{layout.STAGING}/*"],
                    ),
                    # What the ResultWriter needs to write its results as a multipart upload
                    # (Step Functions' "IAM policies for Distributed Map states").
                    Statement(
                        sid="WriteMapRunResults",
                        actions=["s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
                        resources=[f"{work_bucket_arn}/{MAP_RUNS_PREFIX}/*"],
                    ),
                    Statement(sid="PublishAlerts", actions=["sns:Publish"], resources=[topic_arn]),
                    Statement(
                        sid="UseKeyOfTopicAndBucket",
                        actions=["kms:Decrypt", "kms:GenerateDataKey"],
                        resources=[kms_key_arn],
                    ),
                    DELIVER_EXECUTION_LOGS,
                    WRITE_TRACES,
                ],
            ).json,
        )
        return role

    @property
    def _business_dimensions(self) -> dict[str, str]:
        return {"service": metrics.SERVICE, "environment": self.config.environment_suffix}

    def _business(self, name: str, statistic: str = "Sum") -> Metric:
        return Metric(namespace=metrics.NAMESPACE, name=name, dimensions=self._business_dimensions, statistic=statistic)

    def _alarms(self, function_names: dict[str, str], *, topic_arn: str, dead_letter: DeadLetterQueue) -> None:
        monitoring = self.config.monitoring
        hours = monitoring.expected_file_every_hours
        metric_alarm(
            self,
            "alarm-freshness",
            name=self.name("no-file-loaded"),
            description=f"No job LOADED in {hours} h: the expected file is late or stuck. {RUNBOOK}no-file-loaded",
            metric=self._business(metrics.JOBS_LOADED),
            topic_arn=topic_arn,
            threshold=1,
            comparison="LessThanThreshold",
            period_seconds=3600,
            evaluation_periods=hours,
            missing_data="breaching",  # no data is exactly what this alarm is for
        )
        metric_alarm(
            self,
            "alarm-reject-rate",
            name=self.name("reject-rate"),
            description=f"A file had more than {monitoring.reject_rate_alarm_percent}% of its rows rejected. "
            f"{RUNBOOK}reject-rate",
            metric=self._business(metrics.REJECT_RATE, statistic="Maximum"),
            topic_arn=topic_arn,
            threshold=monitoring.reject_rate_alarm_percent,
        )
        for metric, alarm, text in (
            (metrics.JOBS_FAILED, "job-failed", "A job FAILED: nothing of it was published."),
            (metrics.RECONCILIATION_FAILURES, "reconciliation", "A job's counts or totals did not reconcile."),
        ):
            metric_alarm(
                self,
                f"alarm-{alarm}",
                name=self.name(alarm),
                description=f"{text} {RUNBOOK}{alarm}",
                metric=self._business(metric),
                topic_arn=topic_arn,
            )
        resends = monitoring.resend_alarm_per_day
        if resends:  # off by default: a re-send needs no action (docs/operations.md#resent-files)
            metric_alarm(
                self,
                "alarm-resent-files",
                name=self.name("resent-files"),
                description=f"More than {resends} files re-sent in 24 hours: a producer sends the same bytes "
                f"again and again. {RUNBOOK}resent-files",
                metric=self._business(metrics.JOBS_RESENT),
                topic_arn=topic_arn,
                threshold=resends,
                # One period of a day: the last 24 hours, a sliding window (CloudWatch's default,
                # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation-window.html).
                # Periods of an hour or more may span up to 7 days (PutMetricAlarm, EvaluationPeriods,
                # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
                period_seconds=86400,
            )
        metric_alarm(
            self,
            "alarm-duplicate-transactions",
            name=self.name("duplicate-transactions"),
            description="The duplicate audit found transaction ids of a closed booking date loaded by two or more "
            f"jobs: a re-send not declared as a correction. {RUNBOOK}duplicate-transactions",
            # The audit's count for the date it checked; Maximum, so an audit run again by hand
            # for the same date is not added to the first.
            metric=self._business(metrics.DUPLICATE_TRANSACTIONS, statistic="Maximum"),
            topic_arn=topic_arn,
            period_seconds=86400,  # one audit a day; missing data (no audit yet) is not breaching
        )
        metric_alarm(
            self,
            "alarm-undelivered-starts",
            name=self.name("undelivered-starts"),
            description=f"EventBridge could not start the workflow (an upload or a drain). {RUNBOOK}undelivered-starts",
            metric=Metric(
                namespace="AWS/SQS",
                name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": dead_letter.queue.name},
                statistic="Maximum",
            ),
            topic_arn=topic_arn,
        )
        for metric, label in (
            ("ExecutionsFailed", "failed"),
            ("ExecutionsTimedOut", "timed out"),
            ("ExecutionThrottled", "throttled"),
        ):
            count_alarm(
                self,
                f"alarm-{metric}",
                name=self.name(f"workflow-{metric}"),
                description=f"Pipeline executions {label}. {RUNBOOK}workflow-executions",
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
                    description=f"{metric} of the {fn} function. {RUNBOOK}function-{metric.lower()}",
                    namespace="AWS/Lambda",
                    metric=metric,
                    dimensions={"FunctionName": function_name},
                    topic_arn=topic_arn,
                )

    def _dashboard(self, function_names: dict[str, str], *, dead_letter: DeadLetterQueue) -> None:
        region = self.config.region
        bucket = self.imported(parameters.BUCKET_NAME)
        table = self.imported(parameters.TABLE_NAME)
        dimensions = [item for pair in self._business_dimensions.items() for item in pair]

        def business(*names: str, stat: str = "Sum") -> list[list[object]]:
            return [[metrics.NAMESPACE, name, *dimensions, {"stat": stat, "label": name}] for name in names]

        def lambda_metrics(metric: str, stat: str) -> list[list[object]]:
            return [
                ["AWS/Lambda", metric, "FunctionName", name, {"stat": stat, "label": fn}]
                for fn, name in function_names.items()
            ]

        def widget(title: str, metric_rows: list[list[object]], *, period: int = 300) -> dict[str, object]:
            return {
                "type": "metric",
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": region,
                    "metrics": metric_rows,
                    "period": period,
                    "view": "timeSeries",
                },
            }

        arn = self.state_machine.arn
        widgets = [
            widget(
                "Rows received, loaded, rejected",
                business(metrics.ROWS_RECEIVED, metrics.ROWS_LOADED, metrics.ROWS_REJECTED),
            ),
            widget("Reject rate (%, worst file)", business(metrics.REJECT_RATE, stat="Maximum")),
            widget(
                "Jobs loaded, rejected, failed, resent",
                business(metrics.JOBS_LOADED, metrics.JOBS_REJECTED, metrics.JOBS_FAILED, metrics.JOBS_RESENT),
            ),
            widget("Bytes processed", business(metrics.BYTES_PROCESSED)),
            widget(
                "Transactions loaded by two jobs (daily audit)",
                business(metrics.DUPLICATE_TRANSACTIONS, stat="Maximum"),
                period=86400,
            ),
            widget("Job duration (s, p95)", business(metrics.JOB_DURATION, stat="p95")),
            widget(
                "Reconciliation failures and undelivered starts",
                business(metrics.RECONCILIATION_FAILURES)
                + [
                    [
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        "QueueName",
                        dead_letter.queue.name,
                        {"stat": "Maximum"},
                    ]
                ],
            ),
            widget("Lambda invocations", lambda_metrics("Invocations", "Sum")),
            widget("Lambda errors", lambda_metrics("Errors", "Sum")),
            widget("Lambda throttles", lambda_metrics("Throttles", "Sum")),
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
                "S3 storage: the record and the work files",
                [
                    [
                        "AWS/S3",
                        metric,
                        "BucketName",
                        name,
                        "StorageType",
                        storage_type,
                        {"stat": "Average", "label": f"{label} {metric}", **({"yAxis": "right"} if right else {})},
                    ]
                    for label, name in (("data", bucket), ("work", self.imported(parameters.WORK_BUCKET_NAME)))
                    for metric, storage_type, right in (
                        ("BucketSizeBytes", "StandardStorage", False),
                        ("NumberOfObjects", "AllStorageTypes", True),
                    )
                ],
                period=86400,
            ),
        ]
        CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=self.name("health"),
            dashboard_body=json.dumps({"widgets": widgets}),
        )
