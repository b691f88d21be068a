import json
import re

from stacks.config import PipelineConfig
from tests.infra.synth import Synth


def _definition(synthesized: Synth) -> dict:
    return json.loads(synthesized.only("orchestration", "aws_sfn_state_machine")["definition"])


def test_standard_state_machine_with_logging_and_tracing(synthesized: Synth) -> None:
    machine = synthesized.only("orchestration", "aws_sfn_state_machine")
    assert machine["type"] == "STANDARD"
    assert machine["name"] == "pipeline-workflow-qa7"
    assert machine["tracing_configuration"] == {"enabled": True}
    logging = machine["logging_configuration"]
    assert logging["include_execution_data"] is False
    assert logging["log_destination"] == "${aws_cloudwatch_log_group.executions.arn}:*"
    log_group = synthesized.only("orchestration", "aws_cloudwatch_log_group")
    assert log_group["name"].startswith("/aws/vendedlogs/states/")
    assert log_group["kms_key_id"]


def test_stages_run_in_order(synthesized: Synth) -> None:
    states = _definition(synthesized)["States"]
    assert _definition(synthesized)["StartAt"] == "Ingest"
    assert states["Ingest"]["Next"] == "Validate"
    assert states["Validate"]["Next"] == "Rejected?"
    assert states["Rejected?"]["Default"] == "Transform"
    assert states["Transform"]["Next"] == "Load"
    assert states["Load"]["End"] is True


def test_every_task_retries_times_out_and_catches(synthesized: Synth, config: PipelineConfig) -> None:
    states = _definition(synthesized)["States"]
    lambda_tasks = {n: s for n, s in states.items() if s.get("Resource") == "arn:aws:states:::lambda:invoke"}
    assert len(lambda_tasks) == 5
    for name, task in lambda_tasks.items():
        function = name.lower() if name != "RecordFailure" else "failure"
        assert task["TimeoutSeconds"] > config.functions[function].timeout_seconds, name
        (retry,) = task["Retry"]
        assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"]
        assert retry["BackoffRate"] > 1 and retry["MaxDelaySeconds"] > 0 and retry["JitterStrategy"] == "FULL"
        assert task["Catch"][0]["ErrorEquals"] == ["States.ALL"]


def test_failures_are_recorded_then_alerted_then_failed(synthesized: Synth) -> None:
    states = _definition(synthesized)["States"]
    for stage in ("Ingest", "Validate", "Transform", "Load"):
        assert states[stage]["Catch"][0]["Next"] == "RecordFailure"
        assert states[stage]["Catch"][0]["ResultPath"] == "$.error"
    assert states["RecordFailure"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["NotifyFailure"]["Parameters"]["TopicArn"] == "${aws_sns_topic.alerts.arn}"
    assert states["NotifyFailure"]["Next"] == "JobFailed"
    assert states["JobFailed"]["Type"] == "Fail"


def test_alert_topic_is_encrypted(synthesized: Synth) -> None:
    topic = synthesized.only("orchestration", "aws_sns_topic")
    assert topic["kms_master_key_id"] == "${data.aws_ssm_parameter.import-kms-key-arn.value}"
    assert synthesized.resources("orchestration", "aws_sns_topic_subscription") == {}  # no e-mail configured


def test_alarms_page_the_topic(synthesized: Synth) -> None:
    alarms = synthesized.resources("orchestration", "aws_cloudwatch_metric_alarm").values()
    metrics = sorted((a["namespace"], a["metric_name"]) for a in alarms)
    assert metrics.count(("AWS/Lambda", "Errors")) == 5
    assert metrics.count(("AWS/Lambda", "Throttles")) == 5
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"):
        assert ("AWS/States", metric) in metrics
    assert all(a["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"] for a in alarms)


def test_dashboard(synthesized: Synth) -> None:
    dashboard = synthesized.only("orchestration", "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == "pipeline-health-qa7"
    # Terraform fills in the interpolations (function names, bucket, table) at plan time.
    body = re.sub(r"\$\{[^}]*\}", "resolved-by-terraform", dashboard["dashboard_body"])
    titles = [w["properties"]["title"] for w in json.loads(body)["widgets"]]
    assert titles == [
        "Lambda invocations",
        "Lambda errors",
        "Lambda duration (p95)",
        "Step Functions executions",
        "DynamoDB consumed capacity",
        "S3 storage",
    ]


def test_state_machine_arn_output(synthesized: Synth) -> None:
    assert synthesized.stacks["orchestration"]["output"]["state_machine_arn"]["value"] == (
        "${aws_sfn_state_machine.workflow.arn}"
    )
