"""CloudWatch alarm evaluation on demand: moto stores metric alarms and never evaluates them.

    POST /_pipeline/alarms/evaluate  -> {"evaluated": [{"alarm", "state", "changed", "datapoints"}],
                                         "skipped": [{"alarm", "reason"}]}

Each metric alarm of every account and region is evaluated now, as CloudWatch does on its own
schedule (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html,
"Configuring how CloudWatch alarms treat missing data"):
  * the evaluation range is the last EvaluationPeriods periods ending now; each period's
    datapoint is the alarm's Statistic of the stored metric data (moto's get_metric_statistics,
    the same namespace, name and dimensions), or missing;
  * a datapoint breaches when it compares to the Threshold as ComparisonOperator says; a missing
    one is breaching or not as TreatMissingData says (`breaching`, `notBreaching`); `ignore` and
    `missing` (the default) leave it out, and with no datapoint at all `ignore` keeps the state and
    `missing` is INSUFFICIENT_DATA;
  * ALARM when at least DatapointsToAlarm (default EvaluationPeriods) of them breach, else OK.
The state is set with moto's set_alarm_state. On a change, with ActionsEnabled, each SNS topic of
the new state's actions (AlarmActions, OKActions, InsufficientDataActions) gets the message
CloudWatch sends: the JSON with AlarmName, NewStateValue, NewStateReason, Trigger, ... and the
subject `ALARM: "name" in <region>`. Not evaluated (listed under "skipped"): alarms on metric math
(Metrics), on an extended statistic (percentiles) and composite alarms.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

LOG = logging.getLogger("local.alarms")

_STATISTICS = {
    "Sum": "sum",
    "Maximum": "maximum",
    "Minimum": "minimum",
    "Average": "average",
    "SampleCount": "sample_count",
}
_COMPARE = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_WORDS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


def _datapoints(backend: Any, alarm: Any, now: Any) -> list[float | None]:
    """The alarm's datapoints over its evaluation range, oldest first (None: missing)."""
    attribute = _STATISTICS[alarm.statistic]
    dimensions = [{"Name": d.name, "Value": d.value} for d in alarm.dimensions]
    period = timedelta(seconds=int(alarm.period))
    points: list[float | None] = []
    for back in range(int(alarm.evaluation_periods), 0, -1):
        start, end = now - back * period, now - (back - 1) * period
        found = backend.get_metric_statistics(
            alarm.namespace, alarm.metric_name, start, end, int(alarm.period), [alarm.statistic], dimensions
        )
        # One period asked for: moto's buckets start at the first datum in it, so there is one.
        value = getattr(found[0], attribute) if found else None
        points.append(None if value is None else float(value))
    return points


def _new_state(alarm: Any, points: list[float | None]) -> tuple[str | None, str]:
    """(the state the datapoints give, or None to keep the current one; the reason)."""
    compare = _COMPARE[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    treat = alarm.treat_missing_data or "missing"
    needed = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
    present = [p for p in points if p is not None]
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None, "no datapoints, missing data ignored: state kept"
        return "INSUFFICIENT_DATA", f"Insufficient Data: {len(points)} datapoints were unknown."
    if treat in ("breaching", "notBreaching"):
        breaching = sum(1 for p in points if (compare(p, threshold) if p is not None else treat == "breaching"))
        counted = len(points)
    else:
        breaching = sum(1 for p in present if compare(p, threshold))
        counted = len(present)
    shown = ", ".join("missing" if p is None else repr(p) for p in points)
    verb = _WORDS[alarm.comparison_operator]
    if breaching >= needed:
        return "ALARM", (
            f"Threshold Crossed: {breaching} out of the last {counted} datapoints [{shown}] was {verb} "
            f"the threshold ({threshold}) (minimum {needed} datapoint(s) for OK -> ALARM transition)."
        )
    return "OK", (
        f"Threshold Crossed: {counted - breaching} out of the last {counted} datapoints [{shown}] was not {verb} "
        f"the threshold ({threshold}) (minimum {needed} datapoint(s) for OK -> ALARM transition)."
    )


def _message(alarm: Any, *, account: str, region: str, old: str, new: str, reason: str, at: Any) -> dict[str, Any]:
    """What CloudWatch publishes to an alarm's SNS actions."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": alarm.configuration_updated_timestamp.isoformat() + "+0000",
        "NewStateValue": new,
        "NewStateReason": reason,
        "StateChangeTime": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "Statistic",
            "Statistic": alarm.statistic.upper(),
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": int(alarm.period),
            "EvaluationPeriods": int(alarm.evaluation_periods),
            "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": float(alarm.threshold),
            "TreatMissingData": alarm.treat_missing_data or "missing",
            "EvaluateLowSampleCountPercentile": "",
        },
    }


def _notify(alarm: Any, message: dict[str, Any], *, account: str, region: str) -> list[str]:
    from moto.sns.models import sns_backends

    actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions}.get(
        message["NewStateValue"], alarm.insufficient_data_actions
    )
    sent = []
    for action in actions or []:
        parts = action.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            continue  # Auto Scaling, EC2 and Systems Manager actions have no emulator here
        topic_region, topic_account = parts[3], parts[4] or account
        sns_backends[topic_account][topic_region].publish(
            message=json.dumps(message),
            arn=action,
            subject=f'{message["NewStateValue"]}: "{alarm.name}" in {region}'[:100],
        )
        sent.append(action)
    return sent


def evaluate_all() -> dict[str, list[dict[str, Any]]]:
    """Evaluate every metric alarm now; what each gave, and which were not evaluated and why."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.utils import utcnow

    evaluated: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    # moto keeps metric times as naive UTC and cuts the range's end to the second: the next second,
    # so a datapoint put this second is in the range.
    now = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    for account, regions in cloudwatch_backends.items():
        for region, backend in regions.items():
            for alarm in list(backend.alarms.values()):
                if alarm.rule or alarm.metric_data_queries or alarm.extended_statistic:
                    skipped.append({"alarm": alarm.name, "reason": "composite, metric math or percentile alarm"})
                    continue
                if alarm.statistic not in _STATISTICS or alarm.comparison_operator not in _COMPARE:
                    skipped.append({"alarm": alarm.name, "reason": f"{alarm.statistic} / {alarm.comparison_operator}"})
                    continue
                points = _datapoints(backend, alarm, now)
                state, reason = _new_state(alarm, points)
                old = alarm.state_value
                changed = state is not None and state != old
                sent: list[str] = []
                if changed:
                    data = json.dumps({"version": "1.0", "evaluatedDatapoints": points})
                    backend.set_alarm_state(alarm.name, reason, data, state)
                    if alarm.actions_enabled:
                        message = _message(
                            alarm, account=account, region=region, old=old, new=state, reason=reason, at=now
                        )
                        sent = _notify(alarm, message, account=account, region=region)
                    LOG.info("alarm %s: %s -> %s (%s)", alarm.name, old, state, reason)
                evaluated.append(
                    {
                        "alarm": alarm.name,
                        "state": alarm.state_value,
                        "changed": changed,
                        "datapoints": points,
                        "notified": sent,
                    }
                )
    return {"evaluated": evaluated, "skipped": skipped}


def endpoint(method: str, path: str) -> tuple[str, Any]:
    if path == "/_pipeline/alarms/evaluate" and method == "POST":
        return "200 OK", evaluate_all()
    return "404 Not Found", {"message": f"no such endpoint: {method} {path}"}
