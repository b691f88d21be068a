"""One Lambda function the way every function of the pipeline is built.

arm64, X-Ray tracing, environment encrypted with the customer key, placed in the private
subnets, its own encrypted log group and its own least-privilege role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionEnvironment,
    LambdaFunctionEphemeralStorage,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)

from pipeline_constructs.framework import Construct
from pipeline_constructs.iam import WRITE_TRACES, Statement, policy_document, service_trust

ARCHITECTURE = "arm64"


@dataclass(frozen=True, kw_only=True)
class FunctionCode:
    filename: str
    sha256_base64: str


@dataclass(frozen=True, kw_only=True)
class Placement:
    subnet_ids: Sequence[str]
    security_group_ids: Sequence[str]


class PipelineFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        function_name: str,
        handler: str,
        code: FunctionCode,
        layer_arns: Sequence[str],
        runtime: str,
        memory_mb: int,
        timeout_seconds: int,
        ephemeral_storage_mb: int,
        environment: Mapping[str, str],
        kms_key_arn: str,
        placement: Placement,
        log_retention_days: int,
        reserved_concurrency: int | None,
        statements: Sequence[Statement],
        account_id: str,
    ) -> None:
        super().__init__(scope, id_)
        self._account_id = account_id
        self.log_group = CloudwatchLogGroup(
            self,
            "logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=log_retention_days,
            kms_key_id=kms_key_arn,
        )
        self.role = IamRole(
            self,
            "role",
            name=f"{function_name}-role",
            assume_role_policy=service_trust(self, "trust", service="lambda.amazonaws.com", account_id=account_id).json,
        )
        policy = IamRolePolicy(
            self,
            "policy",
            role=self.role.id,
            name="least-privilege",
            policy=policy_document(self, "permissions", statements=[*self._baseline(kms_key_arn), *statements]).json,
        )
        self.function = LambdaFunction(
            self,
            "function",
            function_name=function_name,
            role=self.role.arn,
            handler=handler,
            runtime=runtime,
            architectures=[ARCHITECTURE],
            filename=code.filename,
            source_code_hash=code.sha256_base64,
            layers=list(layer_arns),
            memory_size=memory_mb,
            timeout=timeout_seconds,
            ephemeral_storage=LambdaFunctionEphemeralStorage(size=ephemeral_storage_mb),
            reserved_concurrent_executions=reserved_concurrency if reserved_concurrency is not None else -1,
            kms_key_arn=kms_key_arn,
            environment=LambdaFunctionEnvironment(variables=dict(environment)),
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=list(placement.subnet_ids), security_group_ids=list(placement.security_group_ids)
            ),
            logging_config=LambdaFunctionLoggingConfig(log_format="JSON", log_group=self.log_group.name),
            depends_on=[self.log_group, policy],
        )

    def _baseline(self, kms_key_arn: str) -> list[Statement]:
        return [
            Statement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{self.log_group.arn}:*"],
            ),
            Statement(
                sid="DecryptEnvironmentAndData",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[kms_key_arn],
            ),
            Statement(
                sid="ManageOwnNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                # These take resource ARNs: this account's interfaces, subnets and security groups only.
                resources=[
                    f"arn:aws:ec2:*:{self._account_id}:network-interface/*",
                    f"arn:aws:ec2:*:{self._account_id}:subnet/*",
                    f"arn:aws:ec2:*:{self._account_id}:security-group/*",
                ],
            ),
            Statement(
                sid="ManageVpcNetworkInterfaces",
                actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
                resources=["*"],
                any_resource_reason="ec2:Describe* has no resource-level permissions; Lambda looks up the "
                "function's subnets and ENIs with them (both in AWSLambdaVPCAccessExecutionRole)",
            ),
            WRITE_TRACES,
        ]
