"""CloudWatch's extraction of embedded-metric-format log lines, which moto does not do.

On AWS, a function's log line with an ``_aws.CloudWatchMetrics`` directive becomes metric data
points; here each invocation's output is read the same way and the points are put into moto's
CloudWatch, so alarms, the dashboard and the tests see the business metrics the handlers emit.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

LOG = logging.getLogger("local.metrics")


def emf_datums(line: str) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, PutMetricData datum) of every metric an EMF log line carries."""
    if '"_aws"' not in line:
        return []
    try:
        blob = json.loads(line)
    except ValueError:
        return []
    meta = blob.get("_aws") if isinstance(blob, dict) else None
    if not isinstance(meta, dict):
        return []
    # moto keeps metric times as naive UTC and compares them with the query's naive bounds
    timestamp = datetime.fromtimestamp(int(meta.get("Timestamp", 0)) / 1000, tz=UTC).replace(tzinfo=None)
    datums = []
    for directive in meta.get("CloudWatchMetrics") or []:
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": name, "Value": str(blob[name])} for name in dimension_set if name in blob]
            for metric in directive.get("Metrics") or []:
                values = blob.get(metric["Name"])
                values = values if isinstance(values, list) else [values]
                datum = {
                    "MetricName": metric["Name"],
                    "Values": [float(v) for v in values if v is not None],
                    "Dimensions": dimensions,
                    "Timestamp": timestamp,
                    "Unit": metric.get("Unit", "None"),
                }
                datums.append((directive["Namespace"], datum))
    return datums


def record(output: str, *, account_id: str, region: str) -> int:
    """Put the metrics of an invocation's output into moto's CloudWatch; the number of points."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[account_id][region]
    points = 0
    for line in output.splitlines():
        for namespace, datum in emf_datums(line.strip()):
            try:
                backend.put_metric_data(namespace, [datum])
                points += len(datum["Values"])
            except Exception as exc:  # noqa: BLE001 - a bad metric must not fail an invocation
                LOG.warning("could not record metric %s: %s", datum["MetricName"], exc)
    return points
