"""The duplicate audit as synthesized: its state machine, its own role, its schedule, its alarm."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stacks.config import PipelineConfig
from tests.infra.synth import Synth

KMS_KEY = "${data.aws_ssm_parameter.import-kms-key-arn.value}"
DATABASE = "${data.aws_ssm_parameter.import-glue-database.value}"
WORKGROUP = "${data.aws_ssm_parameter.import-audit-workgroup.value}"  # its own limit: a whole date
DATA_BUCKET = "${data.aws_ssm_parameter.import-bucket-arn.value}"
WORK_BUCKET = "${data.aws_ssm_parameter.import-work-bucket-arn.value}"


def _one(synthesized: Synth, rtype: str, prefix: str, *, data: bool = False) -> tuple[str, dict[str, Any]]:
    found = (synthesized.data if data else synthesized.resources)("orchestration", rtype)
    (match,) = [(lid, body) for lid, body in found.items() if lid.startswith(prefix)]
    return match


def _machine(synthesized: Synth) -> dict[str, Any]:
    return _one(synthesized, "aws_sfn_state_machine", "duplicate-audit_machine_")[1]


def _states(synthesized: Synth) -> dict[str, Any]:
    return json.loads(_machine(synthesized)["definition"])["States"]


def test_a_standard_machine_of_its_own_logged_and_traced(synthesized: Synth) -> None:
    machine = _machine(synthesized)
    assert (machine["name"], machine["type"]) == ("pipeline-duplicate-audit-qa7", "STANDARD")
    assert machine["logging_configuration"]["include_execution_data"] is False
    assert machine["tracing_configuration"] == {"enabled": True}
    _, log_group = _one(synthesized, "aws_cloudwatch_log_group", "duplicate-audit_executions_")
    assert log_group["name"] == "/aws/vendedlogs/states/pipeline-duplicate-audit-qa7"
    assert log_group["kms_key_id"] == KMS_KEY
    assert machine["role_arn"].startswith("${aws_iam_role.duplicate-audit_role_")


def test_one_athena_query_of_the_transactions_per_booking_date(synthesized: Synth) -> None:
    states = _states(synthesized)
    query = states["Query"]
    assert query["Resource"] == "arn:aws:states:::athena:startQueryExecution.sync"
    assert query["Parameters"]["WorkGroup"] == WORKGROUP
    assert query["Parameters"]["QueryExecutionContext"] == {"Database": DATABASE}
    sql = query["Parameters"]["QueryString.$"]
    assert sql.startswith("States.Format('") and sql.endswith("', $.bookingDate, $.bookingDate)")
    assert f'FROM "{DATABASE}"."transactions"' in sql
    assert "array_sort(array_agg(DISTINCT job_id))" in sql
    assert "HAVING count(DISTINCT job_id) > 1" in sql
    # The date defaults to yesterday (UTC); one with a quote never reaches the query.
    assert "CAST(current_date - INTERVAL \\'1\\' DAY AS DATE)" in sql
    choices = states["Date?"]["Choices"]
    assert choices[0] == {"Not": {"Variable": "$.bookingDate", "IsPresent": True}, "Next": "Yesterday"}
    assert choices[1] == {"Variable": "$.bookingDate", "StringMatches": "*'*", "Next": "BadDate"}
    assert states["Results"]["Resource"] == "arn:aws:states:::athena:getQueryResults"
    assert states["Results"]["Parameters"]["MaxResults"] == 11


def test_the_count_is_a_business_metric_and_an_alert_names_the_jobs(synthesized: Synth) -> None:
    states = _states(synthesized)
    put = states["PutMetric"]
    assert put["Resource"] == "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
    assert put["Parameters"]["Namespace"] == "FinancialPipeline"
    (datum,) = put["Parameters"]["MetricData"]
    assert datum["MetricName"] == "DuplicateTransactions" and datum["Value.$"] == "$.found.duplicates"
    assert datum["Dimensions"] == [
        {"Name": "service", "Value": "financial-pipeline"},
        {"Name": "environment", "Value": "qa7"},
    ]
    assert states["Duplicates?"]["Choices"] == [
        {"Variable": "$.found.duplicates", "NumericGreaterThan": 0, "Next": "Report"}
    ]
    assert states["Duplicates?"]["Default"] == "Audited"
    report = states["Report"]["Parameters"]
    assert set(report) == {
        "audit",
        "bookingDate.$",
        "duplicates.$",
        "first.$",
        "queryExecutionId.$",
        "results.$",
    }
    alert = states["Alert"]
    assert alert["Resource"] == "arn:aws:states:::sns:publish"
    assert alert["Parameters"]["TopicArn"] == "${aws_sns_topic.alerts.arn}"
    assert alert["Parameters"]["Message.$"] == "States.JsonToString($.report)"


def test_every_task_retries_times_out_and_is_caught(synthesized: Synth, config: PipelineConfig) -> None:
    tasks = {name: state for name, state in _states(synthesized).items() if state["Type"] == "Task"}
    assert set(tasks) == {"Query", "Results", "PutMetric", "Alert", "NotifyAuditFailure"}
    for name, task in tasks.items():
        assert 0 < task["TimeoutSeconds"] <= 1800, name
        (retry,) = task["Retry"]
        assert retry["MaxAttempts"] == config.retry_max_attempts and retry["JitterStrategy"] == "FULL", name
        (catch,) = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"], name
        expected = "AuditFailed" if name == "NotifyAuditFailure" else "NotifyAuditFailure"
        assert catch["Next"] == expected, name
    assert tasks["Query"]["Retry"][0]["ErrorEquals"] == [
        "Athena.TooManyRequestsException",
        "Athena.InternalServerException",
    ]


def _statements(synthesized: Synth) -> dict[str, dict[str, Any]]:
    _, document = _one(synthesized, "aws_iam_policy_document", "duplicate-audit_permissions_", data=True)
    return {s["sid"]: s for s in document["statement"]}


def test_the_role_may_run_the_query_and_nothing_more(synthesized: Synth) -> None:
    statements = _statements(synthesized)
    account = "${data.aws_caller_identity.caller.account_id}"
    assert statements["RunAuditQuery"]["actions"] == [
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
    ]
    assert statements["RunAuditQuery"]["resources"] == [f"arn:aws:athena:us-east-2:{account}:workgroup/{WORKGROUP}"]
    assert statements["ReadTableDefinition"]["actions"] == ["glue:GetDatabase", "glue:GetTable"]
    assert statements["ReadTableDefinition"]["resources"] == [
        f"arn:aws:glue:us-east-2:{account}:catalog",
        f"arn:aws:glue:us-east-2:{account}:database/{DATABASE}",
        f"arn:aws:glue:us-east-2:{account}:table/{DATABASE}/transactions",
    ]
    assert statements["ReadPublishedTables"] == {
        "sid": "ReadPublishedTables",
        "effect": "Allow",
        "actions": ["s3:GetObject"],
        "resources": [f"{DATA_BUCKET}/processed/*"],
    }
    assert statements["ListPublishedTables"]["condition"] == [
        {"test": "StringLike", "variable": "s3:prefix", "values": ["processed/*"]}
    ]
    assert statements["WriteQueryResults"]["resources"] == [f"{WORK_BUCKET}/athena-results/*"]
    assert "s3:PutObject" in statements["WriteQueryResults"]["actions"]
    assert statements["LocateBuckets"]["actions"] == ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    assert statements["UseKeyOfDataResultsAndTopic"]["resources"] == [KMS_KEY]
    metric = statements["PutAuditMetric"]
    assert metric["actions"] == ["cloudwatch:PutMetricData"]
    assert metric["condition"] == [
        {"test": "StringEquals", "variable": "cloudwatch:namespace", "values": ["FinancialPipeline"]}
    ]
    assert statements["PublishAuditAlert"]["resources"] == ["${aws_sns_topic.alerts.arn}"]
    # Nothing that writes the tables or their catalog, nothing of the pipeline's functions or jobs.
    actions = {a for s in statements.values() for a in s["actions"]}
    assert not {a for a in actions if a.startswith(("lambda:", "dynamodb:", "states:", "glue:Update", "s3:Delete"))}


def test_a_daily_schedule_after_midnight_utc_with_its_own_start_role(synthesized: Synth) -> None:
    _, rule = _one(synthesized, "aws_cloudwatch_event_rule", "duplicate-audit_schedule_rule_")
    assert rule["name"] == "pipeline-duplicate-audit-qa7"
    minute, hour, *rest = re.fullmatch(r"cron\((.*)\)", rule["schedule_expression"])[1].split()
    assert (hour, rest) == ("0", ["*", "*", "?", "*"]) and 0 < int(minute) < 60
    _, target = _one(synthesized, "aws_cloudwatch_event_target", "duplicate-audit_schedule_target_")
    assert target["arn"].startswith("${aws_sfn_state_machine.duplicate-audit_machine_")
    assert json.loads(target["input"]) == {"trigger": "schedule"}
    assert target["dead_letter_config"]["arn"].startswith("${aws_sqs_queue.undelivered_queue")
    _, starts = _one(synthesized, "aws_iam_policy_document", "duplicate-audit_schedule-permissions_", data=True)
    (statement,) = starts["statement"]
    assert statement["actions"] == ["states:StartExecution"]
    assert statement["resources"][0].endswith(":stateMachine:pipeline-duplicate-audit-qa7")
    # The dead-letter queue takes this rule's undelivered starts too.
    _, queue_policy = _one(synthesized, "aws_iam_policy_document", "undelivered_policy-document_", data=True)
    (sources,) = queue_policy["statement"][0]["condition"]
    assert any(
        arn.startswith("${aws_cloudwatch_event_rule.duplicate-audit_schedule_rule_") for arn in sources["values"]
    )


def test_an_alarm_on_the_metric_with_its_runbook_and_the_metric_on_the_dashboard(synthesized: Synth) -> None:
    alarms = {
        a["alarm_name"]: a for a in synthesized.resources("orchestration", "aws_cloudwatch_metric_alarm").values()
    }
    alarm = alarms["pipeline-duplicate-transactions-qa7"]
    assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == (
        "FinancialPipeline",
        "DuplicateTransactions",
        "Maximum",
    )
    assert (alarm["threshold"], alarm["comparison_operator"]) == (0, "GreaterThanThreshold")
    assert (alarm["period"], alarm["evaluation_periods"]) == (86400, 1)
    assert alarm["treat_missing_data"] == "notBreaching"
    assert alarm["dimensions"] == {"service": "financial-pipeline", "environment": "qa7"}
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"]
    assert alarm["alarm_description"].endswith("Runbook: docs/operations.md#duplicate-transactions")
    runbook = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert '<a id="duplicate-transactions"></a>' in runbook
    dashboard = synthesized.only("orchestration", "aws_cloudwatch_dashboard")
    body = json.loads(re.sub(r"\$\{[^}]*\}", "resolved-by-terraform", dashboard["dashboard_body"]))
    (widget,) = [w for w in body["widgets"] if "DuplicateTransactions" in json.dumps(w)]
    assert widget["properties"]["metrics"][0][:6] == [
        "FinancialPipeline",
        "DuplicateTransactions",
        "service",
        "financial-pipeline",
        "environment",
        "qa7",
    ]
