"""The framework names the project uses, imported in one place.

CDKTF was archived upstream in December 2025; its community continuation (CDK Terrain,
`cdktn`) is a rename, so switching means changing the imports below and the provider
package name in provider_import.py.
"""

from cdktf import (
    Annotations,
    App,
    Aspects,
    AssetType,
    Fn,
    IAspect,
    LocalBackend,
    S3Backend,
    TerraformAsset,
    TerraformDataSource,
    TerraformOutput,
    TerraformResource,
    TerraformResourceLifecycle,
    TerraformStack,
    Token,
)
from constructs import Construct, IConstruct, IValidation

__all__ = [
    "Annotations",
    "App",
    "Aspects",
    "AssetType",
    "Construct",
    "Fn",
    "IAspect",
    "IConstruct",
    "IValidation",
    "LocalBackend",
    "S3Backend",
    "TerraformAsset",
    "TerraformDataSource",
    "TerraformOutput",
    "TerraformResource",
    "TerraformResourceLifecycle",
    "TerraformStack",
    "Token",
]
