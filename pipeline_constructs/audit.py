"""The duplicate audit: transaction ids that two different jobs loaded, found by Athena.

A correction declared with `replaces` removes the replaced job's rows in its own commit, so the
current snapshot of `transactions` holds every transaction once. A transaction id there under two
job ids is a re-send nobody declared (a partner sent the same transactions in a new file). Once a
booking date is closed, a Standard state machine asks Athena for that date's ids under two or more
job ids, publishes how many as the `DuplicateTransactions` metric and, when there are any, sends
the first of them with their jobs to the alert topic (runbook: docs/operations.md#duplicate-transactions).

    Date? ─┬─ none given ─▶ Yesterday ─┐
           ├─ a quote in it ─▶ BadDate  │
           └───────────────────────────┴▶ Query (.sync) ─▶ Results ─▶ Found? ─┬─▶ FirstRow ─▶ Count ─▶ FirstIds ─┐
                                                                            └─▶ NoneFound ─────────────────────┤
        ┌──────────────────────────────────────────────────────────────────────────────────────────────────────┘
        └▶ PutMetric ─▶ Duplicates? ─┬─ > 0 ─▶ Report ─▶ Alert ─▶ Audited
                                     └──────────────────────────▶ Audited
    any error ─▶ NotifyAuditFailure ─▶ AuditFailed

Step Functions' optimized Athena integration and the aws-sdk CloudWatch call:
https://docs.aws.amazon.com/step-functions/latest/dg/connect-athena.html
https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.sfn_state_machine import (
    SfnStateMachine,
    SfnStateMachineLoggingConfiguration,
    SfnStateMachineTracingConfiguration,
)

from lake import layout
from pipeline_constructs.event_start import DeadLetterQueue, EventStart
from pipeline_constructs.framework import Construct
from pipeline_constructs.iam import (
    DELIVER_EXECUTION_LOGS,
    WRITE_TRACES,
    Condition,
    Statement,
    policy_document,
    service_trust,
)
from pipeline_constructs.workflow import Retries, RetryPolicy, check_state_names

METRIC = "DuplicateTransactions"
# 00:30 UTC: the booking date before is closed (EventBridge schedules run in UTC).
SCHEDULE = "cron(30 0 * * ? *)"
# Ids with their jobs in the alert (the full list is the query's CSV under athena-results/).
FIRST_IDS = 10
# Athena's DML query timeout is 30 minutes (Service Quotas, "DML query timeout").
QUERY_TIMEOUT_SECONDS = 1800
CALL_TIMEOUT_SECONDS = 60
ATHENA_TRANSIENT = ["Athena.TooManyRequestsException", "Athena.InternalServerException"]
# aws-sdk errors are ServiceName.ErrorName, with the Exception suffix added.
CLOUDWATCH_TRANSIENT = ["CloudWatch.InternalServiceFaultException", "CloudWatch.ThrottlingException", "States.Timeout"]
SNS_TRANSIENT = ["SNS.SdkClientException", "SNS.InternalErrorException", "States.Timeout"]
FAILED_STATE = "AuditFailed"


def duplicates_sql(*, database: str, table: str) -> str:
    """The query, with `{}` where the booking date goes twice ('' for yesterday, UTC). SQL that
    Athena engine 3 (Trino) and the emulator's DuckDB both run: no array_join or listagg, which
    only Trino has; the jobs come back as an array, sorted. The date is a literal after folding,
    so Athena reads that one partition, and of it only the two columns."""
    date = "CASE WHEN '{}' = '' THEN CAST(current_date - INTERVAL '1' DAY AS DATE) ELSE CAST('{}' AS DATE) END"
    # The names are the catalog's own; the date comes in through States.Format, a quote refused.
    return (
        "SELECT booking_date, count(*) OVER () AS duplicates, transaction_id, jobs FROM ("  # noqa: S608
        "SELECT booking_date, transaction_id, array_sort(array_agg(DISTINCT job_id)) AS jobs "
        f'FROM "{database}"."{table}" WHERE booking_date = {date} '
        "GROUP BY booking_date, transaction_id HAVING count(DISTINCT job_id) > 1"
        ") ORDER BY transaction_id"
    )


def _intrinsic_string(text: str) -> str:
    """`text` as a string argument of an intrinsic function: ' and \\ escaped (the query's own `{}`
    are States.Format's placeholders, so the query has no other braces)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _retry(errors: list[str], policy: RetryPolicy) -> dict[str, Any]:
    return {
        "ErrorEquals": errors,
        "IntervalSeconds": policy.interval_seconds,
        "MaxAttempts": policy.max_attempts,
        "BackoffRate": policy.backoff_rate,
        "MaxDelaySeconds": policy.max_delay_seconds,
        "JitterStrategy": "FULL",
    }


