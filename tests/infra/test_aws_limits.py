"""Every AWS limit this project can reach, computed from the synthesized stacks or the code and held
under the limit. docs/limits.md is the table: each limit, its value, the AWS page it comes from and
the test here that holds it. Our emulator enforces few of these; AWS enforces all of them.

Names are checked in the environment with the longest suffix the configuration accepts (16
characters, production-like), as well as in dev and prod.
"""

from __future__ import annotations

import inspect
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers import failure
from handlers.logic import contract, recorder
from handlers.logic.requests import JOB_ID_RULE, execution_name
from lake import layout, schema
from pipeline_constructs.workflow import MAX_STATE_NAME_LENGTH
from stacks.config import PipelineConfig, from_env
from tests.infra import synth
from tests.infra.synth import Synth
from tests.security.rendered import Resolver, policy_json

MB = 1024 * 1024
# Each value and the AWS page it comes from: docs/limits.md.
DIRECT_UPLOAD_BYTES = 50 * MB
UNZIPPED_BYTES = 250 * MB
ENVIRONMENT_BYTES = 4 * 1024
STATE_MACHINE_DEFINITION_BYTES = 1024 * 1024
STATE_PAYLOAD_BYTES = 256 * 1024
DYNAMODB_ITEM_BYTES = 400 * 1024
S3_KEY_BYTES = 1024
SSM_STANDARD_VALUE_CHARACTERS = 4096
SSM_NAME_CHARACTERS = 1011
SSM_HIERARCHY_LEVELS = 15
TRUST_POLICY_CHARACTERS = 2048
ROLE_INLINE_POLICIES_CHARACTERS = 10240
EXECUTION_NAME_CHARACTERS = 80
EVENT_RETRY_ATTEMPTS = 185
EVENT_AGE_SECONDS = (60, 86400)
ALARM_RANGE_SECONDS = 7 * 86400  # one day when the period is under an hour
# (resource type, name attribute) -> the longest name the service accepts.
NAME_LIMITS = {
    ("aws_lambda_function", "function_name"): 64,
    ("aws_lambda_layer_version", "layer_name"): 140,
    ("aws_iam_role", "name"): 64,
    ("aws_iam_role_policy", "name"): 128,
    ("aws_sfn_state_machine", "name"): 80,
    ("aws_cloudwatch_metric_alarm", "alarm_name"): 255,
    ("aws_cloudwatch_log_group", "name"): 512,
    ("aws_cloudwatch_event_rule", "name"): 64,
    ("aws_cloudwatch_dashboard", "dashboard_name"): 255,
    ("aws_sqs_queue", "name"): 80,
    ("aws_sns_topic", "name"): 256,
    ("aws_s3_bucket", "bucket"): 63,
    ("aws_dynamodb_table", "name"): 255,
    ("aws_kms_alias", "name"): 256,
    ("aws_glue_catalog_database", "name"): 255,
    ("aws_glue_catalog_table", "name"): 255,
    ("aws_athena_workgroup", "name"): 128,
}
LONGEST_SUFFIX = "prod-0123456789a"  # ENVIRONMENT_SUFFIX: 2-16 of a-z 0-9 -


@pytest.fixture(scope="module")
def longest_synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    config = from_env({"ENVIRONMENT_SUFFIX": LONGEST_SUFFIX})
    return synth.synthesize(config, tmp_path_factory.mktemp("cdktf.out.longest"))


@pytest.fixture(params=["dev", "prod", "longest"])
def environment(request: pytest.FixtureRequest) -> tuple[Synth, PipelineConfig]:
    fixtures = {
        "dev": ("synthesized", "config"),
        "prod": ("prod_synthesized", "prod_config"),
        "longest": ("longest_synthesized", None),
    }
    synth_fixture, config_fixture = fixtures[request.param]
    synthesized = request.getfixturevalue(synth_fixture)
    config = (
        request.getfixturevalue(config_fixture) if config_fixture else from_env({"ENVIRONMENT_SUFFIX": LONGEST_SUFFIX})
    )
    return synthesized, config


# ---------------------------------------------------------------- Lambda packages


def _package(synthesized: Synth, body: dict[str, Any]) -> tuple[Path, bool]:
    """The zip of a function or layer, and whether it is sent inline (`filename`) rather than
    through S3 (`s3_bucket`/`s3_key`, uploaded by an aws_s3_object of the same stack)."""
    compute = synthesized.stack_dir("compute")
    if body.get("filename"):
        return compute / body["filename"], True
    key = body["s3_key"]
    for logical_id, obj in synthesized.resources("compute", "aws_s3_object").items():
        if key in (obj.get("key"), f"${{aws_s3_object.{logical_id}.key}}"):
            return compute / obj["source"], False
    raise AssertionError(f"no aws_s3_object of the compute stack uploads {key}")


