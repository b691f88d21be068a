"""CloudWatch alarms that page the alert topic, each with the runbook line for whoever it wakes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm

from pipeline_constructs.framework import Construct


@dataclass(frozen=True, kw_only=True)
class Metric:
    namespace: str
    name: str
    dimensions: Mapping[str, str]
    statistic: str = "Sum"


def metric_alarm(
    scope: Construct,
    id_: str,
    *,
    name: str,
    description: str,
    metric: Metric,
    topic_arn: str,
    threshold: float = 0,
    comparison: str = "GreaterThanThreshold",
    period_seconds: int = 300,
    evaluation_periods: int = 1,
    missing_data: str = "notBreaching",
) -> CloudwatchMetricAlarm:
    return CloudwatchMetricAlarm(
        scope,
        id_,
        alarm_name=name,
        alarm_description=description,
        namespace=metric.namespace,
        metric_name=metric.name,
        dimensions=dict(metric.dimensions),
        statistic=metric.statistic,
        period=period_seconds,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=evaluation_periods,
        threshold=threshold,
        comparison_operator=comparison,
        treat_missing_data=missing_data,
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
    )


def count_alarm(
    scope: Construct,
    id_: str,
    *,
    name: str,
    description: str,
    namespace: str,
    metric: str,
    dimensions: Mapping[str, str],
    topic_arn: str,
    period_seconds: int = 300,
) -> CloudwatchMetricAlarm:
    """Pages when a count goes above zero in a period."""
    return metric_alarm(
        scope,
        id_,
        name=name,
        description=description,
        metric=Metric(namespace=namespace, name=metric, dimensions=dimensions),
        topic_arn=topic_arn,
        period_seconds=period_seconds,
    )
