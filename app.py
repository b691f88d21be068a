#!/usr/bin/env python3
"""Builds one config and the four layers, declares their order, and synthesizes.

`cdktf synth`, `cdktf deploy '*'`, `make synth` and the tests all come through here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipeline_constructs import provider_import

# Before any provider module is imported: loads only the submodules the stacks use (~4 s
# instead of ~20 s; see pipeline_constructs/provider_import.py).
provider_import.enable()

from pipeline_constructs.framework import App  # noqa: E402
from stacks.base import environment_name  # noqa: E402
from stacks.compute import ComputeStack  # noqa: E402
from stacks.config import ConfigError, PipelineConfig, from_env  # noqa: E402
from stacks.network import NetworkStack  # noqa: E402
from stacks.orchestration import OrchestrationStack  # noqa: E402
from stacks.storage import StorageStack  # noqa: E402


def claim(outdir: Path, environment: str) -> None:
    """One output directory, one environment.

    Terraform keeps each layer's backend in <outdir>/stacks/<layer>/.terraform. Synthesizing
    another environment over initialized layers would make `terraform init` offer to migrate
    the first environment's state into the second's, so that is refused.
    """
    marker = outdir / "environment"
    previous = marker.read_text().strip() if marker.is_file() else environment
    if previous != environment and any(outdir.glob("stacks/*/.terraform")):
        raise ConfigError(
            f"{outdir} holds the Terraform working directories of '{previous}', not '{environment}': "
            f"give each environment its own (make picks cdktf.out/{environment}; "
            f"the cdktf CLI takes --output cdktf.out/{environment})"
        )
    outdir.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{environment}\n")


def build_app(config: PipelineConfig, *, outdir: str | None = None) -> App:
    outdir = outdir or "cdktf.out"  # cdktf's default, when neither the CLI nor Make names one
    claim(Path(outdir), environment_name(config))
    app = App(outdir=outdir)
    network = NetworkStack(app, config=config)
    storage = StorageStack(app, config=config)
    compute = ComputeStack(app, config=config)
    orchestration = OrchestrationStack(app, config=config)
    # Order only: layers exchange values through Parameter Store, never through state.
    storage.add_dependency(network)
    compute.add_dependency(storage)
    orchestration.add_dependency(compute)
    return app


def main() -> int:
    try:
        app = build_app(from_env(), outdir=os.environ.get("CDKTF_OUTDIR"))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
