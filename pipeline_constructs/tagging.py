"""FinOps tags on every taggable resource, and a check that none was left without them.

One aspect per stack, shared by all four. Data sources are constructs too, but they
take no tags (terraform-cdk #3024), so only resources whose class accepts `tags` are touched.
"""

from __future__ import annotations

from collections.abc import Mapping

import jsii

from pipeline_constructs.framework import IAspect, IConstruct, IValidation, TerraformResource, TerraformStack


def is_taggable(node: object) -> bool:
    return isinstance(node, TerraformResource) and hasattr(type(node), "tags_input")


@jsii.implements(IAspect)
class FinOpsTagging:
    def __init__(self, tags: Mapping[str, str]) -> None:
        self._tags = dict(tags)

    def visit(self, node: IConstruct) -> None:
        if is_taggable(node):
            # Tags set on the resource itself win over the defaults (a Name, say).
            node.tags = {**self._tags, **(node.tags_input or {})}  # type: ignore[attr-defined]


def untagged_resources(stack: TerraformStack, required: Mapping[str, str]) -> list[str]:
    """Paths of taggable resources missing any of the required tag keys."""
    missing = []
    for node in stack.node.find_all():
        if is_taggable(node):
            tags = node.tags_input or {}  # type: ignore[attr-defined]
            absent = sorted(set(required) - set(tags))
            if absent:
                missing.append(f"{node.node.path} lacks FinOps tags {', '.join(absent)}")
    return missing


@jsii.implements(IValidation)
class RequireFinOpsTags:
    """Fails synthesis, naming each taggable resource the tagging aspect did not reach."""

    def __init__(self, stack: TerraformStack, required: Mapping[str, str]) -> None:
        self._stack = stack
        self._required = dict(required)

    def validate(self) -> list[str]:
        return untagged_resources(self._stack, self._required)
