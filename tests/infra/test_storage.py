from typing import Any

import pytest

from lake import layout
from tests.infra.synth import Synth


def _for_bucket(synthesized: Synth, resource_type: str, construct: str) -> dict[str, Any]:
    matches = [
        body
        for body in synthesized.resources("storage", resource_type).values()
        if body["bucket"] == f"${{aws_s3_bucket.{construct}_bucket_{_hash(synthesized, construct)}.id}}"
    ]
    assert len(matches) == 1, f"{resource_type} for {construct}: {len(matches)}"
    return matches[0]


def _hash(synthesized: Synth, construct: str) -> str:
    ids = [i for i in synthesized.resources("storage", "aws_s3_bucket") if i.startswith(f"{construct}_bucket_")]
    assert len(ids) == 1
    return ids[0].rsplit("_", 1)[1]


def test_customer_managed_key_rotates_and_has_a_policy(synthesized: Synth) -> None:
    key = synthesized.only("storage", "aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert key["policy"].startswith("${data.aws_iam_policy_document.")


@pytest.mark.parametrize("bucket", ["data", "work"])
def test_data_and_work_buckets_are_versioned_encrypted_private_and_tls_only(synthesized: Synth, bucket: str) -> None:
    assert _for_bucket(synthesized, "aws_s3_bucket_versioning", bucket)["versioning_configuration"]["status"] == (
        "Enabled"
    )
    rule = _for_bucket(synthesized, "aws_s3_bucket_server_side_encryption_configuration", bucket)["rule"][0]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert rule["apply_server_side_encryption_by_default"]["kms_master_key_id"].startswith("${aws_kms_key.")
    assert rule["bucket_key_enabled"] is True
    block = _for_bucket(synthesized, "aws_s3_bucket_public_access_block", bucket)
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    policy_ref = _for_bucket(synthesized, "aws_s3_bucket_policy", bucket)["policy"]
    document = synthesized.data("storage", "aws_iam_policy_document")[policy_ref.split(".")[2]]
    deny = [s for s in document["statement"] if s["sid"] == "DenyInsecureTransport"][0]
    assert deny["effect"] == "Deny"
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]


def test_every_bucket_sends_its_events_to_eventbridge(synthesized: Synth) -> None:
    # The data bucket's uploads start jobs (the orchestration layer's rule); no bucket calls anything itself.
    for bucket in ("data", "work", "access-logs"):
        notification = _for_bucket(synthesized, "aws_s3_bucket_notification", bucket)
        assert notification["eventbridge"] is True
        assert not {"lambda_function", "queue", "topic"} & set(notification)


def _rules(synthesized: Synth, bucket: str) -> dict[str, dict[str, Any]]:
    lifecycle = _for_bucket(synthesized, "aws_s3_bucket_lifecycle_configuration", bucket)
    return {r["id"]: r for r in lifecycle["rule"]}


def test_data_bucket_keeps_the_record_seven_years_and_archives_only_the_sources(synthesized: Synth) -> None:
    rules = _rules(synthesized, "data")
    record = rules.pop("expire-record")
    assert record["filter"] == [{"prefix": ""}] and record["expiration"] == [{"days": 2555}]
    assert record["noncurrent_version_expiration"][0]["noncurrent_days"] > 0
    assert (
        rules.pop("abort-incomplete-multipart-uploads")["abort_incomplete_multipart_upload"][0]["days_after_initiation"]
        == 7
    )
    # Athena skips objects in Glacier Flexible Retrieval without an error: only the sources go there
    # (the seed's "raw files"), never the published tables, manifests or quarantine.
    transitions = {r["filter"][0]["prefix"]: r["transition"] for r in rules.values()}
    assert transitions == {
        f"{prefix}/": [{"days": 90, "storage_class": "GLACIER"}] for prefix in (layout.INCOMING, layout.RAW)
    }


def test_work_bucket_expires_work_files_and_nothing_moves_to_glacier(synthesized: Synth) -> None:
    rules = _rules(synthesized, "work")
    expiry = {r["filter"][0]["prefix"]: r["expiration"][0]["days"] for r in rules.values() if "expiration" in r}
    assert expiry == {"staging/": 14, "curated/": 14, "athena-results/": 30}
    assert not [r for r in rules.values() if r.get("transition")]
    assert set(layout.WORK) == {layout.STAGING, layout.CURATED, layout.ATHENA_RESULTS, layout.ARTIFACTS}
    assert not set(layout.WORK) & set(layout.RECORD)


def test_access_logs_go_to_their_own_bucket(synthesized: Synth) -> None:
    for bucket in ("data", "work"):
        logging = _for_bucket(synthesized, "aws_s3_bucket_logging", bucket)
        assert logging["target_bucket"].startswith("${aws_s3_bucket.access-logs_bucket_")
    # S3 server access logging cannot deliver to an SSE-KMS bucket: SSE-S3 there.
    rule = _for_bucket(synthesized, "aws_s3_bucket_server_side_encryption_configuration", "access-logs")["rule"][0]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"


def test_job_table(synthesized: Synth) -> None:
    table = synthesized.only("storage", "aws_dynamodb_table")
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["hash_key"] == "jobId"
    assert table["point_in_time_recovery"] == {"enabled": True}
    assert table["server_side_encryption"]["enabled"] is True
    assert table["server_side_encryption"]["kms_key_arn"].startswith("${aws_kms_key.")
    assert table["deletion_protection_enabled"] is False  # a dev-like suffix; see test_config


def test_no_object_lock_outside_production(synthesized: Synth) -> None:
    assert synthesized.resources("storage", "aws_s3_bucket_object_lock_configuration") == {}
    assert all("object_lock_enabled" not in b for b in synthesized.resources("storage", "aws_s3_bucket").values())


def test_dev_buckets_can_be_destroyed_with_their_data(synthesized: Synth) -> None:
    assert all(b["force_destroy"] is True for b in synthesized.resources("storage", "aws_s3_bucket").values())


def test_iceberg_tables_are_declared_with_their_first_metadata_and_optimizers(synthesized: Synth) -> None:
    tables = {t["name"]: t for t in synthesized.resources("storage", "aws_glue_catalog_table").values()}
    assert sorted(tables) == ["daily_totals", "job_quality", "transactions"]
    for name, table in tables.items():
        assert table["parameters"]["table_type"] == "ICEBERG"
        assert table["parameters"]["metadata_location"].endswith(".metadata.json"), name
        # What pyiceberg's commits rewrite: a plan after loads must not undo them.
        assert table["lifecycle"]["ignore_changes"] == ["parameters", "storage_descriptor", "description"]
        assert "partition_keys" not in table  # Iceberg partitions itself
    optimizers = synthesized.resources("storage", "aws_glue_catalog_table_optimizer").values()
    kinds = sorted((o["table_name"], o["type"]) for o in optimizers)
    assert [k for k in kinds if "transactions" in k[0]] == [
        ("${aws_glue_catalog_table.catalog_table-transactions_57840EC1.name}", kind)
        for kind in ("compaction", "orphan_file_deletion", "retention")
    ]
    for optimizer in optimizers:
        (configuration,) = optimizer["configuration"]
        assert configuration["enabled"] is True and configuration["role_arn"]
        if optimizer["type"] == "retention":
            (retention,) = configuration["retention_configuration"][0]["iceberg_configuration"]
            assert retention["snapshot_retention_period_in_days"] == 90
        if optimizer["type"] == "orphan_file_deletion":
            (orphans,) = configuration["orphan_file_deletion_configuration"][0]["iceberg_configuration"]
            assert orphans["location"].endswith("/data")  # not the files published before the ledger
