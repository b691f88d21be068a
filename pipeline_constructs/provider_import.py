"""Load only the AWS provider submodules the app uses.

`cdktf_cdktf_provider_aws/__init__.py` ends by importing all ~2,135 resource
submodules "to ensure their types are registered with the jsii runtime", which
costs ~20 s per process (terraform-cdk issue 3753). Python must run a package's
``__init__`` before any of its submodules, so a plain
``from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket`` pays for all of them.

``enable()`` registers the package module built from the same ``__init__``
source minus that trailing import block; each submodule the app imports then
registers its own jsii types as usual. site-packages is not touched.
tests/infra/test_fast_import.py proves the synthesized output is byte-identical
with and without this path, so a provider upgrade that breaks it fails loudly.

Set PIPELINE_FULL_PROVIDER_IMPORT=1 to take the normal (slow) path.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

PACKAGE = "cdktf_cdktf_provider_aws"
_BULK_IMPORT_MARKER = "# Loading modules to ensure their types are registered with the jsii runtime library"


_lean_import_active = False


class ProviderLayoutChanged(RuntimeError):
    """The provider package no longer looks the way this fast path expects."""


def is_active() -> bool:
    return _lean_import_active


def quiet_node_end_of_life_banner() -> None:
    """jsii prints a banner on every run under Node 20; it accepts only the major version."""
    if "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION" in os.environ:
        return
    try:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)  # noqa: S607 - as jsii finds it
    except (OSError, subprocess.CalledProcessError):
        return  # jsii will report a missing Node itself
    version = node.stdout
    os.environ["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = version.strip().lstrip("v").split(".")[0]


def enable() -> bool:
    """Install the lean package module; return whether the fast path is active."""
    global _lean_import_active
    quiet_node_end_of_life_banner()
    if os.environ.get("PIPELINE_FULL_PROVIDER_IMPORT") == "1" or PACKAGE in sys.modules:
        return _lean_import_active
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None or spec.loader is None:
        raise ProviderLayoutChanged(f"{PACKAGE} is not installed; run `make install`")
    with open(spec.origin, encoding="utf-8") as source_file:
        source = source_file.read()
    head, marker, _ = source.partition(_BULK_IMPORT_MARKER)
    if not marker:
        raise ProviderLayoutChanged(
            f"{spec.origin} no longer contains the bulk-import marker; "
            "set PIPELINE_FULL_PROVIDER_IMPORT=1 and update pipeline_constructs/provider_import.py"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        # The package's own code (it ends with publication.publish(), which swaps the
        # module object in sys.modules for one exposing only __all__).
        exec(compile(head, spec.origin, "exec"), module.__dict__)  # noqa: S102
    except BaseException:
        sys.modules.pop(PACKAGE, None)
        raise
    _lean_import_active = True
    return True
