"""The tagging aspect and its check, on synthesized output."""

import json
from pathlib import Path

import pytest
from cdktf_cdktf_provider_aws.data_aws_s3_bucket import DataAwsS3Bucket
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket

from pipeline_constructs.framework import App, Aspects, TerraformStack
from pipeline_constructs.tagging import FinOpsTagging, RequireFinOpsTags

TAGS = {"Environment": "t", "Project": "p", "CostCenter": "c", "Owner": "o", "ManagedBy": "cdktf", "Layer": "x"}


def _stack(tmp_path: Path, *, with_aspect: bool) -> App:
    application = App(outdir=str(tmp_path))
    stack = TerraformStack(application, "probe")
    AwsProvider(stack, "aws", region="us-east-2")
    S3Bucket(stack, "bucket", bucket="probe-t", tags={"Name": "kept"})
    DataAwsS3Bucket(stack, "existing", bucket="somebody-elses")
    if with_aspect:
        Aspects.of(stack).add(FinOpsTagging(TAGS))
    stack.node.add_validation(RequireFinOpsTags(stack, TAGS))
    return application


def test_tags_resources_keeps_their_own_and_leaves_data_sources_alone(tmp_path: Path) -> None:
    _stack(tmp_path, with_aspect=True).synth()
    synthesized = json.loads((tmp_path / "stacks" / "probe" / "cdk.tf.json").read_text())
    assert synthesized["resource"]["aws_s3_bucket"]["bucket"]["tags"] == {**TAGS, "Name": "kept"}
    assert "tags" not in synthesized["data"]["aws_s3_bucket"]["existing"]


def test_synthesis_fails_naming_an_untagged_resource(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"probe/bucket lacks FinOps tags CostCenter, Environment, Layer"):
        _stack(tmp_path, with_aspect=False).synth()
