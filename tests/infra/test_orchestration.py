import json
import re
from pathlib import Path

import pytest

from pipeline_constructs.workflow import check_state_names
from stacks.config import ConfigError, PipelineConfig, from_env
from tests.conftest import TEST_ENV
from tests.infra.synth import Synth


def _definition(synthesized: Synth) -> dict:
    return json.loads(synthesized.resources("orchestration", "aws_sfn_state_machine")["workflow"]["definition"])


def test_standard_state_machine_with_logging_and_tracing(synthesized: Synth) -> None:
    machine = synthesized.resources("orchestration", "aws_sfn_state_machine")["workflow"]
    assert machine["type"] == "STANDARD"
    assert machine["name"] == "pipeline-workflow-qa7"
    assert machine["tracing_configuration"] == {"enabled": True}
    logging = machine["logging_configuration"]
    assert logging["include_execution_data"] is False
    assert logging["log_destination"] == "${aws_cloudwatch_log_group.executions.arn}:*"
    log_group = synthesized.resources("orchestration", "aws_cloudwatch_log_group")["executions"]
    assert log_group["name"].startswith("/aws/vendedlogs/states/")
    assert log_group["kms_key_id"]


def _tasks(states: dict) -> dict[str, dict]:
    """Every Task state, also inside the maps' item processors (keyed map/state)."""
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        for inner, child in state.get("ItemProcessor", {}).get("States", {}).items():
            if child["Type"] == "Task":
                found[f"{name}/{inner}"] = child
    return found


def test_the_job_flows_through_admission_the_chunk_maps_and_load(synthesized: Synth) -> None:
    definition = _definition(synthesized)
    states = definition["States"]
    assert definition["StartAt"] == "Route"
    assert states["Route"]["Default"] == "Ingest"
    assert [c["Next"] for c in states["Route"]["Choices"]] == ["Plan", "Drain"]
    path = ["Ingest", "Queued?", "Arrive", "StartOthers", "Admitted?", "Plan", "Resent?"]
    for here, there in zip(path, path[1:], strict=False):
        following = states[here].get("Next") or [c["Next"] for c in states[here]["Choices"]][0]
        assert following == there, here
    assert states["Resent?"]["Default"] == "ValidateChunks" and states["ValidateChunks"]["Next"] == "SeveralChunks?"
    assert states["SeveralChunks?"]["Choices"][0]["Next"] == "FindDuplicates"
    assert states["FindDuplicates"]["Next"] == "Summarize"
    choices = {c["StringEquals"]: c["Next"] for c in states["Verdict?"]["Choices"]}
    assert choices == {"REVALIDATE": "Revalidate", "VALIDATED": "TransformDates"}
    assert states["Verdict?"]["Default"] == "Release"  # REJECTED: nothing loads
    assert states["Revalidate"]["Next"] == "Summarize"
    assert states["TransformDates"]["Next"] == "Load" and states["Load"]["Next"] == "Release"
    assert states["Release"]["Next"] == "StartNext" and states["StartNext"]["Next"] == "JobDone"


