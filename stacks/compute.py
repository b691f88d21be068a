"""The shared dependency layer and the pipeline's functions, each with its own narrow role."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from cdktf_cdktf_provider_aws.lambda_layer_version import LambdaLayerVersion
from cdktf_cdktf_provider_aws.s3_object import S3Object

from lake import layout
from pipeline_constructs.framework import AssetType, Construct, TerraformAsset
from pipeline_constructs.iam import Condition, Statement
from pipeline_constructs.lambda_function import ARCHITECTURE, FunctionCode, PipelineFunction, Placement
from pipeline_constructs.packaging import LayerTarget, Package, build_layer, package_functions
from stacks import parameters
from stacks.base import LayerStack
from stacks.config import PipelineConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HANDLERS_DIR = PROJECT_ROOT / "handlers"
# The functions' code: the handlers and the data layout they share with the stacks.
CODE_DIRS = (HANDLERS_DIR, PROJECT_ROOT / "lake")
BUILD_DIR = PROJECT_ROOT / "build"


@dataclass(frozen=True, kw_only=True)
class DataAccess:
    """What a function may do in the buckets (by prefix; lake/layout.py says which bucket holds it) and
    the job table."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    # Prefixes whose missing keys the function must tell from denied ones (S3 answers NoSuchKey
    # instead of AccessDenied only to a caller that may list): it looks for its earlier results.
    lists: tuple[str, ...] = ()
    # Functions read their job and update it; the tasks (handlers/jobflow.py) note every chunk
    # done on it, which keeps the job's admission lease during a long map.
    table: tuple[str, ...] = ("GetItem", "UpdateItem")
    queue: bool = False  # queries the admission queue index
    # Commits to the published Iceberg tables (through the Glue interface endpoint: docs/architecture.md).
    commits: bool = False


_JOB_WRITES = ("GetItem", "PutItem", "UpdateItem")
# Each grant is one the code uses: the emulator enforces IAM, and tests/e2e/test_iam_denials.py
# checks that everything else is denied (docs/security.md, section 4).
ACCESS = {
    "ingest": DataAccess(reads=(layout.INCOMING, layout.RAW), writes=(layout.RAW,), table=_JOB_WRITES),
    "admit": DataAccess(queue=True),
    "plan": DataAccess(
        reads=(layout.INCOMING, layout.RAW, layout.STAGING),
        writes=(layout.STAGING,),
        lists=(layout.STAGING,),
        table=_JOB_WRITES,
    ),
    "validate": DataAccess(
        reads=(layout.INCOMING, layout.RAW, layout.STAGING),
        writes=(layout.STAGING, layout.QUARANTINE),
        lists=(layout.STAGING,),
    ),
    "dedupe": DataAccess(reads=(layout.STAGING,), writes=(layout.STAGING,)),
    "summarize": DataAccess(reads=(layout.STAGING,), writes=(layout.STAGING,)),
    "transform": DataAccess(reads=(layout.STAGING, layout.CURATED), writes=(layout.CURATED,), lists=(layout.CURATED,)),
    "load": DataAccess(
        # processed/: the tables' metadata it commits on, and the footers of the files it registers.
        reads=(layout.STAGING, layout.CURATED, layout.PROCESSED),
        writes=(layout.PROCESSED, layout.MANIFESTS),
        commits=True,
    ),
    "failure": DataAccess(table=_JOB_WRITES),
}


