"""Reading checkov's view of a .tf.json block, shared by the CKV_FIN checks.

checkov wraps every attribute in lists (and nested blocks in lists of dicts); these
helpers unwrap them. checkov puts this folder on sys.path, so checks import it by name.
"""

from __future__ import annotations

from typing import Any


def first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def flat(value: Any) -> list[Any]:
    if not isinstance(value, list):
        return [value]
    return [item for part in value for item in flat(part)]


def blocks(value: Any) -> list[dict[str, Any]]:
    return [b for b in flat(value) if isinstance(b, dict)]


def is_production_like(conf: dict[str, Any]) -> bool:
    """By the Environment tag, as stacks/config.py decides it: `prod` or `prod-*`."""
    tags = first(conf.get("tags", [{}])) or {}
    environment = str(tags.get("Environment", "")) if isinstance(tags, dict) else ""
    return environment == "prod" or environment.startswith("prod-")
