"""The published tables as a ledger, on the local deployment: a file with a rejected row loads, its
corrected file replaces it in one commit (the first job SUPERSEDED), no state a reader could see holds
part of a job or both, the documented audit queries answer as the tables say, and Terraform sees no
change in the tables the commits moved on."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lake import schema
from local.workspace import SUFFIX, Target
from pipeline_cli.deployment import Deployment
from pipeline_cli.main import main
from tests.e2e.jobs import assert_reconciled, published_table

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
DAY = date(2026, 11, 30)
ORIGINAL, CORRECTION = "daily-2026-11-30", "daily-2026-11-30-fix"
EXAMPLE_SNAPSHOT = "1234567890123456789"
EXAMPLE_TIME = "TIMESTAMP '2026-12-01 06:00:00 UTC'"
HEADER = "transaction_id,account_id,booked_at,amount,currency,direction,description\n"


def _file(path: Path, amounts: dict[int, str]) -> Path:
    rows = [
        f"T{n:05d},ACC{n % 3},{DAY.isoformat()}T{8 + n % 10:02d}:00:00Z,{amount},USD,CREDIT,row {n}\n"
        for n, amount in amounts.items()
    ]
    path.write_text(HEADER + "".join(rows))
    return path


def _run(*args: str) -> int:
    return main(["run", *args, "--wait", "--env", SUFFIX])


def _athena(target: Target, deployment: Deployment, sql: str) -> list[dict[str, str | None]]:
    athena = target.client("athena")
    workgroup = target.client("ssm").get_parameter(Name=f"/pipeline/{SUFFIX}/athena-workgroup")["Parameter"]["Value"]
    started = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": deployment.database}, WorkGroup=workgroup
    )["QueryExecutionId"]
    deadline = time.monotonic() + 120
    while True:
        status = athena.get_query_execution(QueryExecutionId=started)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        assert time.monotonic() < deadline, f"query still {status['State']}: {sql}"
        time.sleep(0.5)
    assert status["State"] == "SUCCEEDED", f"{status.get('StateChangeReason')}\n{sql}"
    rows = athena.get_query_results(QueryExecutionId=started)["ResultSet"]["Rows"]
    header = [cell.get("VarCharValue") for cell in rows[0]["Data"]]
    return [dict(zip(header, [cell.get("VarCharValue") for cell in row["Data"]], strict=True)) for row in rows[1:]]


def documented_queries() -> dict[str, str]:
    text = DOCS.read_text()
    found = dict(re.findall(r"<!-- query: ([a-z-]+) -->\n```sql\n(.*?)```", text, flags=re.S))
    assert len(found) >= 8, sorted(found)
    return found


@pytest.fixture(scope="module")
def ledger(target: Target, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The original job (one row rejected), then its correction (that row fixed, one amount changed)."""
    tmp = tmp_path_factory.mktemp("ledger")
    amounts = {n: "10.00" for n in range(30, 50)}
    broken = _file(tmp / "daily.csv", {**amounts, 49: "12.345"})  # USD has 2 minor units: rejected
    assert _run(str(broken), "--job-id", ORIGINAL) == 0
    deployment = Deployment.discover(SUFFIX)
    original = deployment.job(ORIGINAL)
    assert original["status"] == "LOADED" and original["counts"]["rejected"] == 1
    time.sleep(1.5)
    between = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.5)
    fixed = _file(tmp / "daily-fixed.csv", {**amounts, 31: "11.00", 49: "12.35"})
    assert _run(str(fixed), "--job-id", CORRECTION, "--replaces", ORIGINAL) == 0
    return {
        "deployment": deployment,
        "original": deployment.job(ORIGINAL),
        "correction": deployment.job(CORRECTION),
        "between": between,
    }


def test_a_corrected_file_replaces_its_job_in_one_commit(target: Target, ledger: dict[str, Any]) -> None:
    original, correction, deployment = ledger["original"], ledger["correction"], ledger["deployment"]
    assert original["status"] == "SUPERSEDED" and original["supersededBy"] == CORRECTION
    assert correction["status"] == "LOADED" and correction["replaces"] == ORIGINAL
    assert_reconciled(target, correction, deployment)
    table = published_table(deployment, schema.TRANSACTIONS.name)
    rows = table.scan().to_arrow().to_pylist()
    assert not [r for r in rows if r["job_id"] == ORIGINAL]
    mine = {r["transaction_id"]: r["amount"] for r in rows if r["job_id"] == CORRECTION}
    assert len(mine) == 20 and mine["T00031"] == Decimal("11.00") and mine["T00049"] == Decimal("12.35")
    # Reconciled across both: the correction's totals are what it validated; the original's are gone.
    assert correction["totals"]["loaded"] == {"USD": "203.35"}  # 18 x 10.00 + 11.00 + 12.35


