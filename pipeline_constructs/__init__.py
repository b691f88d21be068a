"""Reusable constructs for the pipeline's stacks.

Not named `constructs`: a top-level package of that name would shadow the `constructs` library
that cdktf imports at start-up.
"""
