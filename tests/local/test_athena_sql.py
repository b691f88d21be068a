"""Athena in the emulator runs SQL (local/athena_sql.py) over the Glue catalog's Iceberg tables:
exact decimals, time travel, metadata tables, results in Athena's shapes, failures as FAILED."""

# ruff: noqa: S608 - the queries are the tests' own, built from the names of the tables they made

from __future__ import annotations

import json
import time

import pytest
from iceberg_helpers import LEDGER, glue_catalog, new_lake, rows

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


@pytest.fixture(scope="module")
def ledger(emulator):
    """An Iceberg ledger with two commits; (bucket, database, first snapshot, second snapshot)."""
    bucket, database = new_lake(emulator, "athena")
    table = glue_catalog(emulator.url).create_table(
        f"{database}.ledger", schema=LEDGER, location=f"s3://{bucket}/processed/ledger"
    )
    table.append(
        rows(
            ("t1", "EUR", "12.3400", "2024-03-01"),
            ("t2", "EUR", "0.0001", "2024-03-01"),
            ("t3", "USD", "5.5", "2024-03-02"),
        )
    )
    first = table.current_snapshot()
    time.sleep(0.01)  # two commit times a clock tick apart
    table.append(rows(("t4", "EUR", "1000000000.9999", "2024-03-02"), ("t5", "JPY", "7", "2024-03-02")))
    second = table.current_snapshot()
    emulator.client("athena").create_work_group(
        Name=f"wg-{database}",
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{bucket}/athena-results/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )
    return bucket, database, first, second


def run(emulator, sql: str, database: str, **start) -> dict:
    athena = emulator.client("athena")
    start.setdefault("WorkGroup", f"wg-{database}")
    query_id = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": database}, **start)[
        "QueryExecutionId"
    ]
    deadline = time.monotonic() + 60
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] in TERMINAL or time.monotonic() > deadline:
            return execution
        time.sleep(0.05)


def results(emulator, execution: dict) -> tuple[list[list[str | None]], list[dict]]:
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    page = emulator.client("athena").get_query_results(QueryExecutionId=execution["QueryExecutionId"])
    table = [[datum.get("VarCharValue") for datum in row["Data"]] for row in page["ResultSet"]["Rows"]]
    return table, page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]


def test_aggregate_of_decimals_is_exact(emulator, ledger):
    bucket, database, _, _ = ledger
    sql = f'SELECT currency, sum(amount) AS total, count(*) FROM "{database}"."ledger" GROUP BY currency ORDER BY 1'
    execution = run(emulator, sql, database)
    table, columns = results(emulator, execution)
    assert table == [
        ["currency", "total", "_col2"],
        ["EUR", "1000000013.3400", "3"],
        ["JPY", "7.0000", "1"],
        ["USD", "5.5000", "1"],
    ]
    total = columns[1]
    assert (total["Name"], total["Type"], total["Scale"]) == ("total", "decimal", 4)
    assert [c["Type"] for c in columns] == ["varchar", "decimal", "bigint"]
    assert execution["Statistics"]["DataScannedInBytes"] > 0

    # The result CSV at the workgroup's enforced location, as Athena writes it.
    location = execution["ResultConfiguration"]["OutputLocation"]
    assert location == f"s3://{bucket}/athena-results/{execution['QueryExecutionId']}.csv"
    body = emulator.client("s3").get_object(Bucket=bucket, Key=location.split(f"{bucket}/", 1)[1])["Body"].read()
    assert body.decode().splitlines() == [
        '"currency","total","_col2"',
        '"EUR","1000000013.3400","3"',
        '"JPY","7.0000","1"',
        '"USD","5.5000","1"',
    ]


def test_time_travel_by_version_and_by_timestamp(emulator, ledger):
    _, database, first, second = ledger
    by_version = run(
        emulator, f"SELECT sum(amount) AS total FROM ledger FOR VERSION AS OF {first.snapshot_id}", database
    )
    assert results(emulator, by_version)[0] == [["total"], ["17.8401"]]

    # The snapshot current at a time: the first one, from its commit until the second's.
    at = first.timestamp_ms
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at // 1000)) + f".{at % 1000:03d} UTC"
    sql = (
        f'SELECT t.transaction_id FROM "{database}"."ledger" FOR TIMESTAMP AS OF TIMESTAMP \'{stamp}\' AS t ORDER BY 1'
    )
    assert results(emulator, run(emulator, sql, database))[0] == [["transaction_id"], ["t1"], ["t2"], ["t3"]]
    now = run(emulator, "SELECT count(*) AS n FROM ledger FOR TIMESTAMP AS OF (current_timestamp)", database)
    assert results(emulator, now)[0] == [["n"], ["5"]]

    before = run(emulator, "SELECT * FROM ledger FOR TIMESTAMP AS OF TIMESTAMP '2001-01-01 00:00:00 UTC'", database)
    assert before["Status"]["State"] == "FAILED"
    assert (
        f"No version history table '{database}.ledger' at or before 2001-01-01" in before["Status"]["StateChangeReason"]
    )
    missing = run(emulator, "SELECT * FROM ledger FOR VERSION AS OF 42", database)
    assert missing["Status"]["StateChangeReason"] == "INVALID_ARGUMENTS: Iceberg snapshot ID does not exists: 42"