def test_no_state_a_reader_could_see_holds_part_of_a_job(ledger: dict[str, Any]) -> None:
    """Every metadata file the table pointed at (each state a reader could have seen): each job's rows
    all there or none, and never both the original and its correction."""
    from pyiceberg.table import StaticTable

    table = published_table(ledger["deployment"], schema.TRANSACTIONS.name)
    locations = [entry.metadata_file for entry in table.metadata.metadata_log] + [table.metadata_location]
    whole = {ORIGINAL: 19, CORRECTION: 20}
    seen_original = False
    for location in locations:
        state = StaticTable.from_metadata(location, {"py-io-impl": "handlers.dal.iceberg_io.Boto3FileIO"})
        if state.current_snapshot() is None:
            continue
        counts = Counter(state.scan(selected_fields=("job_id",)).to_arrow().column("job_id").to_pylist())
        for job, rows in whole.items():
            assert counts.get(job, 0) in (0, rows), (location, counts)
        assert not (counts.get(ORIGINAL) and counts.get(CORRECTION)), (location, counts)
        seen_original = seen_original or bool(counts.get(ORIGINAL))
    assert seen_original


def test_the_documented_queries_answer_as_the_tables_say(target: Target, ledger: dict[str, Any]) -> None:
    deployment = ledger["deployment"]
    before = str(ledger["original"]["outputs"]["snapshots"][schema.TRANSACTIONS.name])
    moment = f"TIMESTAMP '{ledger['between'].strftime('%Y-%m-%d %H:%M:%S')} UTC'"
    answers = {
        name: _athena(target, deployment, sql.replace(EXAMPLE_SNAPSHOT, before).replace(EXAMPLE_TIME, moment))
        for name, sql in documented_queries().items()
    }
    current = published_table(deployment, schema.TRANSACTIONS.name).scan().to_arrow().to_pylist()
    of_day = [r for r in current if r["booking_date"] == DAY]
    expected_totals = {}
    for row in of_day:
        count, total = expected_totals.get(row["currency"], (0, Decimal(0)))
        expected_totals[row["currency"]] = (count + 1, total + row["amount"])
    assert {
        a["currency"]: (int(a["row_count"]), Decimal(a["total"])) for a in answers["totals-of-a-date"]
    } == expected_totals
    history = answers["history"]
    assert [h["job_id"] for h in history if h["job_id"] in (ORIGINAL, CORRECTION)][-1] == CORRECTION
    assert {h["replaces"] for h in history if h["job_id"] == CORRECTION} == {ORIGINAL}
    assert answers["as-of-snapshot"] == [{"job_id": ORIGINAL, "row_count": "19", "total": "190.0000"}]
    assert answers["as-of-time"] == [{"job_id": ORIGINAL, "row_count": "19"}]
    (which,) = answers["which-job"]
    assert (which["job_id"], which["source_line"], Decimal(which["amount"])) == (CORRECTION, "14", Decimal("10"))
    changes = {c["transaction_id"]: (c["amount_before"], c["amount_after"]) for c in answers["correction-changes"]}
    assert {k: (v[0] and Decimal(v[0]), Decimal(v[1])) for k, v in changes.items()} == {
        "T00031": (Decimal("10.00"), Decimal("11.00")),
        "T00049": (None, Decimal("12.35")),
    }
    assert answers["cross-job-duplicates"] == []  # the correction replaced its job: nothing twice
    rejected = {(q["job_id"], q["reason"]): Decimal(q["rows_rejected"]) for q in answers["quality"]}
    assert rejected[(ORIGINAL, "AMOUNT_PRECISION")] == 1
    assert not [key for key in rejected if key[0] == CORRECTION]


def test_terraform_sees_no_change_in_the_tables_after_commits(target: Target, ledger: dict[str, Any]) -> None:
    result = target.terraform("storage", "plan", "-detailed-exitcode", "-input=false", "-no-color")
    assert result.returncode == 0, f"storage drifts after commits:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
