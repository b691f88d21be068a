"""Glue in the emulator as Iceberg writers and the storage layer use it (local/glue_iceberg.py):
UpdateTable's optimistic VersionId, and the table optimizer API."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError
from iceberg_helpers import LEDGER, glue_catalog, new_lake, rows

ROLE = "arn:aws:iam::123456789012:role/optimizer"


def _table_input(glue, database: str, name: str) -> dict:
    table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    keep = ("Name", "Description", "Owner", "Retention", "StorageDescriptor", "TableType", "Parameters")
    return {k: table[k] for k in keep if k in table}


def test_update_table_refuses_a_stale_version_id_and_advances_it(emulator):
    glue = emulator.client("glue")
    _, database = new_lake(emulator, "version")
    glue.create_table(DatabaseName=database, TableInput={"Name": "t", "Parameters": {"n": "0"}})
    first = glue.get_table(DatabaseName=database, Name="t")["Table"]["VersionId"]

    glue.update_table(DatabaseName=database, TableInput={"Name": "t", "Parameters": {"n": "1"}}, VersionId=first)
    second = glue.get_table(DatabaseName=database, Name="t")["Table"]["VersionId"]
    assert int(second) == int(first) + 1

    with pytest.raises(ClientError) as stale:  # the version the other writer read
        glue.update_table(DatabaseName=database, TableInput={"Name": "t", "Parameters": {"n": "2"}}, VersionId=first)
    error = stale.value.response
    assert error["Error"]["Code"] == "ConcurrentModificationException"
    assert error["Error"]["Message"] == "Update table failed due to concurrent modifications."
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert glue.get_table(DatabaseName=database, Name="t")["Table"]["Parameters"] == {"n": "1"}

    glue.update_table(
        DatabaseName=database, TableInput={"Name": "t", "Parameters": {"n": "3"}}
    )  # no VersionId: last wins
    assert int(glue.get_table(DatabaseName=database, Name="t")["Table"]["VersionId"]) == int(first) + 2


def test_concurrent_iceberg_appends_all_land(emulator):
    """Writers appending at once through pyiceberg's GlueCatalog, each retrying on
    CommitFailedException after a refresh as the load function does: every append is in the
    table. Against moto's UpdateTable (VersionId ignored) 8 writers kept 1 row and saw no error."""
    from pyiceberg.exceptions import CommitFailedException

    bucket, database = new_lake(emulator, "race")
    glue_catalog(emulator.url).create_table(
        f"{database}.ledger", schema=LEDGER, location=f"s3://{bucket}/processed/ledger"
    )
    writers, conflicts, errors = 6, [], []

    def append(i: int) -> None:
        catalog = glue_catalog(emulator.url)
        try:
            for _ in range(20):
                table = catalog.load_table(f"{database}.ledger")
                try:
                    table.append(rows((f"tx-{i}", "EUR", f"{i}.0100", f"2024-03-0{1 + i % 3}")))
                    return
                except CommitFailedException:
                    conflicts.append(i)
            errors.append(f"writer {i} gave up")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(error))

    started = time.monotonic()
    threads = [threading.Thread(target=append, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - started
    assert not errors, errors

    table = glue_catalog(emulator.url).load_table(f"{database}.ledger")
    landed = table.scan().to_arrow()
    assert sorted(landed["transaction_id"].to_pylist()) == sorted(f"tx-{i}" for i in range(writers))
    assert len(table.snapshots()) == writers  # one snapshot per append, none replaced
    print(f"{writers} concurrent appends in {elapsed:.1f}s, {len(conflicts)} retries after CommitFailedException")


# ------------------------------------------------------------------ table optimizers
def _iceberg_table(emulator) -> tuple[str, str]:
    bucket, database = new_lake(emulator, "optim")
    glue_catalog(emulator.url).create_table(
        f"{database}.ledger", schema=LEDGER, location=f"s3://{bucket}/processed/ledger"
    )
    return database, "ledger"


def test_table_optimizers_stored_and_returned(emulator):
    glue = emulator.client("glue")
    database, table = _iceberg_table(emulator)
    name = {"CatalogId": "123456789012", "DatabaseName": database, "TableName": table}
    configs = {
        "compaction": {
            "roleArn": ROLE,
            "enabled": True,
            "compactionConfiguration": {"icebergConfiguration": {"strategy": "binpack"}},
        },
        "retention": {
            "roleArn": ROLE,
            "enabled": True,
            "retentionConfiguration": {
                "icebergConfiguration": {
                    "snapshotRetentionPeriodInDays": 400,
                    "numberOfSnapshotsToRetain": 10,
                    "cleanExpiredFiles": True,
                }
            },
        },
        "orphan_file_deletion": {
            "roleArn": ROLE,
            "enabled": False,
            "orphanFileDeletionConfiguration": {"icebergConfiguration": {"orphanFileRetentionPeriodInDays": 7}},
        },
    }
    for kind, config in configs.items():
        glue.create_table_optimizer(**name, Type=kind, TableOptimizerConfiguration=config)
    for kind, config in configs.items():
        got = glue.get_table_optimizer(**name, Type=kind)
        assert got["TableOptimizer"] == {"type": kind, "configuration": config}
        assert (got["DatabaseName"], got["TableName"], got["CatalogId"]) == (database, table, "123456789012")

    updated = {**configs["orphan_file_deletion"], "enabled": True}
    glue.update_table_optimizer(**name, Type="orphan_file_deletion", TableOptimizerConfiguration=updated)
    assert glue.get_table_optimizer(**name, Type="orphan_file_deletion")["TableOptimizer"]["configuration"] == updated

    batch = glue.batch_get_table_optimizer(
        Entries=[
            {"catalogId": "123456789012", "databaseName": database, "tableName": table, "type": "retention"},
            {"catalogId": "123456789012", "databaseName": database, "tableName": "absent", "type": "retention"},
        ]
    )
    assert [o["tableOptimizer"]["type"] for o in batch["TableOptimizers"]] == ["retention"]
    assert batch["Failures"][0]["error"]["ErrorCode"] == "EntityNotFoundException"
    assert glue.list_table_optimizer_runs(**name, Type="compaction")["TableOptimizerRuns"] == []

    glue.delete_table_optimizer(**name, Type="compaction")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table_optimizer(**name, Type="compaction")


def test_table_optimizer_refusals(emulator):
    glue = emulator.client("glue")
    database, table = _iceberg_table(emulator)
    name = {"CatalogId": "123456789012", "DatabaseName": database, "TableName": table}
    config = {
        "roleArn": ROLE,
        "enabled": True,
        "compactionConfiguration": {"icebergConfiguration": {"strategy": "binpack"}},
    }

    glue.create_table_optimizer(**name, Type="compaction", TableOptimizerConfiguration=config)
    with pytest.raises(glue.exceptions.AlreadyExistsException):
        glue.create_table_optimizer(**name, Type="compaction", TableOptimizerConfiguration=config)
    with pytest.raises(glue.exceptions.EntityNotFoundException, match="absent"):
        glue.create_table_optimizer(
            **{**name, "TableName": "absent"}, Type="compaction", TableOptimizerConfiguration=config
        )
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.update_table_optimizer(
            **name, Type="retention", TableOptimizerConfiguration={"roleArn": ROLE, "enabled": True}
        )
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.delete_table_optimizer(**name, Type="retention")
    with pytest.raises(ClientError, match="enum value set: \\[compaction, retention, orphan_file_deletion\\]") as bad:
        glue.create_table_optimizer(**name, Type="vacuum", TableOptimizerConfiguration=config)
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(glue.exceptions.InvalidInputException, match="roleArn"):
        glue.create_table_optimizer(**name, Type="retention", TableOptimizerConfiguration={"enabled": True})
    with pytest.raises(glue.exceptions.InvalidInputException, match="runRateInHours 1 must be between 3 and 168"):
        glue.create_table_optimizer(
            **name,
            Type="retention",
            TableOptimizerConfiguration={
                "roleArn": ROLE,
                "enabled": True,
                "retentionConfiguration": {"icebergConfiguration": {"runRateInHours": 1}},
            },
        )
    glue.create_table(DatabaseName=database, TableInput={"Name": "hive", "Parameters": {"classification": "parquet"}})
    with pytest.raises(glue.exceptions.InvalidInputException, match="not an Iceberg table"):
        glue.create_table_optimizer(
            **{**name, "TableName": "hive"}, Type="compaction", TableOptimizerConfiguration=config
        )
