"""CKV_FIN_6: DynamoDB deletion protection in production; CKV_FIN_7: every state machine
Task state has Retry, Catch and TimeoutSeconds.

CKV_FIN_6 reads the Environment tag: a production-like environment (`prod`, `prod-*`)
must have deletion_protection_enabled; dev and test leave it off on purpose so they can be
destroyed (TABLE_DELETION_PROTECTION; docs/security.md), and pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from fin_conf import first, is_production_like


class ProductionTableHasDeletionProtection(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure DynamoDB tables of production environments (prod, prod-*) have deletion protection",
            id="CKV_FIN_6",
            categories=[CheckCategories.BACKUP_AND_RECOVERY],
            supported_resources=["aws_dynamodb_table"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if not is_production_like(conf):
            return CheckResult.PASSED
        return CheckResult.PASSED if first(conf.get("deletion_protection_enabled")) is True else CheckResult.FAILED


def task_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        if state.get("Type") == "Task":
            yield name, state
        for branch in state.get("Branches", []):  # Parallel
            yield from task_states(branch.get("States", {}))
        for key in ("Iterator", "ItemProcessor"):  # Map
            if isinstance(state.get(key), dict):
                yield from task_states(state[key].get("States", {}))


def incomplete_tasks(definition: dict[str, Any]) -> list[str]:
    return [
        name
        for name, task in task_states(definition.get("States", {}))
        if not task.get("Retry")
        or not task.get("Catch")
        or not ("TimeoutSeconds" in task or "TimeoutSecondsPath" in task)
    ]


class EveryTaskRetriesCatchesAndTimesOut(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure every Step Functions Task state has Retry, Catch and TimeoutSeconds",
            id="CKV_FIN_7",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["aws_sfn_state_machine"],
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        raw = first(conf.get("definition"))
        try:
            definition = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return CheckResult.FAILED  # a definition we cannot read is not one we can vouch for
        if not isinstance(definition, dict) or not definition.get("States"):
            return CheckResult.FAILED
        return CheckResult.FAILED if incomplete_tasks(definition) else CheckResult.PASSED


production_table_has_deletion_protection = ProductionTableHasDeletionProtection()
every_task_retries_catches_and_times_out = EveryTaskRetriesCatchesAndTimesOut()
