"""Reusable constructs for the pipeline's stacks.

This folder is the card's `constructs` folder under another name: a top-level package
called `constructs` would shadow the `constructs` library that cdktf imports at start-up.
"""