def test_the_chunk_work_runs_in_distributed_maps_over_our_own_items(synthesized: Synth, config: PipelineConfig) -> None:
    states = _definition(synthesized)["States"]
    for name, items in (
        ("ValidateChunks", "$.chunksKey"),
        ("FindDuplicates", "$.partitionsKey"),
        ("Revalidate", "$.revalidateKey"),
        ("TransformDates", "$.datesKey"),
    ):
        state = states[name]
        assert state["Type"] == "Map"
        assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
        assert state["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
        assert state["ItemReader"]["Parameters"]["Key.$"] == items
        assert state["MaxConcurrency"] == config.throughput.map_max_concurrency
        assert "ToleratedFailurePercentage" not in state and "ToleratedFailureCount" not in state
        assert state["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
        assert state["Catch"][0]["Next"] == "RecordFailure"


def test_throttling_has_its_own_long_retry_budget(synthesized: Synth, config: PipelineConfig) -> None:
    states = _definition(synthesized)["States"]
    lambda_tasks = {n: t for n, t in _tasks(states).items() if t["Resource"] == "arn:aws:states:::lambda:invoke"}
    assert len(lambda_tasks) >= 16
    throughput = config.throughput
    for name, task in lambda_tasks.items():
        function = task["Parameters"]["FunctionName"].split("import-functions-")[1].split("-arn")[0]
        assert task["TimeoutSeconds"] > config.functions[function].timeout_seconds, name
        throttling, transient = task["Retry"]
        assert throttling["ErrorEquals"] == ["Lambda.TooManyRequestsException", "Lambda.EC2ThrottledException"]
        assert throttling["MaxAttempts"] == throughput.throttle_retry_max_attempts
        assert throttling["MaxDelaySeconds"] == throughput.throttle_retry_max_delay_seconds
        assert "Lambda.TooManyRequestsException" not in transient["ErrorEquals"]
        assert transient["MaxAttempts"] == config.retry_max_attempts
        for retry in (throttling, transient):
            assert retry["BackoffRate"] > 1 and retry["JitterStrategy"] == "FULL"
        assert task["Catch"][0]["ErrorEquals"] == ["States.ALL"]
    budget = sum(min(5 * 2**n, 300) for n in range(throughput.throttle_retry_max_attempts))
    assert budget >= 60 * 60  # an hour of waiting out throttles before a job fails for it


def test_failures_are_recorded_released_alerted_then_failed(synthesized: Synth) -> None:
    states = _definition(synthesized)["States"]
    for name, task in _tasks(states).items():
        if "/" not in name and name not in ("RecordFailure", "ReleaseAfterFailure", "NotifyFailure"):
            assert task["Catch"][0]["Next"] == "RecordFailure", name
            assert task["Catch"][0]["ResultPath"] == "$.error"
    assert states["RecordFailure"]["Next"] == "ReleaseAfterFailure"
    assert states["ReleaseAfterFailure"]["Next"] == "StartAfterFailure"
    # What the failure recorded goes to the release: a not-owner's failure frees no slot.
    assert states["RecordFailure"]["ResultSelector"]["recorded.$"] == "$.Payload.recorded"
    assert states["ReleaseAfterFailure"]["Parameters"]["Payload"]["recorded.$"] == "$.failureRecord.recorded"
    assert states["StartAfterFailure"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["NotifyFailure"]["Parameters"]["TopicArn"] == "${aws_sns_topic.alerts.arn}"
    assert states["NotifyFailure"]["Next"] == "JobFailed"
    assert states["JobFailed"]["Type"] == "Fail"
    for name in ("ValidateChunks", "FindDuplicates", "Revalidate", "TransformDates"):
        item = states[name]["ItemProcessor"]
        assert item["StartAt"] == f"{name}-Work"
        assert item["States"][f"{name}-Work"]["Catch"][0]["Next"] == f"{name}-RecordItemFailure"
        assert item["States"][f"{name}-RecordItemFailure"]["Next"] == f"{name}-ItemFailed"
        assert item["States"][f"{name}-ItemFailed"]["Type"] == "Fail"


def _reachable(states: dict, start: str) -> set[str]:
    """The top-level states a job reaches from ``start`` when no step fails (no Catch followed)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name]
        todo += [state.get("Next"), state.get("Default")]
        todo += [rule["Next"] for rule in state.get("Choices", [])]
    return seen


def test_a_resent_file_goes_straight_to_the_release_and_no_alert(synthesized: Synth) -> None:
    states = _definition(synthesized)["States"]
    choice = states["Resent?"]
    (rule,) = choice["Choices"]
    # Plan's usual output has no status: the rule tests for it first (a missing path is an error).
    assert rule["And"] == [
        {"Variable": "$.status", "IsPresent": True},
        {"Variable": "$.status", "StringEquals": "RESENT"},
    ]
    assert rule["Next"] == "Release"
    # Unless a step after it fails, a re-send ends JobDone: no failure recorded, no alert published.
    assert _reachable(states, "Release") == {"Release", "StartNext", "JobDone"}
    assert states["JobDone"]["Type"] == "Succeed"


def test_admitted_jobs_start_as_their_own_named_executions(synthesized: Synth) -> None:
    states = _definition(synthesized)["States"]
    for name in ("StartOthers", "StartNext", "StartAdmitted", "StartAfterFailure"):
        assert states[name]["ItemProcessor"]["StartAt"] == f"{name}-Start"
        start = states[name]["ItemProcessor"]["States"][f"{name}-Start"]
        assert start["Resource"] == "arn:aws:states:::states:startExecution"
        assert start["Parameters"] == {
            "StateMachineArn.$": "$$.StateMachine.Id",
            "Name.$": "$.name",
            "Input.$": "$.input",
        }
        assert start["Catch"][0]["ErrorEquals"] == ["StepFunctions.ExecutionAlreadyExistsException"]
        assert start["Catch"][0]["Next"] == f"{name}-AlreadyStarted"
        assert states[name]["ItemProcessor"]["States"][f"{name}-AlreadyStarted"]["Type"] == "Succeed"


def _state_names(states: dict) -> list[str]:
    names = []
    for name, state in states.items():
        names.append(name)
        names.extend(_state_names(state.get("ItemProcessor", {}).get("States", {})))
    return names


def test_state_names_are_unique_across_the_whole_machine_map_children_included(synthesized: Synth) -> None:
    # Step Functions refuses a definition that repeats a name at any depth (DUPLICATE_STATE_NAME).
    names = _state_names(_definition(synthesized)["States"])
    assert len(names) > len(_definition(synthesized)["States"])  # the Maps' children are counted
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    assert max(map(len, names)) <= 80


def test_a_definition_that_repeats_a_state_name_is_refused_at_synth() -> None:
    inner = {"StartAt": "Work", "States": {"Work": {"Type": "Succeed"}}}
    definition = {"StartAt": "Work", "States": {"Work": {"Type": "Map", "ItemProcessor": inner, "End": True}}}
    with pytest.raises(ValueError, match=r"\['Work'\] are used more than once.*DUPLICATE_STATE_NAME"):
        check_state_names(definition)


def _targets_of(synthesized: Synth, *rules: str) -> list[dict]:
    """The targets of the named rules (logical ids `{rule}_rule_...`)."""
    targets = synthesized.resources("orchestration", "aws_cloudwatch_event_target").values()
    found = [t for t in targets if any(t["rule"].startswith(f"${{aws_cloudwatch_event_rule.{r}_rule_") for r in rules)]
    assert len(found) == len(rules), [t["rule"] for t in targets]
    return found


def test_uploads_to_incoming_start_the_workflow_with_a_dead_letter_queue(synthesized: Synth) -> None:
    rules = {r["name"]: r for r in synthesized.resources("orchestration", "aws_cloudwatch_event_rule").values()}
    uploads = json.loads(rules["pipeline-uploads-qa7"]["event_pattern"])
    assert uploads["source"] == ["aws.s3"] and uploads["detail-type"] == ["Object Created"]
    assert uploads["detail"]["object"]["key"] == [{"prefix": "incoming/"}]
    assert uploads["detail"]["bucket"]["name"] == ["${data.aws_ssm_parameter.import-bucket-name.value}"]
    assert rules["pipeline-drain-qa7"]["schedule_expression"] == "rate(5 minutes)"
    queue = synthesized.only("orchestration", "aws_sqs_queue")
    assert queue["kms_master_key_id"] == "${data.aws_ssm_parameter.import-kms-key-arn.value}"
    for target in _targets_of(synthesized, "uploads", "drain"):
        assert target["arn"] == "${aws_sfn_state_machine.workflow.arn}"
        assert target["dead_letter_config"] == {"arn": "${aws_sqs_queue.undelivered_queue_1B2C8B62.arn}"} or target[
            "dead_letter_config"
        ]["arn"].startswith("${aws_sqs_queue.undelivered_queue")
        assert target["retry_policy"]["maximum_event_age_in_seconds"] == 86400
    transformers = [
        t["input_transformer"]
        for t in synthesized.resources("orchestration", "aws_cloudwatch_event_target").values()
        if t.get("input_transformer")
    ]
    assert transformers == [{"input_template": '{"trigger": "s3-eventbridge", "event": <aws.events.event.json>}'}]


def test_alert_topic_is_encrypted(synthesized: Synth) -> None:
    topic = synthesized.only("orchestration", "aws_sns_topic")
    assert topic["kms_master_key_id"] == "${data.aws_ssm_parameter.import-kms-key-arn.value}"
    assert synthesized.resources("orchestration", "aws_sns_topic_subscription") == {}  # no e-mail configured


def test_alarms_page_the_topic_with_a_runbook_line(synthesized: Synth, config: PipelineConfig) -> None:
    alarms = {
        a["alarm_name"]: a for a in synthesized.resources("orchestration", "aws_cloudwatch_metric_alarm").values()
    }
    metrics = sorted((a["namespace"], a["metric_name"]) for a in alarms.values())
    assert metrics.count(("AWS/Lambda", "Errors")) == len(config.functions)
    assert metrics.count(("AWS/Lambda", "Throttles")) == len(config.functions)
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"):
        assert ("AWS/States", metric) in metrics
    assert all(a["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"] for a in alarms.values())
    runbook = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    for alarm in alarms.values():
        anchor = re.search(r"Runbook: docs/operations\.md#([a-z-]+)$", alarm["alarm_description"])
        assert anchor and f'<a id="{anchor[1]}"></a>' in runbook, alarm["alarm_name"]
    freshness = alarms["pipeline-no-file-loaded-qa7"]
    assert (freshness["metric_name"], freshness["comparison_operator"], freshness["threshold"]) == (
        "JobsLoaded",
        "LessThanThreshold",
        1,
    )
    assert freshness["period"] * freshness["evaluation_periods"] == config.monitoring.expected_file_every_hours * 3600
    assert freshness["treat_missing_data"] == "breaching"
    assert freshness["dimensions"] == {"service": "financial-pipeline", "environment": "qa7"}
    assert alarms["pipeline-reject-rate-qa7"]["threshold"] == config.monitoring.reject_rate_alarm_percent
    assert alarms["pipeline-job-failed-qa7"]["metric_name"] == "JobsFailed"
    assert alarms["pipeline-undelivered-starts-qa7"]["namespace"] == "AWS/SQS"


def test_dashboard(synthesized: Synth) -> None:
    dashboard = synthesized.only("orchestration", "aws_cloudwatch_dashboard")
    assert dashboard["dashboard_name"] == "pipeline-health-qa7"
    # Terraform fills in the interpolations (function names, bucket, table) at plan time.
    body = re.sub(r"\$\{[^}]*\}", "resolved-by-terraform", dashboard["dashboard_body"])
    titles = [w["properties"]["title"] for w in json.loads(body)["widgets"]]
    assert titles == [
        "Rows received, loaded, rejected",
        "Reject rate (%, worst file)",
        "Jobs loaded, rejected, failed, resent",
        "Bytes processed",
        "Transactions loaded by two jobs (daily audit)",
        "Job duration (s, p95)",
        "Reconciliation failures and undelivered starts",
        "Lambda invocations",
        "Lambda errors",
        "Lambda throttles",
        "Lambda duration (p95)",
        "Step Functions executions",
        "DynamoDB consumed capacity",
        "S3 storage: the record and the work files",
    ]
    jobs = json.loads(body)["widgets"][2]["properties"]["metrics"]
    assert [row[1] for row in jobs] == ["JobsLoaded", "JobsRejected", "JobsFailed", "JobsResent"]
    assert all(row[2:6] == ["service", "financial-pipeline", "environment", "qa7"] for row in jobs)


def test_state_machine_arn_output(synthesized: Synth) -> None:
    assert synthesized.stacks["orchestration"]["output"]["state_machine_arn"]["value"] == (
        "${aws_sfn_state_machine.workflow.arn}"
    )


def test_no_resend_alarm_unless_configured(synthesized: Synth, config: PipelineConfig) -> None:
    assert config.monitoring.resend_alarm_per_day == 0
    alarms = synthesized.resources("orchestration", "aws_cloudwatch_metric_alarm").values()
    assert [a["alarm_name"] for a in alarms if a["metric_name"] == "JobsResent"] == []


def test_a_resend_alarm_pages_above_the_configured_files_a_day(tmp_path: Path) -> None:
    from pipeline_constructs.framework import App
    from stacks.orchestration import OrchestrationStack

    config = from_env({**TEST_ENV, "RESEND_ALARM_PER_DAY": "12"})
    app = App(outdir=str(tmp_path))
    OrchestrationStack(app, config=config)  # alone: it reads the other layers from Parameter Store
    app.synth()
    stack = json.loads((tmp_path / "stacks" / "orchestration" / "cdk.tf.json").read_text())
    alarms = stack["resource"]["aws_cloudwatch_metric_alarm"].values()
    (alarm,) = [a for a in alarms if a["metric_name"] == "JobsResent"]
    assert alarm["alarm_name"] == "pipeline-resent-files-qa7"
    assert (alarm["namespace"], alarm["statistic"], alarm["comparison_operator"]) == (
        "FinancialPipeline",
        "Sum",
        "GreaterThanThreshold",
    )
    assert (alarm["threshold"], alarm["period"], alarm["evaluation_periods"]) == (12, 86400, 1)
    assert alarm["dimensions"] == {"service": "financial-pipeline", "environment": "qa7"}
    assert alarm["treat_missing_data"] == "notBreaching"
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"]
    assert alarm["alarm_description"].endswith("Runbook: docs/operations.md#resent-files")
    runbook = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert '<a id="resent-files"></a>' in runbook


@pytest.mark.parametrize("value", ["-1", "100001", "many"])
def test_a_bad_resend_threshold_is_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match="RESEND_ALARM_PER_DAY"):
        from_env({**TEST_ENV, "RESEND_ALARM_PER_DAY": value})
