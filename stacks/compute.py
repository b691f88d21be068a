"""The shared dependency layer and the pipeline's functions, each with its own narrow role."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from cdktf_cdktf_provider_aws.lambda_layer_version import LambdaLayerVersion

from pipeline_constructs.framework import AssetType, Construct, TerraformAsset
from pipeline_constructs.iam import Statement
from pipeline_constructs.lambda_function import ARCHITECTURE, FunctionCode, PipelineFunction, Placement
from pipeline_constructs.packaging import LayerTarget, Package, build_layer, package_functions
from stacks import parameters
from stacks.base import LayerStack
from stacks.config import PipelineConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HANDLERS_DIR = PROJECT_ROOT / "handlers"
BUILD_DIR = PROJECT_ROOT / "build"


@dataclass(frozen=True, kw_only=True)
class DataAccess:
    """The S3 prefixes of the data bucket a function reads and writes (see docs/data-contract.md),
    and the DynamoDB actions it takes on the job table (a stage reads and completes its job)."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ("GetItem", "UpdateItem")


# Each grant is one the code uses: the emulator enforces IAM, and tests/e2e/test_iam_denials.py
# checks that everything else is denied (docs/security.md, section 4).
ACCESS = {
    "ingest": DataAccess(reads=("incoming", "raw"), writes=("raw",), jobs=("GetItem", "PutItem")),
    "validate": DataAccess(reads=("incoming", "raw"), writes=("staging", "quarantine")),
    "transform": DataAccess(reads=("staging",), writes=("curated",)),
    "load": DataAccess(reads=("curated",), writes=("processed", "manifests")),
    "failure": DataAccess(jobs=("GetItem", "PutItem", "UpdateItem")),
}


class ComputeStack(LayerStack):
    def __init__(self, scope: Construct, *, config: PipelineConfig) -> None:
        super().__init__(scope, config=config, layer="compute")
        bucket_arn = self.imported(parameters.BUCKET_ARN)
        table_arn = self.imported(parameters.TABLE_ARN)
        kms_key_arn = self.imported(parameters.KMS_KEY_ARN)
        placement = Placement(
            subnet_ids=self.imported_list(parameters.PRIVATE_SUBNET_IDS),
            security_group_ids=[self.imported(parameters.LAMBDA_SECURITY_GROUP_ID)],
        )
        code_package = package_functions(handlers_dir=HANDLERS_DIR, build_dir=BUILD_DIR)
        layer = self._dependency_layer()
        environment = {
            "DATA_BUCKET": self.imported(parameters.BUCKET_NAME),
            "JOBS_TABLE": self.imported(parameters.TABLE_NAME),
            "REJECT_THRESHOLD": config.reject_threshold,
            "CODE_VERSION": code_package.short_hash,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        code = FunctionCode(filename=self._asset("handlers-code", code_package), sha256_base64=_base64(code_package))
        for function, settings in config.functions.items():
            deployed = PipelineFunction(
                self,
                function,
                function_name=self.name(function),
                handler=f"handlers.{function}.lambda_handler",
                code=code,
                layer_arns=[layer.arn],
                runtime=config.lambda_runtime,
                memory_mb=settings.memory_mb,
                timeout_seconds=settings.timeout_seconds,
                ephemeral_storage_mb=settings.ephemeral_storage_mb,
                environment={**environment, "POWERTOOLS_SERVICE_NAME": self.name(function)},
                kms_key_arn=kms_key_arn,
                placement=placement,
                log_retention_days=config.log_retention_days,
                reserved_concurrency=config.reserved_concurrency,
                statements=_data_statements(ACCESS[function], bucket_arn=bucket_arn, table_arn=table_arn),
                account_id=self.account_id,
            )
            self.export(
                parameters.function_arn(function), deployed.function.arn, description=f"The {function} function"
            )

    def _dependency_layer(self) -> LambdaLayerVersion:
        # Locally the emulator runs handlers with this machine's Python, so the layer's
        # compiled wheels must be built for it rather than for arm64 Lambda.
        target = LayerTarget.this_host() if self.config.local else LayerTarget.lambda_arm64(self.config.lambda_runtime)
        package = build_layer(requirements=HANDLERS_DIR / "requirements.txt", target=target, build_dir=BUILD_DIR)
        return LambdaLayerVersion(
            self,
            "dependencies",
            layer_name=self.name("dependencies"),
            description=f"Pinned handler dependencies ({target.key})",
            filename=self._asset("dependencies-layer", package),
            source_code_hash=_base64(package),
            compatible_runtimes=[self.config.lambda_runtime],
            compatible_architectures=[ARCHITECTURE],
        )

    def _asset(self, id_: str, package: Package) -> str:
        return TerraformAsset(self, id_, path=str(package.path), type=AssetType.FILE, asset_hash=package.sha256).path


def _base64(package: Package) -> str:
    return base64.b64encode(bytes.fromhex(package.sha256)).decode()


def _data_statements(access: DataAccess, *, bucket_arn: str, table_arn: str) -> list[Statement]:
    statements = []
    if access.jobs:
        statements.append(
            Statement(sid="TrackJobs", actions=[f"dynamodb:{action}" for action in access.jobs], resources=[table_arn])
        )
    if access.reads:
        statements.append(
            Statement(
                sid="ReadOwnInputs",
                actions=["s3:GetObject"],
                resources=[f"{bucket_arn}/{prefix}/*" for prefix in access.reads],
            )
        )
    if access.writes:
        statements.append(
            Statement(
                sid="WriteOwnOutputs",
                actions=["s3:PutObject"],
                resources=[f"{bucket_arn}/{prefix}/*" for prefix in access.writes],
            )
        )
    return statements
