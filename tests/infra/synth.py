"""Synthesized stacks as data, for assertions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAYERS = ("network", "storage", "compute", "orchestration")


@dataclass(frozen=True)
class Synth:
    outdir: Path
    stacks: dict[str, dict[str, Any]]

    def stack_dir(self, layer: str) -> Path:
        return self.outdir / "stacks" / layer

    def resources(self, layer: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return self.stacks[layer].get("resource", {}).get(resource_type, {})

    def only(self, layer: str, resource_type: str) -> dict[str, Any]:
        found = self.resources(layer, resource_type)
        assert len(found) == 1, f"expected one {resource_type} in {layer}, found {sorted(found)}"
        return next(iter(found.values()))

    def data(self, layer: str, data_type: str) -> dict[str, dict[str, Any]]:
        return self.stacks[layer].get("data", {}).get(data_type, {})

    def all_resources(self) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        for layer, stack in self.stacks.items():
            for resource_type, instances in stack.get("resource", {}).items():
                for logical_id, body in instances.items():
                    yield layer, resource_type, logical_id, body

    def policy_documents(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for layer, stack in self.stacks.items():
            for logical_id, body in stack.get("data", {}).get("aws_iam_policy_document", {}).items():
                yield layer, logical_id, body


def synthesize(config: Any, outdir: Path) -> Synth:
    """Synthesize all four stacks for `config` through app.py, in this process."""
    from app import build_app

    build_app(config, outdir=str(outdir)).synth()
    return read(outdir)


def read(outdir: Path) -> Synth:
    stacks = {layer: json.loads((outdir / "stacks" / layer / "cdk.tf.json").read_text()) for layer in LAYERS}
    return Synth(outdir=outdir, stacks=stacks)


def tree_bytes(outdir: Path) -> dict[str, bytes]:
    return {
        path.relative_to(outdir).as_posix(): path.read_bytes()
        for path in sorted(outdir.rglob("*"))
        if path.is_file() and ".terraform" not in path.parts and not path.name.endswith(".lock.hcl")
    }
