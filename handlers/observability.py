"""Structured JSON logging (Powertools Logger) carrying the jobId."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger()


def bind_job(*, job_id: object, stage: str) -> None:
    logger.append_keys(jobId=job_id, stage=stage)