def _layers(synthesized: Synth) -> dict[str, dict[str, Any]]:
    return synthesized.resources("compute", "aws_lambda_layer_version")


def test_packages_sent_inline_fit_a_direct_upload(synthesized: Synth) -> None:
    bodies = [*synthesized.resources("compute", "aws_lambda_function").values(), *_layers(synthesized).values()]
    assert len(bodies) >= 10
    for body in bodies:
        path, inline = _package(synthesized, body)
        name = body.get("function_name") or body.get("layer_name")
        if inline:
            assert path.stat().st_size <= DIRECT_UPLOAD_BYTES, (
                f"{name}: {path.stat().st_size / MB:.1f} MB sent inline; a direct upload takes 50 MB at most "
                "(RequestEntityTooLargeException): upload it to S3 (s3_bucket/s3_key)"
            )


def _unzipped(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def test_each_function_with_its_layers_fits_unzipped(synthesized: Synth) -> None:
    layers = {f"${{aws_lambda_layer_version.{lid}.arn}}": body for lid, body in _layers(synthesized).items()}
    for function in synthesized.resources("compute", "aws_lambda_function").values():
        total = _unzipped(_package(synthesized, function)[0])
        total += sum(_unzipped(_package(synthesized, layers[arn])[0]) for arn in function.get("layers", []))
        assert 0 < total <= UNZIPPED_BYTES, f"{function['function_name']}: {total / MB:.1f} MB unzipped"


def test_environment_variables_fit_4_kb(environment: tuple[Synth, PipelineConfig]) -> None:
    synthesized, config = environment
    resolver = Resolver(synthesized, region=config.region)
    for function in synthesized.resources("compute", "aws_lambda_function").values():
        variables = function["environment"]["variables"]
        size = sum(len(k.encode()) + len(resolver.text(v, layer="compute").encode()) for k, v in variables.items())
        assert size <= ENVIRONMENT_BYTES, f"{function['function_name']}: {size} bytes of environment variables"


# ---------------------------------------------------------------- names, policies, parameters


def test_names_fit_their_services_limits(environment: tuple[Synth, PipelineConfig]) -> None:
    synthesized, config = environment
    resolver = Resolver(synthesized, region=config.region)
    checked = 0
    for layer, rtype, logical_id, body in synthesized.all_resources():
        for (limited_type, attribute), limit in NAME_LIMITS.items():
            if rtype == limited_type and attribute in body:
                name = resolver.text(body[attribute], layer=layer)
                assert len(name) <= limit, f"{layer}: {rtype}.{logical_id} {attribute} {name!r} is over {limit}"
                checked += 1
    assert checked >= 60


def _document(synthesized: Synth, resolver: Resolver, layer: str, reference: str) -> str:
    logical_id = reference.removeprefix("${data.aws_iam_policy_document.").removesuffix(".json}")
    block = synthesized.data(layer, "aws_iam_policy_document")[logical_id]
    return json.dumps(policy_json(resolver.data(block, layer=layer)), separators=(",", ":"))


def test_iam_policies_fit_their_size_quotas(environment: tuple[Synth, PipelineConfig]) -> None:
    """A role's trust policy: 2,048 characters; a role's inline policies together: 10,240
    (IAM counts neither whitespace)."""
    synthesized, config = environment
    resolver = Resolver(synthesized, region=config.region)
    inline: dict[str, int] = {}
    for layer, rtype, _, body in synthesized.all_resources():
        if rtype == "aws_iam_role":
            trust = _document(synthesized, resolver, layer, body["assume_role_policy"])
            assert len(trust) <= TRUST_POLICY_CHARACTERS, f"{body['name']}: trust policy of {len(trust)} characters"
        if rtype == "aws_iam_role_policy":
            role = f"{layer}.{body['role']}"
            inline[role] = inline.get(role, 0) + len(_document(synthesized, resolver, layer, body["policy"]))
    assert inline
    for role, size in inline.items():
        assert size <= ROLE_INLINE_POLICIES_CHARACTERS, f"{role}: inline policies of {size} characters"


def test_parameters_fit_the_standard_tier(environment: tuple[Synth, PipelineConfig]) -> None:
    synthesized, config = environment
    resolver = Resolver(synthesized, region=config.region)
    parameters = [
        (layer, body) for layer, rtype, _, body in synthesized.all_resources() if rtype == "aws_ssm_parameter"
    ]
    assert len(parameters) >= 15
    for layer, body in parameters:
        name, value = body["name"], resolver.text(body["value"], layer=layer)
        assert body.get("tier", "Standard") == "Standard"
        assert len(value) <= SSM_STANDARD_VALUE_CHARACTERS, f"{name}: value of {len(value)} characters"
        assert len(name) <= SSM_NAME_CHARACTERS and name.count("/") <= SSM_HIERARCHY_LEVELS, name


# ---------------------------------------------------------------- Step Functions


def test_state_machine_definition_fits_1_mb(environment: tuple[Synth, PipelineConfig]) -> None:
    synthesized, config = environment
    resolver = Resolver(synthesized, region=config.region)
    machine = synthesized.resources("orchestration", "aws_sfn_state_machine")["workflow"]
    definition = resolver.text(machine["definition"], layer="orchestration").encode()
    assert len(definition) <= STATE_MACHINE_DEFINITION_BYTES
    names = re.findall(r'"StartAt": "([^"]+)"', definition.decode())
    assert names and max(map(len, names)) <= MAX_STATE_NAME_LENGTH


def test_execution_names_fit_80_characters_of_the_allowed_set() -> None:
    run_id = "f" * 64  # run ids are 32 hex digits; the name keeps 16 of them
    # Job ids named by the caller: 64 of the characters the rule allows, some of which names refuse.
    for job_id in ("a" * 64, ":" * 64, ("a.b_c:d-e" * 8)[:64]):
        assert JOB_ID_RULE.match(job_id)
        name = execution_name(job_id, run_id)
        assert len(name) <= EXECUTION_NAME_CHARACTERS, name
        assert re.fullmatch(r"[A-Za-z0-9_-]+", name), name  # what CloudWatch Logs accepts in a name


def _states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        yield from _states(state.get("ItemProcessor", {}).get("States", {}))


def test_states_carry_references_not_data(synthesized: Synth, config: PipelineConfig) -> None:
    """256 KB of input or output a state: the Distributed Maps read their items from S3 and write
    their results to S3, keeping none in the state; every Map drops its result; what the state does
    carry (the largest: the admission's executions to start) stays far under the limit."""
    definition = json.loads(synthesized.resources("orchestration", "aws_sfn_state_machine")["workflow"]["definition"])
    maps = [(name, state) for name, state in _states(definition["States"]) if state["Type"] == "Map"]
    assert len(maps) == 8
    for name, state in maps:
        assert "ResultPath" in state and state["ResultPath"] is None, name
        if state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED":
            assert state["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject", name
            assert state["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject", name
    # The admission's executions to start: the jobs it admits and, on a drain, the slot holders it
    # restarts, each at most MAX_RUNNING_JOBS (handlers/admit.py); job ids of 64 characters, run ids
    # of 32 (uuid4 hex). At the largest MAX_RUNNING_JOBS the configuration accepts, too.
    largest = max(n for n in (config.throughput.max_running_jobs, 10, 100, 1000) if _accepted(n))
    job_id, run_id = "j" * 64, "r" * 32
    start = {"name": execution_name(job_id, run_id), "input": {"admitted": True, "jobId": job_id, "runId": run_id}}
    for running in (config.throughput.max_running_jobs, largest):
        carried = json.dumps({"jobId": job_id, "runId": run_id, "admission": {"start": [start] * (2 * running)}})
        assert len(carried.encode()) <= STATE_PAYLOAD_BYTES, (
            f"MAX_RUNNING_JOBS={running}: the admission's executions to start take {len(carried.encode())} bytes"
        )


def _accepted(max_running_jobs: int) -> bool:
    try:
        from_env({"ENVIRONMENT_SUFFIX": "qa7", "MAX_RUNNING_JOBS": str(max_running_jobs)})
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- DynamoDB, S3


def test_the_largest_job_record_fits_a_dynamodb_item() -> None:
    """Every field of the job record at the largest the code lets it grow (JSON, which counts at
    least what DynamoDB counts for strings and no less for numbers of 38 digits)."""
    job_id = "j" * 64
    amount = "9" * 38
    currencies = list(contract.CURRENCY_EXPONENTS)
    by_currency = dict.fromkeys(currencies, amount)
    # Unknown columns: MAX_REPORTED_UNKNOWN_COLUMNS names of at most MAX_REPORTED_COLUMN_NAME characters
    # (4 bytes each in UTF-8 at worst), from one header line of at most MAX_RECORD_BYTES.
    unknown_bytes = min(
        recorder.MAX_REPORTED_UNKNOWN_COLUMNS * recorder.MAX_REPORTED_COLUMN_NAME * 4, contract.MAX_RECORD_BYTES
    )
    record = {
        "jobId": job_id,
        "runId": "r" * 64,
        "source": {"bucket": "b" * 63, "key": "k" * 1024, "versionId": "v" * 1024, "etag": "e" * 64, "bytes": 10**15},
        "counts": {"received": 10**15, "records": 10**15, "valid": 10**15, "rejected": 10**15, "loaded": 10**15},
        "reasons": dict.fromkeys(contract.REASON_CODES, 10**15),
        "totals": {"valid": by_currency, "rejected": by_currency, "loaded": by_currency, "rowsByCurrency": by_currency},
        "unknownColumns": ["c" * (unknown_bytes // recorder.MAX_REPORTED_UNKNOWN_COLUMNS)]
        * recorder.MAX_REPORTED_UNKNOWN_COLUMNS,
        "outputs": {
            "manifest": layout.manifest_key(job_id),
            "quarantine": layout.quarantine_prefix(job_id),
            "processed": [layout.processed_rows_key(job_id, "p" * 16, "9999-12-31", 99999)] * 100,  # load keeps 100
            "snapshots": {table.name: 2**63 - 1 for table in schema.TABLES},
        },
        "error": {"Error": "E" * 256, "Cause": "c" * failure.MAX_CAUSE_CHARACTERS},
        "lastRefusedStart": {"Error": "E" * 256, "Cause": "c" * failure.MAX_CAUSE_CHARACTERS},
        # Each stage's output, kept as JSON text: ids, keys and counts (handlers/jobflow.py).
        "results": {stage: "x" * 2048 for stage in ("ingest", "plan", "summarize", "transform", "load")},
    }
    size = len(json.dumps(record).encode())
    assert size <= DYNAMODB_ITEM_BYTES, (
        f"the largest job record is {size} bytes: unknown column names alone may take {unknown_bytes} "
        "(a header line's worth); cap each reported name"
    )


# Each argument of a key builder at its largest.
KEY_ARGUMENTS = {
    "job_id": "j" * 64,
    "plan_id": "p" * 16,
    "sha256": "a" * 64,
    "booking_date": "9999-12-31",
    "chunk": 10**7 - 1,
    "chunks": 2,
    "part": 10**5 - 1,
    "partition": 10**5 - 1,
    "table": max((table.name for table in schema.TABLES), key=len),
    "name": "part-99999",  # a data file's own name under its job and plan (table_data_key)
    "item": 10**5 - 1,  # a transform item of a booking date (TRANSFORM_ITEM_ROWS)
}


def test_every_key_the_layout_builds_fits_1024_bytes() -> None:
    builders = [
        (name, function)
        for name, function in inspect.getmembers(layout, inspect.isfunction)
        if function.__module__ == layout.__name__ and not name.startswith("_")
    ]
    assert len(builders) >= 20
    for name, function in builders:
        parameters = inspect.signature(function).parameters
        missing = [p for p in parameters if p not in KEY_ARGUMENTS]
        assert not missing, f"layout.{name}: what is the largest {missing}? (KEY_ARGUMENTS in this test)"
        built = function(**{p: KEY_ARGUMENTS[p] for p in parameters})
        for key in built if isinstance(built, list) else [built]:
            assert len(key.encode()) <= S3_KEY_BYTES, f"layout.{name}: {len(key.encode())} bytes"


# ---------------------------------------------------------------- CloudWatch, EventBridge


def test_alarms_evaluate_within_their_range(environment: tuple[Synth, PipelineConfig]) -> None:
    synthesized, _ = environment
    alarms = synthesized.resources("orchestration", "aws_cloudwatch_metric_alarm").values()
    assert alarms
    for alarm in alarms:
        evaluated = alarm["period"] * alarm["evaluation_periods"]
        limit = ALARM_RANGE_SECONDS if alarm["period"] >= 3600 else 86400
        assert evaluated <= limit, f"{alarm['alarm_name']}: evaluates {evaluated} s, the limit is {limit} s"


def test_event_retry_policies_stay_within_eventbridges_maxima(environment: tuple[Synth, PipelineConfig]) -> None:
    synthesized, _ = environment
    targets = synthesized.resources("orchestration", "aws_cloudwatch_event_target").values()
    assert targets
    for target in targets:
        policy = target["retry_policy"]
        assert 0 <= policy["maximum_retry_attempts"] <= EVENT_RETRY_ATTEMPTS
        assert EVENT_AGE_SECONDS[0] <= policy["maximum_event_age_in_seconds"] <= EVENT_AGE_SECONDS[1]