def build_audit_definition(
    *,
    database: str,
    table: str,
    workgroup: str,
    topic_arn: str,
    namespace: str,
    dimensions: Mapping[str, str],
    retries: Retries,
) -> dict[str, Any]:
    """The audit's definition (Amazon States Language). Input: {"bookingDate": "YYYY-MM-DD"}, or
    anything without it for yesterday."""
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "NotifyAuditFailure"}]
    sql = duplicates_sql(database=database, table=table)

    def task(resource: str, *, errors: list[str], timeout: int = CALL_TIMEOUT_SECONDS, **fields: Any) -> dict:
        return {
            "Type": "Task",
            "Resource": resource,
            "TimeoutSeconds": timeout,
            "Retry": [_retry(errors, retries.transient)],
            "Catch": catch,
            **fields,
        }

    row = "$$.Map.Item.Value.Data"
    states: dict[str, Any] = {
        "Date?": {
            "Type": "Choice",
            "Comment": "No date: yesterday (UTC). A quote would end the query's string literal: refused",
            "Choices": [
                {"Not": {"Variable": "$.bookingDate", "IsPresent": True}, "Next": "Yesterday"},
                {"Variable": "$.bookingDate", "StringMatches": "*'*", "Next": "BadDate"},
            ],
            "Default": "Query",
        },
        "Yesterday": {"Type": "Pass", "Result": "", "ResultPath": "$.bookingDate", "Next": "Query"},
        "BadDate": {
            "Type": "Fail",
            "Error": "AuditBadBookingDate",
            "Cause": "bookingDate must be a date, YYYY-MM-DD",
        },
        "Query": task(
            "arn:aws:states:::athena:startQueryExecution.sync",
            errors=ATHENA_TRANSIENT,
            timeout=QUERY_TIMEOUT_SECONDS,
            Parameters={
                "QueryString.$": f"States.Format({_intrinsic_string(sql)}, $.bookingDate, $.bookingDate)",
                "WorkGroup": workgroup,
                "QueryExecutionContext": {"Database": database},
            },
            ResultSelector={
                "id.$": "$.QueryExecution.QueryExecutionId",
                "results.$": "$.QueryExecution.ResultConfiguration.OutputLocation",
            },
            ResultPath="$.query",
            Next="Results",
        ),
        "Results": task(
            "arn:aws:states:::athena:getQueryResults",
            errors=[*ATHENA_TRANSIENT, "States.Timeout"],
            # The header row, then the first ids; every row carries the day's count.
            Parameters={"QueryExecutionId.$": "$.query.id", "MaxResults": FIRST_IDS + 1},
            ResultSelector={"rows.$": "$.ResultSet.Rows[1:]"},  # no header row
            ResultPath="$.results",
            Next="Found?",
        ),
        "Found?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.results.rows[0]", "IsPresent": True, "Next": "FirstRow"}],
            "Default": "NoneFound",
        },
        "NoneFound": {"Type": "Pass", "Result": {"duplicates": 0}, "ResultPath": "$.found", "Next": "PutMetric"},
        # The first row's cells, then their values: a path that goes on past an index is taken
        # in two steps, as moto's JSONPath gives `rows[0].Data[1].VarCharValue` as a list.
        "FirstRow": {
            "Type": "Pass",
            "InputPath": "$.results.rows[0]",
            "Parameters": {"date.$": "$.Data[0]", "count.$": "$.Data[1]"},
            "ResultPath": "$.found",
            "Next": "Count",
        },
        "Count": {
            "Type": "Pass",
            "Parameters": {
                "bookingDate.$": "$.found.date.VarCharValue",
                "duplicates.$": "States.StringToJson($.found.count.VarCharValue)",
            },
            "ResultPath": "$.found",
            "Next": "FirstIds",
        },
        "FirstIds": {
            "Type": "Map",
            "ItemsPath": "$.results.rows",
            "ItemSelector": {"id.$": f"{row}[2]", "jobs.$": f"{row}[3]"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "FirstId",
                "States": {
                    "FirstId": {
                        "Type": "Pass",
                        "Parameters": {"transactionId.$": "$.id.VarCharValue", "jobs.$": "$.jobs.VarCharValue"},
                        "End": True,
                    }
                },
            },
            "ResultPath": "$.found.first",
            "Catch": catch,
            "Next": "PutMetric",
        },
        "PutMetric": task(
            "arn:aws:states:::aws-sdk:cloudwatch:putMetricData",
            errors=CLOUDWATCH_TRANSIENT,
            Parameters={
                "Namespace": namespace,
                "MetricData": [
                    {
                        "MetricName": METRIC,
                        "Dimensions": [{"Name": name, "Value": value} for name, value in dimensions.items()],
                        "Unit": "Count",
                        "Value.$": "$.found.duplicates",
                    }
                ],
            },
            ResultPath=None,
            Next="Duplicates?",
        ),
        "Duplicates?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.found.duplicates", "NumericGreaterThan": 0, "Next": "Report"}],
            "Default": "Audited",
        },
        "Report": {
            "Type": "Pass",
            "Comment": "The date, the count, the first ids with their jobs, and where all of them are",
            "Parameters": {
                "audit": "duplicate-transactions",
                "bookingDate.$": "$.found.bookingDate",
                "duplicates.$": "$.found.duplicates",
                "first.$": "$.found.first",
                "queryExecutionId.$": "$.query.id",
                "results.$": "$.query.results",
            },
            "ResultPath": "$.report",
            "Next": "Alert",
        },
        "Alert": task(
            "arn:aws:states:::sns:publish",
            errors=SNS_TRANSIENT,
            Parameters={
                "TopicArn": topic_arn,
                "Subject.$": "States.Format('Transactions loaded by two jobs, booking date {}', $.found.bookingDate)",
                "Message.$": "States.JsonToString($.report)",
            },
            ResultPath=None,
            Next="Audited",
        ),
        "Audited": {"Type": "Succeed"},
        "NotifyAuditFailure": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": topic_arn,
                "Subject": "Duplicate audit failed",
                "Message.$": "States.JsonToString($)",
            },
            "ResultPath": None,
            "TimeoutSeconds": CALL_TIMEOUT_SECONDS,
            "Retry": [_retry(SNS_TRANSIENT, retries.transient)],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notifyError", "Next": FAILED_STATE}],
            "Next": FAILED_STATE,
        },
        FAILED_STATE: {"Type": "Fail", "Error": "DuplicateAuditFailed", "Cause": "The audit's error is in the alert"},
    }
    definition = {
        "Comment": "Transaction ids loaded by two or more jobs on a closed booking date (Athena)",
        "StartAt": "Date?",
        "States": states,
    }
    check_state_names(definition)
    return definition


