"""Parameter Store names: the only channel between stacks, and how tools find a deployment.

Pure Python (no cdktf import) so the `pipeline` CLI can use it without the framework.
"""

from __future__ import annotations

LAYERS = ("network", "storage", "compute", "orchestration")


def prefix(suffix: str) -> str:
    return f"/pipeline/{suffix}"


def name(suffix: str, key: str) -> str:
    return f"{prefix(suffix)}/{key}"


# What an operator or a tool looks up first: the bucket, the table, the state machine, the VPC.
BUCKET_NAME = "bucket-name"
TABLE_NAME = "table-name"
STATE_MACHINE_ARN = "state-machine-arn"
VPC_ID = "vpc-id"
# What the wiring needs besides them.
PRIVATE_SUBNET_IDS = "private-subnet-ids"
LAMBDA_SECURITY_GROUP_ID = "lambda-security-group-id"
BUCKET_ARN = "bucket-arn"
WORK_BUCKET_NAME = "work-bucket-name"
WORK_BUCKET_ARN = "work-bucket-arn"
TABLE_ARN = "table-arn"
KMS_KEY_ARN = "kms-key-arn"
ALERT_TOPIC_ARN = "alert-topic-arn"
GLUE_DATABASE = "glue-database"
ATHENA_WORKGROUP = "athena-workgroup"
AUDIT_WORKGROUP = "audit-workgroup"


def function_arn(function: str) -> str:
    return f"functions/{function}-arn"
