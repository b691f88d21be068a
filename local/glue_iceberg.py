"""Glue as Iceberg writers and the storage layer need it: UpdateTable's optimistic VersionId and
the table optimizer API (moto 5.2.5 has neither).

UpdateTable with VersionId
    Glue's optimistic concurrency: an UpdateTable whose VersionId is not the table's current one
    is refused with ConcurrentModificationException ("Update table failed due to concurrent
    modifications.", HTTP 400), and every update advances VersionId by one (API_TableVersion:
    "A VersionId is a string representation of an integer. Each version is incremented by 1").
    pyiceberg's GlueCatalog reads the table (GetTable), writes new metadata, and commits with
    UpdateTable(VersionId=<the one read>); it turns the exception into CommitFailedException,
    which the writer retries after a refresh. moto ignored VersionId, so of two concurrent
    commits the later silently replaced the earlier's metadata_location: its snapshot was lost
    (8 threads appending at once kept 1 row of 8, with no error). The check and the update now
    run under one lock. SkipArchive=true (pyiceberg's default) keeps no archived version, as Glue.
    https://docs.aws.amazon.com/glue/latest/webapi/API_UpdateTable.html

Table optimizers (CreateTableOptimizer, GetTableOptimizer, UpdateTableOptimizer,
DeleteTableOptimizer, BatchGetTableOptimizer, ListTableOptimizerRuns)
    The calls of the provider's aws_glue_catalog_table_optimizer (create, get, update, delete)
    and the two read calls beside them. A configuration is stored and returned as given (types
    compaction, retention, orphan_file_deletion; roleArn, enabled, the Iceberg settings), with
    Glue's refusals: a missing database or table is EntityNotFoundException, a second optimizer
    of one type AlreadyExistsException, an unknown type or strategy ValidationException, a
    non-Iceberg table, a missing roleArn or enabled, or a run rate outside 3..168 hours
    InvalidInputException (API_IcebergRetentionConfiguration, API_CreateTableOptimizer).
    Nothing runs here: no compaction, no snapshot expiry, no orphan deletion. A table only grows
    locally; ListTableOptimizerRuns answers no runs, and lastRun is absent.
"""

from __future__ import annotations

import json
import threading
from typing import Any

_UPDATE_LOCK = threading.Lock()
OPTIMIZER_TYPES = ("compaction", "retention", "orphan_file_deletion")
COMPACTION_STRATEGIES = ("binpack", "sort", "z-order")
_RUN_RATE_HOURS = (3, 168)  # API_IcebergRetentionConfiguration / API_IcebergOrphanFileDeletionConfiguration


def _errors() -> Any:
    from moto.glue.exceptions import GlueClientError

    class ConcurrentModification(GlueClientError):
        def __init__(self, message: str) -> None:
            super().__init__("ConcurrentModificationException", message)

    class InvalidInput(GlueClientError):
        def __init__(self, message: str) -> None:
            super().__init__("InvalidInputException", message)

    class Validation(GlueClientError):
        def __init__(self, message: str) -> None:
            super().__init__("ValidationException", message)

    return ConcurrentModification, InvalidInput, Validation


def apply_update_table_version() -> None:
    from moto.glue.responses import GlueResponse

    if getattr(GlueResponse.update_table, "checks_version", False):
        return
    concurrent, _, _ = _errors()
    original = GlueResponse.update_table

    def update_table(self: Any) -> Any:
        params = self.parameters
        database, table_input = params.get("DatabaseName"), params.get("TableInput") or {}
        with _UPDATE_LOCK:
            table = self.glue_backend.get_table(database, table_input.get("Name"))
            current = str(table._current_version)
            expected = params.get("VersionId")
            if expected is not None and str(expected) != current:
                raise concurrent("Update table failed due to concurrent modifications.")
            result = original(self)
            if params.get("SkipArchive"):
                table.versions.pop(current, None)
            return result

    update_table.checks_version = True  # type: ignore[attr-defined]
    GlueResponse.update_table = update_table


# ------------------------------------------------------------------ table optimizers
def _optimizers(backend: Any) -> dict:
    if not hasattr(backend, "table_optimizers"):
        backend.table_optimizers = {}
    return backend.table_optimizers


def _validate(backend: Any, params: dict, *, configuration: bool) -> tuple:
    """The key of the optimizer the request names, after Glue's checks of it."""
    _, invalid, validation = _errors()
    database, name, kind = params.get("DatabaseName"), params.get("TableName"), params.get("Type")
    if kind not in OPTIMIZER_TYPES:
        raise validation(
            f"1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(OPTIMIZER_TYPES)}]"
        )
    table = backend.get_table(database, name)  # EntityNotFoundException for a database or table
    parameters = table.as_dict().get("Parameters") or {}
    if str(parameters.get("table_type", "")).upper() != "ICEBERG":
        raise invalid(f"Table {database}.{name} is not an Iceberg table: table optimizers support Iceberg tables only")
    if configuration:
        _check_configuration(kind, params.get("TableOptimizerConfiguration"))
    return (params.get("CatalogId") or backend.account_id, database, name, kind)


