"""The one typed configuration object, built in app.py and handed to every stack.

Values come from environment variables with safe defaults; `from_env` validates them
and fails before synthesis with a message that names the setting and the rule.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from lake import defaults
from pipeline_constructs.workflow import Retries, RetryPolicy, longest_task_seconds
from stacks.parameters import LAYERS

# Lowercase because S3 bucket names must be; short because IAM role names stop at 64 characters.
_SUFFIX_RULE = re.compile(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$|^[a-z]$")
_REGION_RULE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_TAG_VALUE_RULE = re.compile(r"^[\w .:/=+@-]{1,256}$")
_LAMBDA_MEMORY_MB = range(128, 10241)
_LAMBDA_TIMEOUT_S = range(1, 901)
_LOG_RETENTION_DAYS = {
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
}
# python3.13 runs on Amazon Linux 2023 (deprecation 2029); python3.11 runs on
# Amazon Linux 2, whose Lambda runtimes reach deprecation in 2027.
DEFAULT_LAMBDA_RUNTIME = "python3.13"
SUPPORTED_LAMBDA_RUNTIMES = ("python3.12", "python3.13")
MAX_RESEND_ALARM_PER_DAY = 100_000


class ConfigError(ValueError):
    """A setting breaks a rule; the message names the setting, the value and the rule."""


@dataclass(frozen=True, kw_only=True)
class FunctionSettings:
    memory_mb: int
    timeout_seconds: int
    # /tmp: validate, dedupe and transform work on local copies of a job's files.
    ephemeral_storage_mb: int = 512
    # Set when LAMBDA_CONCURRENCY_BUDGET is: the functions that keep the queue moving and record
    # failures are guaranteed their share (see CONTROL_RESERVE).
    reserved_concurrency: int | None = None


# Functions every job passes through once, quickly (ingest, admit, failure): with a concurrency
# budget they get this much reserved, so a busy account still admits, releases and records.
CONTROL_RESERVE = {"ingest": 2, "admit": 2, "failure": 1}


def _functions() -> dict[str, FunctionSettings]:
    # 1,769 MB is one full vCPU: the chunk work is CPU-bound.
    return {
        "ingest": FunctionSettings(memory_mb=256, timeout_seconds=60),
        "admit": FunctionSettings(memory_mb=256, timeout_seconds=60),
        "plan": FunctionSettings(memory_mb=1024, timeout_seconds=900),
        "validate": FunctionSettings(memory_mb=1769, timeout_seconds=300, ephemeral_storage_mb=2048),
        "dedupe": FunctionSettings(memory_mb=1769, timeout_seconds=300, ephemeral_storage_mb=2048),
        "summarize": FunctionSettings(memory_mb=512, timeout_seconds=300),
        "transform": FunctionSettings(memory_mb=2048, timeout_seconds=900, ephemeral_storage_mb=4096),
        "load": FunctionSettings(memory_mb=1024, timeout_seconds=900),
        "failure": FunctionSettings(memory_mb=256, timeout_seconds=60),
    }


@dataclass(frozen=True, kw_only=True)
class Throughput:
    """How much runs at once, and how long throttling is waited out (docs/operations.md)."""

    max_running_jobs: int = 4
    map_max_concurrency: int = 10
    chunk_bytes: int = defaults.CHUNK_BYTES
    dedup_partition_records: int = defaults.DEDUP_PARTITION_RECORDS
    transform_item_rows: int = defaults.TRANSFORM_ITEM_ROWS
    # The concurrency this environment may use in its account and region (None: not checked).
    lambda_concurrency_budget: int | None = None
    throttle_retry_interval_seconds: int = 5
    throttle_retry_max_attempts: int = 20
    throttle_retry_max_delay_seconds: int = 300
    drain_every_minutes: int = 5

    @property
    def peak_concurrency(self) -> int:
        """Invocations at the busiest moment: every running job in a map, plus the control reserve."""
        return self.max_running_jobs * self.map_max_concurrency + sum(CONTROL_RESERVE.values())


@dataclass(frozen=True, kw_only=True)
class Monitoring:
    expected_file_every_hours: int = 26
    reject_rate_alarm_percent: int = 5
    # Re-sent files (JobsResent) in 24 hours above which the resent-files alarm pages; 0: no alarm
    # (a re-send needs no action, and how many are usual depends on the producers).
    resend_alarm_per_day: int = 0
    athena_bytes_scanned_cutoff: int = 10 << 30
    # The daily duplicate audit's own workgroup: it reads two columns of a whole booking date
    # (69-266 GB at 500 GB a day, docs/operations.md), far past the analysts' 10 GiB guard.
    audit_bytes_scanned_cutoff: int = 1 << 40


@dataclass(frozen=True, kw_only=True)
class LifecycleSettings:
    glacier_after_days: int = 90
    expire_after_days: int = 2555  # 7 years
    noncurrent_versions_expire_after_days: int = 30
    abort_incomplete_multipart_after_days: int = 7
    access_logs_expire_after_days: int = 365
    # A job's intermediate files (staging/, curated/): kept a while to investigate a failure.
    work_files_expire_after_days: int = 14
    query_results_expire_after_days: int = 30
    # Iceberg snapshots kept for time travel ("what did the table say last Tuesday"); older ones are
    # expired by Glue's retention optimizer. Row history beyond them is in the manifests and job_quality.
    snapshot_retention_days: int = 90


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    environment_suffix: str = defaults.ENVIRONMENT_SUFFIX
    region: str = defaults.REGION
    project: str = "financial-pipeline"
    cost_center: str = "data-platform"
    owner: str = "platform-engineering"
    lambda_runtime: str = DEFAULT_LAMBDA_RUNTIME
    functions: Mapping[str, FunctionSettings] = field(default_factory=_functions)
    throughput: Throughput = field(default_factory=Throughput)
    monitoring: Monitoring = field(default_factory=Monitoring)
    log_retention_days: int = 7
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    reject_threshold: str = defaults.REJECT_THRESHOLD
    retry_interval_seconds: int = 2
    retry_max_attempts: int = 4
    table_deletion_protection: bool = False
    force_destroy_buckets: bool = True
    object_lock_retention_years: int | None = None
    alert_email: str | None = None
    vpc_cidr: str = "10.20.0.0/16"
    # AZs holding the Glue interface endpoint (about $7 a month each): one is reached from every AZ;
    # production keeps one per AZ so that losing an AZ does not stop loads.
    glue_endpoint_zones: int = 1
    state_bucket: str | None = None
    local: bool = False
    local_endpoint: str = "http://127.0.0.1:4566"

    def __post_init__(self) -> None:
        _check(
            _SUFFIX_RULE.match(self.environment_suffix),
            "ENVIRONMENT_SUFFIX",
            self.environment_suffix,
            "2-16 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-' "
            "(S3 bucket names are lowercase; IAM role names stop at 64 characters)",
        )
        _check(_REGION_RULE.match(self.region), "AWS_REGION", self.region, "an AWS region such as us-east-2")
        _check(
            self.lambda_runtime in SUPPORTED_LAMBDA_RUNTIMES,
            "LAMBDA_RUNTIME",
            self.lambda_runtime,
            f"one of {', '.join(SUPPORTED_LAMBDA_RUNTIMES)}",
        )
        for name, settings in self.functions.items():
            _check(
                settings.memory_mb in _LAMBDA_MEMORY_MB,
                f"functions.{name}.memory_mb",
                settings.memory_mb,
                "128-10240 MB",
            )
            _check(
                settings.timeout_seconds in _LAMBDA_TIMEOUT_S,
                f"functions.{name}.timeout_seconds",
                settings.timeout_seconds,
                "1-900 seconds",
            )
            _check(
                512 <= settings.ephemeral_storage_mb <= 10240,
                f"functions.{name}.ephemeral_storage_mb",
                settings.ephemeral_storage_mb,
                "512-10240 MB",
            )
        self._check_throughput()
        _check(
            1 <= self.retry_interval_seconds <= 60,
            "RETRY_INTERVAL_SECONDS",
            self.retry_interval_seconds,
            "1-60 seconds",
        )
        _check(1 <= self.retry_max_attempts <= 10, "RETRY_MAX_ATTEMPTS", self.retry_max_attempts, "1-10")
        _check(
            self.log_retention_days in _LOG_RETENTION_DAYS,
            "LOG_RETENTION_DAYS",
            self.log_retention_days,
            f"one of CloudWatch's retention values {sorted(_LOG_RETENTION_DAYS)}",
        )
        lifecycle = self.lifecycle
        _check(
            0 < lifecycle.glacier_after_days < lifecycle.expire_after_days,
            "lifecycle",
            lifecycle,
            "0 < glacier_after_days < expire_after_days",
        )
        _check(
            1 <= self.glue_endpoint_zones <= 3,
            "GLUE_ENDPOINT_ZONES",
            self.glue_endpoint_zones,
            "1 to 3 (the private subnets, one per AZ)",
        )
        _check(
            1 <= lifecycle.snapshot_retention_days <= lifecycle.expire_after_days,
            "lifecycle.snapshot_retention_days",
            lifecycle.snapshot_retention_days,
            "1 to expire_after_days: time travel cannot outlive the files",
        )
        _check(
            self.object_lock_retention_years is None or 1 <= self.object_lock_retention_years <= 100,
            "OBJECT_LOCK_RETENTION_YEARS",
            self.object_lock_retention_years,
            "unset, 0 (off) or 1-100",
        )
        for key, value in self.tags_for_layer("network").items():
            _check(_TAG_VALUE_RULE.match(value), f"tag {key}", value, "1-256 characters allowed in AWS tags")

    def _check_throughput(self) -> None:
        throughput = self.throughput
        for setting, value, low, high in (
            # 100: an admission carries up to two executions to start per slot in its state, and
            # a state carries at most 256 KB (tests/infra/test_aws_limits.py; 1000 would be 466 KB).
            ("MAX_RUNNING_JOBS", throughput.max_running_jobs, 1, 100),
            ("MAP_MAX_CONCURRENCY", throughput.map_max_concurrency, 1, 1000),
            ("CHUNK_BYTES", throughput.chunk_bytes, 1, 4 << 30),
            ("DEDUP_PARTITION_RECORDS", throughput.dedup_partition_records, 1, 100_000_000),
            ("TRANSFORM_ITEM_ROWS", throughput.transform_item_rows, 1, 1_000_000_000),
            ("THROTTLE_RETRY_INTERVAL_SECONDS", throughput.throttle_retry_interval_seconds, 1, 300),
            ("THROTTLE_RETRY_MAX_ATTEMPTS", throughput.throttle_retry_max_attempts, 1, 99),
            ("THROTTLE_RETRY_MAX_DELAY_SECONDS", throughput.throttle_retry_max_delay_seconds, 1, 3600),
            ("DRAIN_EVERY_MINUTES", throughput.drain_every_minutes, 1, 1440),
            ("EXPECTED_FILE_EVERY_HOURS", self.monitoring.expected_file_every_hours, 1, 168),
            # Athena's BytesScannedCutoffPerQuery starts at 10 MB.
            ("ATHENA_BYTES_SCANNED_CUTOFF", self.monitoring.athena_bytes_scanned_cutoff, 10_000_000, 2**63 - 1),
            ("AUDIT_BYTES_SCANNED_CUTOFF", self.monitoring.audit_bytes_scanned_cutoff, 10_000_000, 2**63 - 1),
            ("REJECT_RATE_ALARM_PERCENT", self.monitoring.reject_rate_alarm_percent, 1, 100),
        ):
            _check(low <= value <= high, setting, value, f"a whole number from {low} to {high}")
        _check(
            0 <= self.monitoring.resend_alarm_per_day <= MAX_RESEND_ALARM_PER_DAY,
            "RESEND_ALARM_PER_DAY",
            self.monitoring.resend_alarm_per_day,
            f"0 (no alarm, the default) or the re-sent files a day above which to page, "
            f"1 to {MAX_RESEND_ALARM_PER_DAY}",
        )
        budget = throughput.lambda_concurrency_budget
        _check(
            budget is None or budget >= throughput.peak_concurrency,
            "LAMBDA_CONCURRENCY_BUDGET",
            budget,
            f"unset, or at least MAX_RUNNING_JOBS x MAP_MAX_CONCURRENCY + {sum(CONTROL_RESERVE.values())} "
            f"(the control functions' reserve) = {throughput.peak_concurrency}",
        )

    @property
    def name_prefix(self) -> str:
        return "pipeline"

    @property
    def retries(self) -> Retries:
        """The two retry budgets of every task: transient errors (short), throttling (long)."""
        throughput = self.throughput
        return Retries(
            transient=RetryPolicy(interval_seconds=self.retry_interval_seconds, max_attempts=self.retry_max_attempts),
            throttling=RetryPolicy(
                interval_seconds=throughput.throttle_retry_interval_seconds,
                max_attempts=throughput.throttle_retry_max_attempts,
                max_delay_seconds=throughput.throttle_retry_max_delay_seconds,
            ),
        )

    @property
    def job_lease_seconds(self) -> int:
        """How long a running job may show no progress before its slot is freed or a new start
        takes it over: the longest any of its tasks may take."""
        slowest = max(settings.timeout_seconds for settings in self.functions.values())
        return longest_task_seconds(self.retries, timeout_seconds=slowest)

    def resource_name(self, purpose: str) -> str:
        """Every named resource carries the suffix, so two environments share an account."""
        return f"{self.name_prefix}-{purpose}-{self.environment_suffix}"

    def tags_for_layer(self, layer: str) -> dict[str, str]:
        return {
            "Environment": self.environment_suffix,
            "Project": self.project,
            "CostCenter": self.cost_center,
            "Owner": self.owner,
            "ManagedBy": "cdktf",
            "Layer": layer,
        }

    @property
    def records_retention_enabled(self) -> bool:
        return self.object_lock_retention_years is not None


def _check(ok: object, setting: str, value: object, rule: str) -> None:
    if not ok:
        raise ConfigError(f"setting {setting}={value!r} is invalid: expected {rule}")


def _int_env(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"setting {name}={raw!r} is invalid: expected a whole number") from None


def _bool_env(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes"}:
        return True
    if raw in {"0", "false", "no"}:
        return False
    raise ConfigError(f"setting {name}={raw!r} is invalid: expected 1/0, true/false or yes/no")


def is_production_like(suffix: str) -> bool:
    return suffix == "prod" or suffix.startswith("prod-")


def _present(values: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


def _throughput(env: Mapping[str, str]) -> Throughput:
    return Throughput(
        **_present(
            {
                "max_running_jobs": _int_env(env, "MAX_RUNNING_JOBS"),
                "map_max_concurrency": _int_env(env, "MAP_MAX_CONCURRENCY"),
                "chunk_bytes": _int_env(env, "CHUNK_BYTES"),
                "dedup_partition_records": _int_env(env, "DEDUP_PARTITION_RECORDS"),
                "transform_item_rows": _int_env(env, "TRANSFORM_ITEM_ROWS"),
                "lambda_concurrency_budget": _int_env(env, "LAMBDA_CONCURRENCY_BUDGET"),
                "throttle_retry_interval_seconds": _int_env(env, "THROTTLE_RETRY_INTERVAL_SECONDS"),
                "throttle_retry_max_attempts": _int_env(env, "THROTTLE_RETRY_MAX_ATTEMPTS"),
                "throttle_retry_max_delay_seconds": _int_env(env, "THROTTLE_RETRY_MAX_DELAY_SECONDS"),
                "drain_every_minutes": _int_env(env, "DRAIN_EVERY_MINUTES"),
            }
        )
    )


def _monitoring(env: Mapping[str, str]) -> Monitoring:
    return Monitoring(
        **_present(
            {
                "expected_file_every_hours": _int_env(env, "EXPECTED_FILE_EVERY_HOURS"),
                "reject_rate_alarm_percent": _int_env(env, "REJECT_RATE_ALARM_PERCENT"),
                "resend_alarm_per_day": _int_env(env, "RESEND_ALARM_PER_DAY"),
                "athena_bytes_scanned_cutoff": _int_env(env, "ATHENA_BYTES_SCANNED_CUTOFF"),
                "audit_bytes_scanned_cutoff": _int_env(env, "AUDIT_BYTES_SCANNED_CUTOFF"),
            }
        )
    )


def _functions_within(budget: int | None) -> dict[str, FunctionSettings]:
    functions = _functions()
    if budget is None:
        return functions
    return {
        name: replace(settings, reserved_concurrency=CONTROL_RESERVE.get(name)) for name, settings in functions.items()
    }


def from_env(env: Mapping[str, str] | None = None) -> PipelineConfig:
    """Build the config from the environment; production-like suffixes get the safe defaults."""
    env = os.environ if env is None else env
    suffix = env.get("ENVIRONMENT_SUFFIX", "").strip() or defaults.ENVIRONMENT_SUFFIX
    production = is_production_like(suffix)
    lock_years = _int_env(env, "OBJECT_LOCK_RETENTION_YEARS")
    if lock_years is None:
        lock_years = 7 if production else 0
    optional = {
        key: value
        for key, value in {
            "region": env.get("AWS_REGION", "").strip() or None,
            "project": env.get("PIPELINE_PROJECT_TAG") or None,
            "cost_center": env.get("PIPELINE_COST_CENTER") or None,
            "owner": env.get("PIPELINE_OWNER") or None,
            "lambda_runtime": env.get("LAMBDA_RUNTIME") or None,
            "log_retention_days": _int_env(env, "LOG_RETENTION_DAYS"),
            "reject_threshold": env.get("REJECT_THRESHOLD") or None,
            "retry_interval_seconds": _int_env(env, "RETRY_INTERVAL_SECONDS"),
            "retry_max_attempts": _int_env(env, "RETRY_MAX_ATTEMPTS"),
        }.items()
        if value is not None
    }
    throughput = _throughput(env)
    return PipelineConfig(
        environment_suffix=suffix,
        throughput=throughput,
        monitoring=_monitoring(env),
        functions=_functions_within(throughput.lambda_concurrency_budget),
        table_deletion_protection=_bool_env(env, "TABLE_DELETION_PROTECTION", default=production),
        # dev and test environments must be destroyable with their data; production never.
        force_destroy_buckets=_bool_env(env, "FORCE_DESTROY_BUCKETS", default=not production),
        object_lock_retention_years=lock_years or None,
        glue_endpoint_zones=_int_env(env, "GLUE_ENDPOINT_ZONES") or (3 if production else 1),
        alert_email=env.get("ALERT_EMAIL") or None,
        state_bucket=env.get("TF_STATE_BUCKET") or None,
        local=_bool_env(env, "LOCAL", default=False),
        local_endpoint=env.get("LOCAL_ENDPOINT") or "http://127.0.0.1:4566",
        **optional,
    )


__all__ = [
    "CONTROL_RESERVE",
    "LAYERS",
    "ConfigError",
    "FunctionSettings",
    "LifecycleSettings",
    "Monitoring",
    "PipelineConfig",
    "Throughput",
    "from_env",
]
