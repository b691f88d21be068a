from typing import Any

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


def test_data_bucket_is_versioned_kms_encrypted_private_and_tls_only(synthesized: Synth) -> None:
    assert _for_bucket(synthesized, "aws_s3_bucket_versioning", "data")["versioning_configuration"]["status"] == (
        "Enabled"
    )
    rule = _for_bucket(synthesized, "aws_s3_bucket_server_side_encryption_configuration", "data")["rule"][0]
    assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
    assert rule["apply_server_side_encryption_by_default"]["kms_master_key_id"].startswith("${aws_kms_key.")
    assert rule["bucket_key_enabled"] is True
    block = _for_bucket(synthesized, "aws_s3_bucket_public_access_block", "data")
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    policy_ref = _for_bucket(synthesized, "aws_s3_bucket_policy", "data")["policy"]
    document = synthesized.data("storage", "aws_iam_policy_document")[policy_ref.split(".")[2]]
    deny = [s for s in document["statement"] if s["sid"] == "DenyInsecureTransport"][0]
    assert deny["effect"] == "Deny"
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]


def test_every_bucket_sends_its_events_to_eventbridge(synthesized: Synth) -> None:
    # The data bucket's uploads start jobs (the orchestration layer's rule); no bucket calls anything itself.
    for bucket in ("data", "access-logs"):
        notification = _for_bucket(synthesized, "aws_s3_bucket_notification", bucket)
        assert notification["eventbridge"] is True
        assert not {"lambda_function", "queue", "topic"} & set(notification)


def test_data_bucket_lifecycle(synthesized: Synth) -> None:
    rules = {r["id"]: r for r in _for_bucket(synthesized, "aws_s3_bucket_lifecycle_configuration", "data")["rule"]}
    archive = rules["glacier-then-expire"]
    assert archive["transition"] == [{"days": 90, "storage_class": "GLACIER"}]
    assert archive["expiration"] == [{"days": 2555}]
    assert archive["noncurrent_version_expiration"][0]["noncurrent_days"] > 0
    assert (
        rules["abort-incomplete-multipart-uploads"]["abort_incomplete_multipart_upload"][0]["days_after_initiation"]
        == 7
    )


def test_access_logs_go_to_their_own_bucket(synthesized: Synth) -> None:
    logging = _for_bucket(synthesized, "aws_s3_bucket_logging", "data")
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
