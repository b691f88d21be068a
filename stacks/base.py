"""What every layer shares: provider, state backend, FinOps tags, and the SSM channel."""

from __future__ import annotations

import os
from pathlib import Path

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_ssm_parameter import DataAwsSsmParameter
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderEndpoints
from cdktf_cdktf_provider_aws.ssm_parameter import SsmParameter

from pipeline_constructs.framework import App, Aspects, Construct, Fn, LocalBackend, S3Backend, TerraformStack
from pipeline_constructs.policy import SecurityPolicy
from pipeline_constructs.tagging import FinOpsTagging, RequireFinOpsTags
from stacks import parameters
from stacks.config import PipelineConfig

# Local state of every environment of this checkout; outside cdktf.out, so `make clean` keeps it.
STATE_DIR = Path(__file__).resolve().parents[1] / ".state"

# Services the stacks manage, pointed at the emulator when LOCAL=1.
_LOCAL_SERVICES = (
    "athena",
    "cloudwatch",
    "cloudwatchlogs",
    "dynamodb",
    "ec2",
    "events",
    "glue",
    "iam",
    "kms",
    "lambda",
    "s3",
    "sfn",
    "sns",
    "sqs",
    "ssm",
    "sts",
)


class LayerStack(TerraformStack):
    """One independently deployable layer. Its only inputs from other layers are SSM parameters."""

    def __init__(self, scope: Construct, *, config: PipelineConfig, layer: str) -> None:
        super().__init__(scope, layer)
        self.config = config
        self.layer = layer
        self._imports: dict[str, str] = {}
        self._configure_provider()
        self._configure_state()
        tags = config.tags_for_layer(layer)
        Aspects.of(self).add(FinOpsTagging(tags))
        # After the tagging aspect: a node's aspects run in the order added (pipeline_constructs/policy.py).
        Aspects.of(self).add(SecurityPolicy(tags))
        self.node.add_validation(RequireFinOpsTags(self, tags))
        self.account_id = DataAwsCallerIdentity(self, "caller").account_id

    def name(self, purpose: str) -> str:
        return self.config.resource_name(purpose)

    def export(self, key: str, value: str, *, description: str, list_value: bool = False) -> SsmParameter:
        return SsmParameter(
            self,
            f"export-{key.replace('/', '-')}",
            name=parameters.name(self.config.environment_suffix, key),
            type="StringList" if list_value else "String",
            value=value,
            description=description,
        )

    def imported(self, key: str) -> str:
        """A value another layer exported; a plan fails naming the parameter if it is missing."""
        if key not in self._imports:
            self._imports[key] = DataAwsSsmParameter(
                self, f"import-{key.replace('/', '-')}", name=parameters.name(self.config.environment_suffix, key)
            ).value
        return self._imports[key]

    def imported_list(self, key: str) -> list[str]:
        return Fn.split(",", self.imported(key))

    def _configure_provider(self) -> None:
        if not self.config.local:
            AwsProvider(self, "aws", region=self.config.region)
            return
        endpoint = self.config.local_endpoint
        AwsProvider(
            self,
            "aws",
            region=self.config.region,
            access_key="test",
            secret_key="test",  # noqa: S106 - the local emulator's fixed fake credentials
            skip_credentials_validation=True,
            skip_metadata_api_check="true",
            # Asked of the emulator's STS: a provider that does not know its account reads a rule naming
            # a security group of its own account as "<account>/sg-..." and plans to change it every time.
            skip_requesting_account_id=False,
            s3_use_path_style=True,
            endpoints=[AwsProviderEndpoints(**{_python_name(service): endpoint for service in _LOCAL_SERVICES})],
        )

    def _configure_state(self) -> None:
        suffix = self.config.environment_suffix
        if self.config.state_bucket and not self.config.local:
            S3Backend(
                self,
                bucket=self.config.state_bucket,
                key=f"pipeline/{suffix}/{self.layer}.tfstate",
                region=self.config.region,
                encrypt=True,
            )
            # Terraform's native S3 lock file (1.10+); the cdktf 0.21 struct predates it.
            self.add_override("terraform.backend.s3.use_lockfile", True)
            return
        state = STATE_DIR / environment_name(self.config) / f"{self.layer}.tfstate"
        # Relative from the layer's directory, wherever the environment was synthesized
        # (Make's cdktf.out/<environment>, the cdktf CLI's --output), so all find the same state.
        stack_dir = Path(App.of(self).outdir).resolve() / "stacks" / self.layer
        LocalBackend(self, path=os.path.relpath(state, stack_dir))


def environment_name(config: PipelineConfig) -> str:
    """`dev` on AWS, `local-dev` on the emulator: names an environment's local state in .state/
    and its directory in cdktf.out/ (the Makefile's ENVIRONMENT follows the same rule)."""
    return f"local-{config.environment_suffix}" if config.local else config.environment_suffix


def _python_name(service: str) -> str:
    return f"{service}_" if service == "lambda" else service  # `lambda` is a Python keyword
