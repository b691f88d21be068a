"""Lambda handlers of the financial data pipeline.

Entry modules (ingest, validate, transform, load, failure) are thin; the rules live in
``handlers.logic`` (no AWS) and S3/DynamoDB access in ``handlers.dal``.
"""
