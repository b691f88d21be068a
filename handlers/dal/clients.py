"""Lazy boto3 clients. Endpoints come from the environment (AWS_ENDPOINT_URL), never from code."""

from __future__ import annotations

import functools

import boto3


@functools.cache
def s3_client():
    return boto3.client("s3")


@functools.cache
def dynamodb_resource():
    return boto3.resource("dynamodb")


def reset_clients() -> None:
    """Forget cached clients (tests create fresh ones inside each mock)."""
    s3_client.cache_clear()
    dynamodb_resource.cache_clear()
