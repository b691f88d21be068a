"""Find a deployment through its Parameter Store exports, on AWS or the local emulator.

boto3 honours AWS_ENDPOINT_URL, so the same code talks to either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3

from lake import defaults
from stacks import parameters

# The admission queue's index on the job table (handlers/dal/admission.py).
QUEUE_INDEX = "queue-index"


class DeploymentNotFound(RuntimeError):
    pass


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or defaults.REGION


def client(service: str) -> Any:
    return boto3.client(service, region_name=region())


@dataclass(frozen=True, kw_only=True)
class Deployment:
    suffix: str
    bucket: str  # the data bucket: sources, quarantine, the published tables, manifests
    work_bucket: str  # a job's own files (lake/layout.py WORK)
    table: str
    state_machine_arn: str
    database: str  # the Glue database of the published tables

    @classmethod
    def discover(cls, suffix: str) -> Deployment:
        keys = (
            parameters.BUCKET_NAME,
            parameters.WORK_BUCKET_NAME,
            parameters.TABLE_NAME,
            parameters.STATE_MACHINE_ARN,
            parameters.GLUE_DATABASE,
        )
        names = [parameters.name(suffix, key) for key in keys]
        found = client("ssm").get_parameters(Names=names)
        values = {p["Name"]: p["Value"] for p in found["Parameters"]}
        missing = [name for name in names if name not in values]
        if missing:
            raise DeploymentNotFound(
                f"Parameter Store has no {', '.join(missing)}: deploy the '{suffix}' environment first "
                f"(make deploy ENVIRONMENT_SUFFIX={suffix}, with LOCAL=1 for the local emulator)"
            )
        bucket, work_bucket, table, arn, database = (values[name] for name in names)
        return cls(
            suffix=suffix, bucket=bucket, work_bucket=work_bucket, table=table, state_machine_arn=arn, database=database
        )

    def job(self, job_id: str) -> dict[str, Any] | None:
        item = client("dynamodb").get_item(TableName=self.table, Key={"jobId": {"S": job_id}}, ConsistentRead=True)
        return _plain(item["Item"]) if "Item" in item else None

    def place(self, job: dict[str, Any]) -> int:
        """1 for the next waiting job to start, 2 for the one after it, ..."""
        ahead, kwargs = 0, {}
        while True:
            page = client("dynamodb").query(
                TableName=self.table,
                IndexName=QUEUE_INDEX,
                KeyConditionExpression="#q = :waiting AND #t < :ticket",
                ExpressionAttributeNames={"#q": "queue", "#t": "ticket"},
                ExpressionAttributeValues={":waiting": {"S": "WAITING"}, ":ticket": {"N": str(job["ticket"])}},
                Select="COUNT",
                **kwargs,
            )
            ahead += page["Count"]
            if "LastEvaluatedKey" not in page:
                return ahead + 1
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def _plain(attribute_map: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {key: _jsonable(deserializer.deserialize(value)) for key, value in attribute_map.items()}


def _jsonable(value: Any) -> Any:
    """Counts come back as Decimal; amounts are stored as strings and stay exact."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_jsonable(v) for v in value]
    return value


def default_suffix() -> str:
    return os.environ.get("ENVIRONMENT_SUFFIX") or defaults.ENVIRONMENT_SUFFIX
