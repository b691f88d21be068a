"""A CloudWatch alarm that pages the alert topic when a count metric goes above zero."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm

from pipeline_constructs.framework import Construct


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
    return CloudwatchMetricAlarm(
        scope,
        id_,
        alarm_name=name,
        alarm_description=description,
        namespace=namespace,
        metric_name=metric,
        dimensions=dict(dimensions),
        statistic="Sum",
        period=period_seconds,
        evaluation_periods=1,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
    )
