"""Records retention: Object Lock COMPLIANCE for 7 years in production-like configs only."""

from __future__ import annotations

from tests.infra.synth import Synth


def _bucket_id(synth: Synth, construct: str) -> str:
    (logical_id,) = [i for i in synth.resources("storage", "aws_s3_bucket") if i.startswith(f"{construct}_bucket_")]
    return logical_id


def test_production_data_bucket_is_locked_in_compliance_mode_for_seven_years(prod_synthesized: Synth) -> None:
    data_id = _bucket_id(prod_synthesized, "data")
    assert prod_synthesized.resources("storage", "aws_s3_bucket")[data_id]["object_lock_enabled"] is True
    (lock,) = prod_synthesized.resources("storage", "aws_s3_bucket_object_lock_configuration").values()
    assert lock["bucket"] == f"${{aws_s3_bucket.{data_id}.id}}"
    assert lock["rule"]["default_retention"] == {"mode": "COMPLIANCE", "years": 7}
    # Object Lock needs versioning: the lock configuration waits for it.
    assert any(d.startswith("aws_s3_bucket_versioning.data_versioning_") for d in lock["depends_on"])


def test_production_locks_only_the_record_and_protects_the_table(prod_synthesized: Synth) -> None:
    # Work files (staging, curated, map results, query results) locked for seven years would make
    # their 14- and 30-day expiry rules fail: several copies of every day's files kept that long.
    buckets = prod_synthesized.resources("storage", "aws_s3_bucket")
    for construct in ("access-logs", "work"):
        assert "object_lock_enabled" not in buckets[_bucket_id(prod_synthesized, construct)], construct
    assert not buckets[_bucket_id(prod_synthesized, "work")].get("force_destroy")  # production's setting
    assert prod_synthesized.only("storage", "aws_dynamodb_table")["deletion_protection_enabled"] is True


def test_dev_like_config_stays_destroyable(synthesized: Synth) -> None:
    # tests/infra/test_storage.py covers the absence of Object Lock; here the table as well.
    assert synthesized.resources("storage", "aws_s3_bucket_object_lock_configuration") == {}
    assert synthesized.only("storage", "aws_dynamodb_table")["deletion_protection_enabled"] is False


def test_every_bucket_has_a_tls_only_policy(synthesized: Synth, prod_synthesized: Synth) -> None:
    # CKV_FIN_3 checks the policy documents; this checks every bucket has one attached.
    for synth in (synthesized, prod_synthesized):
        buckets = synth.resources("storage", "aws_s3_bucket")
        policies = synth.resources("storage", "aws_s3_bucket_policy").values()
        documents = synth.data("storage", "aws_iam_policy_document")
        for bucket_id in buckets:
            (policy,) = [p for p in policies if p["bucket"] == f"${{aws_s3_bucket.{bucket_id}.id}}"]
            document = documents[policy["policy"].split(".")[2]]
            (deny,) = [s for s in document["statement"] if s["sid"] == "DenyInsecureTransport"]
            assert deny["effect"] == "Deny" and deny["actions"] == ["s3:*"]
            assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
            assert deny["resources"] == [f"${{aws_s3_bucket.{bucket_id}.arn}}", f"${{aws_s3_bucket.{bucket_id}.arn}}/*"]


def test_security_groups_use_separate_rule_resources(synthesized: Synth) -> None:
    # Inline rules with null fields hide open ingress from checkov.
    for layer, rtype, logical_id, body in synthesized.all_resources():
        if rtype in ("aws_security_group", "aws_default_security_group"):
            assert "ingress" not in body and "egress" not in body, f"{layer}.{rtype}.{logical_id}"
        assert rtype != "aws_security_group_rule", "use aws_vpc_security_group_{ingress,egress}_rule"
