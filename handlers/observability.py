"""Powertools, configured once: structured logs with the jobId, X-Ray subsegments, and business
metrics in CloudWatch's embedded metric format (log lines: no API call, nothing to reach from the
private subnets).

Every metric carries the dimensions service (the project) and environment (the suffix), so the
alarms and the dashboard of one environment (stacks/orchestration.py) see only its own jobs.
"""

from __future__ import annotations

import os
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# The metric names the orchestration layer's alarms and dashboard read (stacks import them).
from lake.metrics import (
    BYTES_PROCESSED,
    JOB_DURATION,
    JOBS_FAILED,
    JOBS_LOADED,
    JOBS_REJECTED,
    JOBS_RESENT,
    NAMESPACE,
    RECONCILIATION_FAILURES,
    REJECT_RATE,
    ROWS_LOADED,
    ROWS_RECEIVED,
    ROWS_REJECTED,
    SERVICE,
)

# A stage without business metrics flushes none; Powertools warns on every such call.
warnings.filterwarnings("ignore", message="No application metrics to publish")
logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
metrics.set_default_dimensions(environment=os.environ.get("ENVIRONMENT_SUFFIX", "unknown"))

__all__ = [
    "BYTES_PROCESSED",
    "JOBS_FAILED",
    "JOBS_LOADED",
    "JOBS_REJECTED",
    "JOBS_RESENT",
    "JOB_DURATION",
    "RECONCILIATION_FAILURES",
    "REJECT_RATE",
    "ROWS_LOADED",
    "ROWS_RECEIVED",
    "ROWS_REJECTED",
    "MetricUnit",
    "count",
    "logger",
    "metrics",
    "tracer",
]


def count(name: str, value: float, unit: str = MetricUnit.Count) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)