def _check_configuration(kind: str, config: Any) -> None:
    _, invalid, validation = _errors()
    if not isinstance(config, dict):
        raise invalid("TableOptimizerConfiguration is required")
    for field in ("roleArn", "enabled"):
        if config.get(field) is None:
            raise invalid(f"TableOptimizerConfiguration.{field} is required")
    strategy = ((config.get("compactionConfiguration") or {}).get("icebergConfiguration") or {}).get("strategy")
    if strategy is not None and strategy not in COMPACTION_STRATEGIES:
        raise validation(
            f"1 validation error detected: Value '{strategy}' at "
            "'tableOptimizerConfiguration.compactionConfiguration.icebergConfiguration.strategy' failed to satisfy "
            f"constraint: Member must satisfy enum value set: [{', '.join(COMPACTION_STRATEGIES)}]"
        )
    for section in ("retentionConfiguration", "orphanFileDeletionConfiguration"):
        iceberg = (config.get(section) or {}).get("icebergConfiguration") or {}
        rate = iceberg.get("runRateInHours")
        if rate is not None and not _RUN_RATE_HOURS[0] <= rate <= _RUN_RATE_HOURS[1]:
            raise invalid(
                f"{section}.icebergConfiguration.runRateInHours {rate} must be between "
                f"{_RUN_RATE_HOURS[0]} and {_RUN_RATE_HOURS[1]} hours"
            )
    for days_field, section in (
        ("snapshotRetentionPeriodInDays", "retentionConfiguration"),
        ("numberOfSnapshotsToRetain", "retentionConfiguration"),
        ("orphanFileRetentionPeriodInDays", "orphanFileDeletionConfiguration"),
    ):
        value = ((config.get(section) or {}).get("icebergConfiguration") or {}).get(days_field)
        if value is not None and value < 1:
            raise invalid(f"{section}.icebergConfiguration.{days_field} {value} must be at least 1")
    sections = {"compaction": "compactionConfiguration", "retention": "retentionConfiguration"}
    own = sections.get(kind, "orphanFileDeletionConfiguration")
    others = [s for s in (*sections.values(), "orphanFileDeletionConfiguration") if s != own and config.get(s)]
    if others:
        raise invalid(f"a {kind} optimizer takes {own} only, not {', '.join(others)}")


def _not_found(key: tuple) -> Exception:
    from moto.glue.exceptions import EntityNotFoundException

    _, database, name, kind = key
    return EntityNotFoundException(f"Table optimizer of type {kind} not found for table {database}.{name}.")


def apply_table_optimizers() -> None:
    from moto.glue.exceptions import AlreadyExistsException
    from moto.glue.responses import GlueResponse

    def create_table_optimizer(self: Any) -> str:
        key = _validate(self.glue_backend, self.parameters, configuration=True)
        with _UPDATE_LOCK:
            stored = _optimizers(self.glue_backend)
            if key in stored:
                raise AlreadyExistsException("Table optimizer")
            stored[key] = {"type": key[3], "configuration": self.parameters["TableOptimizerConfiguration"]}
        return "{}"

    def update_table_optimizer(self: Any) -> str:
        key = _validate(self.glue_backend, self.parameters, configuration=True)
        with _UPDATE_LOCK:
            stored = _optimizers(self.glue_backend)
            if key not in stored:
                raise _not_found(key)
            stored[key] = {"type": key[3], "configuration": self.parameters["TableOptimizerConfiguration"]}
        return "{}"

    def get_table_optimizer(self: Any) -> str:
        key = _validate(self.glue_backend, self.parameters, configuration=False)
        optimizer = _optimizers(self.glue_backend).get(key)
        if optimizer is None:
            raise _not_found(key)
        catalog, database, name, _ = key
        return json.dumps(
            {"CatalogId": catalog, "DatabaseName": database, "TableName": name, "TableOptimizer": optimizer}
        )

    def delete_table_optimizer(self: Any) -> str:
        key = _validate(self.glue_backend, self.parameters, configuration=False)
        with _UPDATE_LOCK:
            if _optimizers(self.glue_backend).pop(key, None) is None:
                raise _not_found(key)
        return "{}"

    def batch_get_table_optimizer(self: Any) -> str:
        found, failures = [], []
        for entry in self.parameters.get("Entries") or []:
            request = {
                "CatalogId": entry.get("catalogId"),
                "DatabaseName": entry.get("databaseName"),
                "TableName": entry.get("tableName"),
                "Type": entry.get("type"),
            }
            try:
                key = _validate(self.glue_backend, request, configuration=False)
                optimizer = _optimizers(self.glue_backend).get(key)
                if optimizer is None:
                    raise _not_found(key)
            except Exception as error:  # noqa: BLE001 - each entry's Glue error is reported in Failures
                code = getattr(error, "error_type", "InternalServiceException")
                failures.append({**entry, "error": {"ErrorCode": code, "ErrorMessage": getattr(error, "message", "")}})
                continue
            found.append(
                {"catalogId": key[0], "databaseName": key[1], "tableName": key[2], "tableOptimizer": optimizer}
            )
        return json.dumps({"TableOptimizers": found, "Failures": failures})

    def list_table_optimizer_runs(self: Any) -> str:
        key = _validate(self.glue_backend, self.parameters, configuration=False)
        if key not in _optimizers(self.glue_backend):
            raise _not_found(key)
        catalog, database, name, _ = key
        return json.dumps({"CatalogId": catalog, "DatabaseName": database, "TableName": name, "TableOptimizerRuns": []})

    for handler in (
        create_table_optimizer,
        update_table_optimizer,
        get_table_optimizer,
        delete_table_optimizer,
        batch_get_table_optimizer,
        list_table_optimizer_runs,
    ):
        setattr(GlueResponse, handler.__name__, handler)


def apply() -> None:
    apply_update_table_version()
    apply_table_optimizers()