def test_metadata_tables(emulator, ledger):
    _, database, first, second = ledger
    sql = (
        "SELECT snapshot_id, parent_id, operation, summary['added-records'] AS added "
        f'FROM "{database}"."ledger$snapshots" ORDER BY committed_at'
    )
    assert results(emulator, run(emulator, sql, database))[0] == [
        ["snapshot_id", "parent_id", "operation", "added"],
        [str(first.snapshot_id), None, "append", "3"],
        [str(second.snapshot_id), str(first.snapshot_id), "append", "2"],
    ]
    history, columns = results(
        emulator, run(emulator, 'SELECT * FROM "ledger$history" ORDER BY made_current_at', database)
    )
    assert history[0] == ["made_current_at", "snapshot_id", "parent_id", "is_current_ancestor"]
    assert [row[1:] for row in history[1:]] == [
        [str(first.snapshot_id), None, "true"],
        [str(second.snapshot_id), str(first.snapshot_id), "true"],
    ]
    assert history[1][0].endswith(" UTC") and columns[0]["Type"] == "timestamp with time zone"
    files = results(emulator, run(emulator, 'SELECT sum(record_count) AS n FROM "ledger$files"', database))[0]
    assert files == [["n"], ["5"]]


def test_failures_end_failed_with_athena_reason(emulator, ledger):
    _, database, _, _ = ledger
    column = run(emulator, "SELECT no_such_column FROM ledger", database)
    assert column["Status"]["State"] == "FAILED"
    assert column["Status"]["StateChangeReason"].startswith("COLUMN_NOT_FOUND")
    assert column["Status"]["AthenaError"]["ErrorCategory"] == 2
    table = run(emulator, f'SELECT * FROM "{database}"."no_such_table"', database)
    assert table["Status"]["StateChangeReason"].startswith("TABLE_NOT_FOUND")
    syntax = run(emulator, "SELEC 1", database)
    assert syntax["Status"]["StateChangeReason"].startswith("SYNTAX_ERROR")

    athena = emulator.client("athena")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="Final query state: FAILED"):
        athena.get_query_results(QueryExecutionId=column["QueryExecutionId"])
    with pytest.raises(athena.exceptions.InvalidRequestException, match="No output location provided"):
        athena.start_query_execution(QueryString="SELECT 1", WorkGroup="primary")


def test_results_page_and_null(emulator, ledger):
    _, database, _, _ = ledger
    execution = run(
        emulator, "SELECT transaction_id, CAST(NULL AS VARCHAR) AS nothing FROM ledger ORDER BY 1", database
    )
    athena = emulator.client("athena")
    first = athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"], MaxResults=4)
    assert [r["Data"][0]["VarCharValue"] for r in first["ResultSet"]["Rows"]] == ["transaction_id", "t1", "t2", "t3"]
    assert first["ResultSet"]["Rows"][1]["Data"][1] == {}
    rest = athena.get_query_results(
        QueryExecutionId=execution["QueryExecutionId"], MaxResults=4, NextToken=first["NextToken"]
    )
    assert [r["Data"][0]["VarCharValue"] for r in rest["ResultSet"]["Rows"]] == ["t4", "t5"]
    assert "NextToken" not in rest


def _audit_machine(emulator, database: str) -> str:
    iam, name = emulator.client("iam"), f"audit-{database}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "states.amazonaws.com"}}
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    grants = ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": grants, "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="athena", PolicyDocument=json.dumps(policy))
    definition = {
        "StartAt": "Query",
        "States": {
            "Query": {
                "Type": "Task",
                "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
                "Parameters": {
                    "QueryString.$": "$.sql",
                    "WorkGroup": f"wg-{database}",
                    "QueryExecutionContext": {"Database": database},
                },
                "ResultPath": "$.query",
                "Next": "Results",
            },
            "Results": {
                "Type": "Task",
                "Resource": "arn:aws:states:::athena:getQueryResults",
                "Parameters": {"QueryExecutionId.$": "$.query.QueryExecution.QueryExecutionId", "MaxResults": 10},
                "ResultSelector": {"rows.$": "$.ResultSet.Rows"},
                "End": True,
            },
        },
    }
    sfn = emulator.client("stepfunctions")
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]


def _execute(emulator, machine: str, sql: str) -> dict:
    sfn = emulator.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"sql": sql}))["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the state machine did not finish"
        time.sleep(0.1)
    return described


def test_step_functions_runs_a_query_and_reads_its_results(emulator, ledger):
    """The optimized integration a scheduled audit uses: startQueryExecution.sync, then
    getQueryResults, on the state machine's role."""
    _, database, _, _ = ledger
    machine = _audit_machine(emulator, database)
    done = _execute(emulator, machine, "SELECT currency, sum(amount) AS total FROM ledger GROUP BY 1 ORDER BY 1")
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    rows = [[d.get("VarCharValue") for d in row["Data"]] for row in json.loads(done["output"])["rows"]]
    assert rows == [["currency", "total"], ["EUR", "1000000013.3400"], ["JPY", "7.0000"], ["USD", "5.5000"]]

    failed = _execute(emulator, machine, "SELECT no_such_column FROM ledger")
    assert failed["status"] == "FAILED"
    assert failed["error"] == "States.TaskFailed"
    cause = json.loads(failed["cause"])["QueryExecution"]["Status"]
    assert cause["State"] == "FAILED" and cause["StateChangeReason"].startswith("COLUMN_NOT_FOUND")


def test_a_table_with_no_commit_yet_has_its_columns_and_no_rows(emulator, ledger):
    """As the storage layer registers a table: its first metadata file, no snapshot."""
    bucket, database, _, _ = ledger
    glue_catalog(emulator.url).create_table(f"{database}.empty", schema=LEDGER, location=f"s3://{bucket}/empty")
    table, columns = results(emulator, run(emulator, "SELECT count(*) AS n, sum(amount) AS total FROM empty", database))
    assert table == [["n", "total"], ["0", None]]
    assert [c["Type"] for c in columns] == ["bigint", "decimal"]