class ComputeStack(LayerStack):
    def __init__(self, scope: Construct, *, config: PipelineConfig) -> None:
        super().__init__(scope, config=config, layer="compute")
        buckets = BucketArns(data=self.imported(parameters.BUCKET_ARN), work=self.imported(parameters.WORK_BUCKET_ARN))
        self.work_bucket = self.imported(parameters.WORK_BUCKET_NAME)
        table_arn = self.imported(parameters.TABLE_ARN)
        kms_key_arn = self.imported(parameters.KMS_KEY_ARN)
        placement = Placement(
            subnet_ids=self.imported_list(parameters.PRIVATE_SUBNET_IDS),
            security_group_ids=[self.imported(parameters.LAMBDA_SECURITY_GROUP_ID)],
        )
        code_package = package_functions(sources=CODE_DIRS, build_dir=BUILD_DIR)
        layer = self._dependency_layer()
        throughput = config.throughput
        environment = {
            "DATA_BUCKET": self.imported(parameters.BUCKET_NAME),
            "WORK_BUCKET": self.work_bucket,
            "GLUE_DATABASE": self.imported(parameters.GLUE_DATABASE),
            "JOBS_TABLE": self.imported(parameters.TABLE_NAME),
            "ENVIRONMENT_SUFFIX": config.environment_suffix,
            "REJECT_THRESHOLD": config.reject_threshold,
            "CHUNK_BYTES": str(throughput.chunk_bytes),
            "DEDUP_PARTITION_RECORDS": str(throughput.dedup_partition_records),
            "TRANSFORM_ITEM_ROWS": str(throughput.transform_item_rows),
            "MAX_RUNNING_JOBS": str(throughput.max_running_jobs),
            "JOB_LEASE_SECONDS": str(config.job_lease_seconds),
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
                reserved_concurrency=settings.reserved_concurrency,
                statements=[
                    *_data_statements(ACCESS[function], buckets=buckets, table_arn=table_arn),
                    *self._catalog_statements(ACCESS[function]),
                ],
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
        # Through S3: Lambda takes at most 50 MB zipped in the request itself, and the layer is larger
        # (docs/limits.md). The key names the content, so an unchanged layer is the same object.
        upload = S3Object(
            self,
            "dependencies-upload",
            bucket=self.work_bucket,
            key=layout.layer_key(package.sha256),
            source=self._asset("dependencies-layer", package),
            source_hash=package.sha256,
        )
        return LambdaLayerVersion(
            self,
            "dependencies",
            layer_name=self.name("dependencies"),
            description=f"Pinned handler dependencies ({target.key})",
            s3_bucket=upload.bucket,
            s3_key=upload.key,
            source_code_hash=_base64(package),
            compatible_runtimes=[self.config.lambda_runtime],
            compatible_architectures=[ARCHITECTURE],
        )

    def _catalog_statements(self, access: DataAccess) -> list[Statement]:
        if not access.commits:
            return []
        database = self.imported(parameters.GLUE_DATABASE)
        glue = f"arn:aws:glue:{self.config.region}:{self.account_id}"
        return [
            Statement(
                sid="CommitToPublishedTables",
                # pyiceberg reads the database before a commit (is it an S3 Tables catalog?).
                actions=["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"],
                resources=[f"{glue}:catalog", f"{glue}:database/{database}", f"{glue}:table/{database}/*"],
            )
        ]

    def _asset(self, id_: str, package: Package) -> str:
        return TerraformAsset(self, id_, path=str(package.path), type=AssetType.FILE, asset_hash=package.sha256).path


def _base64(package: Package) -> str:
    return base64.b64encode(bytes.fromhex(package.sha256)).decode()


@dataclass(frozen=True, kw_only=True)
class BucketArns:
    data: str
    work: str

    def holding(self, prefix: str) -> str:
        return self.work if prefix in layout.WORK else self.data

    def objects(self, prefix: str) -> str:
        return f"{self.holding(prefix)}/{prefix}/*"


def _data_statements(access: DataAccess, *, buckets: BucketArns, table_arn: str) -> list[Statement]:
    statements = [
        Statement(sid="TrackJobs", actions=[f"dynamodb:{action}" for action in access.table], resources=[table_arn])
    ]
    if access.queue:
        statements.append(
            Statement(sid="ReadAdmissionQueue", actions=["dynamodb:Query"], resources=[f"{table_arn}/index/*"])
        )
    if access.lists:
        statements.append(
            Statement(
                sid="ListOwnResults",
                actions=["s3:ListBucket"],
                resources=sorted({buckets.holding(prefix) for prefix in access.lists}),
                conditions=[
                    Condition(
                        test="StringLike", variable="s3:prefix", values=[f"{prefix}/*" for prefix in access.lists]
                    )
                ],
            )
        )
    if access.reads:
        statements.append(
            Statement(
                sid="ReadOwnInputs",
                actions=["s3:GetObject"],
                resources=[buckets.objects(prefix) for prefix in access.reads],
            )
        )
    if access.writes:
        statements.append(
            Statement(
                sid="WriteOwnOutputs",
                actions=["s3:PutObject"],
                resources=[buckets.objects(prefix) for prefix in access.writes],
            )
        )
    return statements
