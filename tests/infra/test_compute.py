import json

import pytest

from lake import layout
from stacks.compute import ACCESS, CODE_DIRS
from stacks.config import CONTROL_RESERVE, PipelineConfig, from_env
from tests.infra.synth import Synth

FUNCTIONS = tuple(from_env({}).functions)


def _functions(synthesized: Synth) -> dict[str, dict]:
    return {
        body["function_name"].split("-")[1]: body
        for body in synthesized.resources("compute", "aws_lambda_function").values()
    }


def _layer_archive(synthesized: Synth) -> str:
    """The layer's zip in the synthesized compute stack, from the S3 object it is published through."""
    layer = synthesized.only("compute", "aws_lambda_layer_version")
    upload = synthesized.only("compute", "aws_s3_object")
    assert layer["s3_bucket"] == "${aws_s3_object.dependencies-upload.bucket}"
    assert layer["s3_key"] == "${aws_s3_object.dependencies-upload.key}"
    return upload["source"]


def test_one_layer_shared_by_every_function(synthesized: Synth) -> None:
    layer = synthesized.only("compute", "aws_lambda_layer_version")
    assert layer["compatible_architectures"] == ["arm64"]
    assert layer["compatible_runtimes"] == ["python3.13"]
    assert "filename" not in layer  # sent inline it would be refused: over 50 MB (docs/limits.md)
    assert _layer_archive(synthesized).startswith("assets/")
    for function in _functions(synthesized).values():
        assert function["layers"] == ["${aws_lambda_layer_version.dependencies.arn}"]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_settings(synthesized: Synth, config: PipelineConfig, name: str) -> None:
    function = _functions(synthesized)[name]
    assert function["function_name"] == f"pipeline-{name}-qa7"
    assert function["handler"] == f"handlers.{name}.lambda_handler"
    assert function["architectures"] == ["arm64"]
    assert function["runtime"] == "python3.13"  # Amazon Linux 2023; python3.11 runs on AL2
    assert function["memory_size"] == config.functions[name].memory_mb
    assert function["timeout"] == config.functions[name].timeout_seconds
    assert function["ephemeral_storage"] == {"size": config.functions[name].ephemeral_storage_mb}
    assert function["tracing_config"] == {"mode": "Active"}
    assert function["kms_key_arn"] == "${data.aws_ssm_parameter.import-kms-key-arn.value}"
    subnets = '${split(",", data.aws_ssm_parameter.import-private-subnet-ids.value)}'
    assert function["vpc_config"]["subnet_ids"] == subnets
    assert function["reserved_concurrent_executions"] == -1
    env = function["environment"]["variables"]
    assert env["DATA_BUCKET"] == "${data.aws_ssm_parameter.import-bucket-name.value}"
    assert env["WORK_BUCKET"] == "${data.aws_ssm_parameter.import-work-bucket-name.value}"
    assert env["JOBS_TABLE"] == "${data.aws_ssm_parameter.import-table-name.value}"
    assert env["ENVIRONMENT_SUFFIX"] == "qa7" and env["CHUNK_BYTES"] == str(config.throughput.chunk_bytes)
    assert env["MAX_RUNNING_JOBS"] == str(config.throughput.max_running_jobs)
    assert env["JOB_LEASE_SECONDS"] == str(config.job_lease_seconds)
    assert len(env["CODE_VERSION"]) == 12
    assert function["logging_config"]["log_group"].startswith(f"${{aws_cloudwatch_log_group.{name}_logs_")


def test_each_function_has_its_own_encrypted_log_group_and_role(synthesized: Synth) -> None:
    groups = synthesized.resources("compute", "aws_cloudwatch_log_group").values()
    assert sorted(g["name"] for g in groups) == sorted(f"/aws/lambda/pipeline-{f}-qa7" for f in FUNCTIONS)
    assert all(g["retention_in_days"] == 7 and g["kms_key_id"] for g in groups)
    roles = synthesized.resources("compute", "aws_iam_role")
    assert len(roles) == len(FUNCTIONS)
    assert len({r["name"] for r in roles.values()}) == len(FUNCTIONS)


def _statements(synthesized: Synth, name: str) -> dict[str, dict]:
    documents = synthesized.data("compute", "aws_iam_policy_document")
    (permissions,) = [body for lid, body in documents.items() if lid.startswith(f"{name}_permissions_")]
    return {s["sid"]: s for s in permissions["statement"]}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_roles_reach_only_their_own_prefixes(synthesized: Synth, name: str) -> None:
    data = "${data.aws_ssm_parameter.import-bucket-arn.value}"
    work = "${data.aws_ssm_parameter.import-work-bucket-arn.value}"

    def bucket(prefix: str) -> str:
        return work if prefix in (layout.STAGING, layout.CURATED) else data

    table = "${data.aws_ssm_parameter.import-table-arn.value}"
    access, statements = ACCESS[name], _statements(synthesized, name)
    assert set(access.reads + access.writes + access.lists) <= set(layout.PREFIXES)
    reads = statements.get("ReadOwnInputs", {}).get("resources", [])
    writes = statements.get("WriteOwnOutputs", {}).get("resources", [])
    assert reads == [f"{bucket(prefix)}/{prefix}/*" for prefix in access.reads]
    assert writes == [f"{bucket(prefix)}/{prefix}/*" for prefix in access.writes]
    assert statements["TrackJobs"]["resources"] == [table]
    assert statements["TrackJobs"]["actions"] == sorted(f"dynamodb:{a}" for a in access.table)
    listing = statements.get("ListOwnResults")
    if access.lists:
        assert listing["resources"] == [work] and listing["actions"] == ["s3:ListBucket"]
        assert listing["condition"][0]["values"] == [f"{prefix}/*" for prefix in access.lists]
    else:
        assert listing is None
    assert ("ReadAdmissionQueue" in statements) == access.queue


def test_a_concurrency_budget_reserves_the_control_functions(tmp_path) -> None:
    from tests.infra.synth import synthesize

    config = from_env({"ENVIRONMENT_SUFFIX": "qa7", "LAMBDA_CONCURRENCY_BUDGET": "50"})
    synthesized = synthesize(config, tmp_path)
    reserved = {name: f["reserved_concurrent_executions"] for name, f in _functions(synthesized).items()}
    assert reserved == {name: CONTROL_RESERVE.get(name, -1) for name in FUNCTIONS}


def test_packages_are_reproducible(tmp_path) -> None:
    from pipeline_constructs.packaging import package_functions

    first = package_functions(sources=CODE_DIRS, build_dir=tmp_path / "a")
    second = package_functions(sources=CODE_DIRS, build_dir=tmp_path / "b")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    import zipfile

    names = zipfile.ZipFile(first.path).namelist()
    assert "handlers/plan.py" in names and "lake/layout.py" in names  # the layout goes with the code


def test_layer_is_built_for_arm64_lambda(synthesized: Synth) -> None:
    layer = synthesized.only("compute", "aws_lambda_layer_version")
    assert "manylinux_2_28_aarch64" in layer["description"]
    archive = synthesized.stack_dir("compute") / _layer_archive(synthesized)
    import zipfile

    names = zipfile.ZipFile(archive).namelist()
    assert any(n.startswith("python/pyarrow/") and n.endswith("aarch64-linux-gnu.so") for n in names)
    assert any(n.startswith("python/aws_lambda_powertools/") for n in names)
    assert not any("__pycache__" in n for n in names)
    assert json.dumps(sorted(names)) == json.dumps(names)
