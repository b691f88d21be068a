import json
from unittest import mock

import pytest

from pipeline_cli.main import main
from tests.handlers.conftest import BUCKET, DATABASE, TABLE, WORK_BUCKET, csv_text, good_row, put_incoming, run_chain


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def test_exit_0_and_report(tmp_path, capsys):
    rows = [good_row(i) for i in range(1, 40)] + ["T99,ACC1,2024-01-01T00:00:00Z,1.234,USD,DEBIT,x"]
    report_path = tmp_path / "r.json"
    assert main(["validate", write(tmp_path, "f.csv", csv_text(*rows)), "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["records"] == 40 and report["valid"] == 39 and report["rejected"] == 1
    assert report["reasons"] == {"AMOUNT_PRECISION": 1}
    assert report["totals"] == {"valid": {"USD": "390.00"}, "rejected": {"USD": "1.234"}}
    assert report["rejects"] == [{"line": 41, "transaction_id": "T99", "reasons": ["AMOUNT_PRECISION"]}]
    assert "40 rows" in capsys.readouterr().out


def test_exit_1_over_threshold_and_jsonl_by_extension(tmp_path):
    path = write(tmp_path, "f.ndjson", '{"sample": "data"}\n')
    assert main(["validate", path]) == 1
    assert main(["validate", path, "--reject-threshold", "1"]) == 0


def test_exit_2_unreadable_or_bad_arguments(tmp_path):
    assert main(["validate", write(tmp_path, "empty.csv", "")]) == 2
    assert main(["validate", write(tmp_path, "bin.csv", b"\xff\xfe\x00\x01")]) == 2
    assert main(["validate", str(tmp_path / "missing.csv")]) == 2
    assert main(["validate", write(tmp_path, "f.txt", "x")]) == 2
    assert main(["validate"]) == 2
    assert main(["validate", write(tmp_path, "g.csv", csv_text(good_row(1))), "--reject-threshold", "7"]) == 2
    assert main([]) == 2


# --- `pipeline run` and `pipeline status` of a re-sent file (moto: the deployment found through SSM) ---

RESENT_EXIT = 3  # `pipeline run`'s code for "already sent" (README, `pipeline run --help`)


@pytest.fixture
def deployed(aws):
    """The test tables and bucket, found as `pipeline` finds a deployment: through Parameter Store."""
    import boto3

    from stacks import parameters

    ssm = boto3.client("ssm")
    for key, value in {
        parameters.BUCKET_NAME: BUCKET,
        parameters.WORK_BUCKET_NAME: WORK_BUCKET,
        parameters.GLUE_DATABASE: DATABASE,
        parameters.TABLE_NAME: TABLE,
        parameters.STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline-workflow-test",
    }.items():
        ssm.put_parameter(Name=parameters.name("test", key), Value=value, Type="String")
    return aws


def incoming_keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="incoming/").get("Contents", []))


def test_run_of_a_file_already_loaded_says_so_in_one_line_and_exits_3(deployed, tmp_path, capsys):
    body = csv_text(*(good_row(n) for n in range(1, 9)))
    run_chain(put_incoming(deployed, job_id="first", body=body))
    before = incoming_keys(deployed)
    capsys.readouterr()
    with (
        mock.patch("pipeline_cli.run_cmd.start", return_value="arn:execution") as start,
        mock.patch("pipeline_cli.run_cmd.follow_job", side_effect=AssertionError("no job to follow")),
    ):
        assert main(["run", write(tmp_path, "again.csv", body), "--env", "test", "--wait"]) == RESENT_EXIT
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert "already" in err and "job first (LOADED)" in err and "--force" in err
    start.assert_not_called()
    assert incoming_keys(deployed) == before  # nothing uploaded, no job started


def test_run_with_force_sends_it_again(deployed, tmp_path):
    body = csv_text(*(good_row(n) for n in range(1, 9)))
    run_chain(put_incoming(deployed, job_id="first", body=body))
    with mock.patch("pipeline_cli.run_cmd.start", return_value="arn:execution") as start:
        assert main(["run", write(tmp_path, "again.csv", body), "--env", "test", "--force"]) == 0
    job_input = start.call_args.kwargs["job_input"]
    assert job_input["force"] is True
    # Sent again under raw/, where no upload starts a job: only the forced start runs it.
    assert job_input["source"]["key"] == "raw/again/again.csv"
    assert deployed.get_object(Bucket=job_input["source"]["bucket"], Key="raw/again/again.csv")["Body"].read()
    assert len(incoming_keys(deployed)) == 1


def test_run_that_ends_resent_while_followed_exits_3(deployed, tmp_path, capsys):
    """Two copies sent at once both pass the check before upload; the plan still refuses one."""
    resent = {"jobId": "copy", "status": "RESENT", "originalJobId": "first", "counts": {}, "source": {}}
    path = write(tmp_path, "copy.csv", csv_text(good_row(1)))
    with (
        mock.patch("pipeline_cli.run_cmd.start", return_value="arn:execution"),
        mock.patch("pipeline_cli.run_cmd.follow_job", return_value=resent),
    ):
        assert main(["run", path, "--env", "test", "--wait"]) == RESENT_EXIT
    out, err = capsys.readouterr()
    assert "RESENT" in out and "first" in out
    assert len(err.splitlines()) == 1 and "job first" in err


def test_status_shows_a_resent_job_and_its_original(deployed, capsys):
    body = csv_text(*(good_row(n) for n in range(1, 5)))
    run_chain(put_incoming(deployed, job_id="first", body=body))
    run_chain(put_incoming(deployed, job_id="second", body=body, name="other.csv"))
    capsys.readouterr()
    assert main(["status", "second", "--env", "test"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "RESENT"
    assert shown["originalJob"] == {"jobId": "first", "status": "LOADED"}