class DuplicateAudit(Construct):
    """The audit's state machine, its own role, its log group and its daily schedule."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        region: str,
        account_id: str,
        database: str,
        table: str,
        workgroup: str,
        data_bucket_arn: str,
        work_bucket_arn: str,
        kms_key_arn: str,
        topic_arn: str,
        namespace: str,
        dimensions: Mapping[str, str],
        retries: Retries,
        log_retention_days: int,
        dead_letter: DeadLetterQueue,
    ) -> None:
        super().__init__(scope, id_)
        self.name = name
        machine_arn = f"arn:aws:states:{region}:{account_id}:stateMachine:{name}"
        log_group = CloudwatchLogGroup(
            self,
            "executions",
            name=f"/aws/vendedlogs/states/{name}",
            retention_in_days=log_retention_days,
            kms_key_id=kms_key_arn,
        )
        role = IamRole(
            self,
            "role",
            name=name,
            assume_role_policy=service_trust(self, "trust", service="states.amazonaws.com", account_id=account_id).json,
        )
        glue = f"arn:aws:glue:{region}:{account_id}"
        IamRolePolicy(
            self,
            "policy",
            role=role.id,
            name="least-privilege",
            policy=policy_document(
                self,
                "permissions",
                statements=self._statements(
                    workgroup_arn=f"arn:aws:athena:{region}:{account_id}:workgroup/{workgroup}",
                    glue_resources=[
                        f"{glue}:catalog",
                        f"{glue}:database/{database}",
                        f"{glue}:table/{database}/{table}",
                    ],
                    data_bucket_arn=data_bucket_arn,
                    work_bucket_arn=work_bucket_arn,
                    kms_key_arn=kms_key_arn,
                    topic_arn=topic_arn,
                    namespace=namespace,
                ),
            ).json,
        )
        definition = build_audit_definition(
            database=database,
            table=table,
            workgroup=workgroup,
            topic_arn=topic_arn,
            namespace=namespace,
            dimensions=dimensions,
            retries=retries,
        )
        self.state_machine = SfnStateMachine(
            self,
            "machine",
            name=name,
            type="STANDARD",
            role_arn=role.arn,
            definition=json.dumps(definition, indent=2),
            logging_configuration=SfnStateMachineLoggingConfiguration(
                log_destination=f"{log_group.arn}:*", include_execution_data=False, level="ALL"
            ),
            tracing_configuration=SfnStateMachineTracingConfiguration(enabled=True),
        )
        starts = IamRole(
            self,
            "schedule-role",
            name=f"{name}-starts",
            assume_role_policy=service_trust(
                self, "schedule-trust", service="events.amazonaws.com", account_id=account_id
            ).json,
        )
        IamRolePolicy(
            self,
            "schedule-policy",
            role=starts.id,
            name="start-the-audit",
            policy=policy_document(
                self,
                "schedule-permissions",
                statements=[Statement(sid="StartAudit", actions=["states:StartExecution"], resources=[machine_arn])],
            ).json,
        )
        self.schedule = EventStart(
            self,
            "schedule",
            name=name,
            description="Audits the booking date just closed for transactions loaded by two jobs",
            state_machine_arn=self.state_machine.arn,
            role_arn=starts.arn,
            dead_letter=dead_letter,
            schedule=SCHEDULE,
            constant_input={"trigger": "schedule"},
        )

    @staticmethod
    def _statements(
        *,
        workgroup_arn: str,
        glue_resources: list[str],
        data_bucket_arn: str,
        work_bucket_arn: str,
        kms_key_arn: str,
        topic_arn: str,
        namespace: str,
    ) -> list[Statement]:
        """What the query needs as the machine's role (Athena runs it with the caller's
        permissions: "Identity and access management in Athena"), and the metric and the alert."""
        results = f"{work_bucket_arn}/{layout.ATHENA_RESULTS}/*"
        return [
            Statement(
                sid="RunAuditQuery",
                actions=["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"],
                resources=[workgroup_arn],
            ),
            Statement(
                sid="ReadTableDefinition", actions=["glue:GetDatabase", "glue:GetTable"], resources=glue_resources
            ),
            Statement(
                sid="ReadPublishedTables",
                actions=["s3:GetObject"],
                resources=[f"{data_bucket_arn}/{layout.PROCESSED}/*"],
            ),
            Statement(
                sid="ListPublishedTables",
                actions=["s3:ListBucket"],
                resources=[data_bucket_arn],
                conditions=[Condition(test="StringLike", variable="s3:prefix", values=[f"{layout.PROCESSED}/*"])],
            ),
            # Athena writes the result CSV as a multipart upload and reads it back for GetQueryResults.
            Statement(
                sid="WriteQueryResults",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=[results],
            ),
            Statement(
                sid="LocateBuckets",
                actions=["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
                resources=[data_bucket_arn, work_bucket_arn],
            ),
            Statement(
                sid="ListQueryResults",
                actions=["s3:ListBucket"],
                resources=[work_bucket_arn],
                conditions=[Condition(test="StringLike", variable="s3:prefix", values=[f"{layout.ATHENA_RESULTS}/*"])],
            ),
            Statement(
                sid="UseKeyOfDataResultsAndTopic",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[kms_key_arn],
            ),
            Statement(
                sid="PutAuditMetric",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                any_resource_reason="PutMetricData has no resource-level permissions; the namespace condition "
                "limits it (CloudWatch: condition keys to limit access to namespaces)",
                conditions=[Condition(test="StringEquals", variable="cloudwatch:namespace", values=[namespace])],
            ),
            Statement(sid="PublishAuditAlert", actions=["sns:Publish"], resources=[topic_arn]),
            DELIVER_EXECUTION_LOGS,
            WRITE_TRACES,
        ]
