import pytest

from stacks.config import ConfigError, from_env


def test_defaults() -> None:
    config = from_env({})
    assert config.environment_suffix == "dev"
    assert config.region == "us-east-2"
    assert config.lambda_runtime == "python3.13"
    assert config.log_retention_days == 7
    assert config.lifecycle.glacier_after_days == 90
    assert config.lifecycle.expire_after_days == 7 * 365
    assert config.object_lock_retention_years is None
    assert config.table_deletion_protection is False
    assert config.local is False
    assert config.throughput.chunk_bytes == 128 << 20 and config.throughput.max_running_jobs == 4
    assert config.throughput.peak_concurrency == 4 * 10 + 5
    assert all(f.reserved_concurrency is None for f in config.functions.values())


def test_a_job_keeps_its_slot_while_any_one_task_may_still_be_running() -> None:
    config = from_env({})
    throttle_waits = 5 + 10 + 20 + 40 + 80 + 160 + 14 * 300  # doubling from 5 s, capped at 300 s, 20 times
    transient_waits = 2 + 4 + 8 + 16
    slowest_attempts = (4 + 1) * (900 + 60)  # the first try and 4 retries of a 900 s function, with margin
    assert config.job_lease_seconds == throttle_waits + transient_waits + slowest_attempts
    shorter = from_env({"THROTTLE_RETRY_MAX_ATTEMPTS": "1", "RETRY_MAX_ATTEMPTS": "1"})
    assert shorter.job_lease_seconds == 5 + 2 + 2 * 960


def test_production_like_suffix_turns_on_records_retention_and_deletion_protection() -> None:
    config = from_env({"ENVIRONMENT_SUFFIX": "prod"})
    assert config.object_lock_retention_years == 7
    assert config.table_deletion_protection is True
    assert config.force_destroy_buckets is False
    opted_out = from_env({"ENVIRONMENT_SUFFIX": "prod", "OBJECT_LOCK_RETENTION_YEARS": "0"})
    assert opted_out.object_lock_retention_years is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ENVIRONMENT_SUFFIX": "Dev"}, "ENVIRONMENT_SUFFIX"),
        ({"ENVIRONMENT_SUFFIX": "dev_1"}, "ENVIRONMENT_SUFFIX"),
        ({"ENVIRONMENT_SUFFIX": "a-very-long-environment-name"}, "ENVIRONMENT_SUFFIX"),
        ({"ENVIRONMENT_SUFFIX": "dev-"}, "ENVIRONMENT_SUFFIX"),
        ({"AWS_REGION": "mars-1"}, "AWS_REGION"),
        ({"LAMBDA_RUNTIME": "python3.9"}, "LAMBDA_RUNTIME"),
        ({"LOG_RETENTION_DAYS": "8"}, "LOG_RETENTION_DAYS"),
        ({"LOG_RETENTION_DAYS": "seven"}, "LOG_RETENTION_DAYS"),
        ({"LAMBDA_CONCURRENCY_BUDGET": "20"}, "LAMBDA_CONCURRENCY_BUDGET"),  # 4 jobs x 10 items + 5 > 20
        ({"MAX_RUNNING_JOBS": "0"}, "MAX_RUNNING_JOBS"),
        ({"CHUNK_BYTES": "lots"}, "CHUNK_BYTES"),
        ({"EXPECTED_FILE_EVERY_HOURS": "0"}, "EXPECTED_FILE_EVERY_HOURS"),
        ({"TABLE_DELETION_PROTECTION": "maybe"}, "TABLE_DELETION_PROTECTION"),
    ],
)
def test_bad_settings_name_the_setting_and_the_rule(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"setting {named}=.* is invalid: expected "):
        from_env(env)
