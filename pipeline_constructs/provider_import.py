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
import sys

PACKAGE = "cdktf_cdktf_provider_aws"
_BULK_IMPORT_MARKER = "# Loading modules to ensure their types are registered with the jsii runtime library"


class ProviderLayoutChanged(RuntimeError):
    """The provider package no longer looks the way this fast path expects."""


def enable() -> bool:
    """Install the lean package module; return whether the fast path is active."""
    if os.environ.get("PIPELINE_FULL_PROVIDER_IMPORT") == "1":
        return False
    if PACKAGE in sys.modules:
        return getattr(sys.modules[PACKAGE], "__lean_import__", False)
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
    module.__lean_import__ = True  # type: ignore[attr-defined]
    sys.modules[PACKAGE] = module
    try:
        exec(compile(head, spec.origin, "exec"), module.__dict__)  # noqa: S102 - the package's own code
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    return True
