"""VPC with three private subnets and no route to the internet.

The handlers reach S3 and DynamoDB through free gateway endpoints, and Glue (the load function's
commits to the published Iceberg tables) through one interface endpoint, in one AZ outside
production and in every AZ in it (GLUE_ENDPOINT_ZONES): an interface endpoint costs money per AZ
and hour, and one in a single AZ is reached from all three. No NAT gateway.
"""

from __future__ import annotations

import ipaddress

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_availability_zones import DataAwsAvailabilityZones
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule

from pipeline_constructs.encryption_key import EncryptionKey
from pipeline_constructs.framework import Construct, Fn
from pipeline_constructs.iam import Statement, policy_document, service_trust
from stacks import parameters
from stacks.base import LayerStack
from stacks.config import PipelineConfig

AVAILABILITY_ZONES = 3
HTTPS = 443


class NetworkStack(LayerStack):
    def __init__(self, scope: Construct, *, config: PipelineConfig) -> None:
        super().__init__(scope, config=config, layer="network")
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=config.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": self.name("vpc")},
        )
        DefaultSecurityGroup(self, "default-sg-closed", vpc_id=self.vpc.id)  # no rules: denies all
        subnets = self._private_subnets(config.vpc_cidr)
        route_table = RouteTable(self, "private-routes", vpc_id=self.vpc.id, tags={"Name": self.name("private")})
        for index, subnet in enumerate(subnets):
            RouteTableAssociation(self, f"private-{index}-routes", subnet_id=subnet.id, route_table_id=route_table.id)
        endpoints = {
            service: VpcEndpoint(
                self,
                f"{service}-gateway",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{config.region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=[route_table.id],
                tags={"Name": self.name(f"{service}-gateway")},
            )
            for service in ("s3", "dynamodb")
        }
        lambda_sg = self._lambda_security_group(endpoints)
        self._glue_endpoint(subnets[: config.glue_endpoint_zones], lambda_sg)
        self._flow_logs()

        self.export(parameters.VPC_ID, self.vpc.id, description="VPC of the pipeline")
        self.export(
            parameters.PRIVATE_SUBNET_IDS,
            Fn.join(",", [s.id for s in subnets]),
            description="Private subnets, one per availability zone",
            list_value=True,
        )
        self.export(parameters.LAMBDA_SECURITY_GROUP_ID, lambda_sg.id, description="Security group of the functions")

    def _private_subnets(self, vpc_cidr: str) -> list[Subnet]:
        zones = DataAwsAvailabilityZones(self, "zones", state="available")
        blocks = list(ipaddress.ip_network(vpc_cidr).subnets(new_prefix=20))[:AVAILABILITY_ZONES]
        return [
            Subnet(
                self,
                f"private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=str(block),
                availability_zone=Fn.element(zones.names, index),
                map_public_ip_on_launch=False,
                tags={"Name": self.name(f"private-{index}")},
            )
            for index, block in enumerate(blocks)
        ]

    def _lambda_security_group(self, endpoints: dict[str, VpcEndpoint]) -> SecurityGroup:
        group = SecurityGroup(
            self,
            "lambda-sg",
            name=self.name("lambda"),
            description="Pipeline functions: no ingress; HTTPS egress to the S3 and DynamoDB gateway endpoints",
            vpc_id=self.vpc.id,
            tags={"Name": self.name("lambda")},
        )
        # Separate rule resources, not inline rules: inline rules with null fields hide from scanners.
        for service, endpoint in endpoints.items():
            VpcSecurityGroupEgressRule(
                self,
                f"lambda-egress-{service}",
                security_group_id=group.id,
                description=f"HTTPS to {service} through its gateway endpoint",
                ip_protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                prefix_list_id=endpoint.prefix_list_id,
            )
        return group

    def _glue_endpoint(self, subnets: list[Subnet], lambda_sg: SecurityGroup) -> None:
        group = SecurityGroup(
            self,
            "glue-endpoint-sg",
            name=self.name("glue-endpoint"),
            description="Glue interface endpoint: HTTPS from the pipeline functions only",
            vpc_id=self.vpc.id,
            tags={"Name": self.name("glue-endpoint")},
        )
        VpcSecurityGroupIngressRule(
            self,
            "glue-endpoint-ingress",
            security_group_id=group.id,
            description="HTTPS from the pipeline functions",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            referenced_security_group_id=lambda_sg.id,
        )
        VpcSecurityGroupEgressRule(
            self,
            "lambda-egress-glue",
            security_group_id=lambda_sg.id,
            description="HTTPS to Glue through its interface endpoint",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            referenced_security_group_id=group.id,
        )
        VpcEndpoint(
            self,
            "glue-interface",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{self.config.region}.glue",
            vpc_endpoint_type="Interface",
            subnet_ids=[subnet.id for subnet in subnets],
            security_group_ids=[group.id],
            private_dns_enabled=True,
            tags={"Name": self.name("glue-interface")},
        )

    def _flow_logs(self) -> None:
        key = EncryptionKey(
            self,
            "flow-log-key",
            alias=f"alias/{self.name('network')}",
            description="Encrypts the VPC flow logs of the pipeline",
            account_id=self.account_id,
            region=self.config.region,
        )
        log_group = CloudwatchLogGroup(
            self,
            "flow-logs",
            name=f"/vpc/{self.name('flow-logs')}",
            retention_in_days=self.config.log_retention_days,
            kms_key_id=key.arn,
        )
        role = IamRole(
            self,
            "flow-logs-role",
            name=self.name("flow-logs"),
            assume_role_policy=service_trust(
                self, "flow-logs-trust", service="vpc-flow-logs.amazonaws.com", account_id=self.account_id
            ).json,
        )
        IamRolePolicy(
            self,
            "flow-logs-policy",
            role=role.id,
            name="deliver-flow-logs",
            policy=policy_document(
                self,
                "flow-logs-permissions",
                statements=[
                    Statement(
                        sid="DeliverToOwnLogGroup",
                        actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        resources=[log_group.arn, f"{log_group.arn}:*"],
                    ),
                    # Granted on the log group it named nothing: the action takes only "*".
                    Statement(
                        sid="FindLogGroups",
                        actions=["logs:DescribeLogGroups"],
                        resources=["*"],
                        any_resource_reason="logs:DescribeLogGroups has no resource-level permissions "
                        "(Service Authorization Reference, CloudWatch Logs); flow logs' documented policy lists it",
                    ),
                ],
            ).json,
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=600,
        )
